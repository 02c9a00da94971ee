// CHOCO-SGD: see choco.hpp.
#include "choco.hpp"

#include <algorithm>
#include <cmath>

#include "rumor/codec/reference_delta.hpp"
#include "rumor/common/error.hpp"
#include "rumor/common/log.hpp"

namespace rumor::gossip {

double auto_gamma(double delta, double max_gamma) {
  return std::clamp(kAutoGammaSlope * delta, kAutoGammaMin, max_gamma);
}

Choco::Choco(MethodContext ctx, double max_gamma) : Method(std::move(ctx)), max_gamma_(max_gamma) {
  const auto& g = option("gamma");
  gamma_auto_ = g.is_string();
  if (gamma_auto_ && g != "auto")
    throw ConfigError("method.gamma must be a number in (0, 1] or \"auto\", got " + g.dump());
  if (gamma_auto_) return;  // resolved in init(), where the model's size is known
  gamma_ = g.get<double>();
  if (!(gamma_ > 0 && gamma_ <= 1))
    throw ConfigError("method.gamma must be in (0, 1] or \"auto\", got " + std::to_string(gamma_));
}

void Choco::resolve_gamma(std::size_t d) {
  const double delta = codec::reference_delta(*ctx_.codec, d);
  gamma_ = auto_gamma(delta, max_gamma_);
  if (ctx_.self == 0 && !(delta > 0))
    log::warn(name(), ": codec ", ctx_.codec->name(), " removes nothing from a normal vector (",
              delta, "), so method.gamma auto is the least step, ", gamma_,
              "; set method.gamma for this codec");
  if (ctx_.self == 0)
    log::info(name(), ": method.gamma auto = ", gamma_, " (codec ", ctx_.codec->name(), " removes ",
              delta, " of ||x||^2 from a normal vector of ", d, " values)");
}

void Choco::init(std::span<float> model) {
  model_ = model;
  const std::size_t d = model.size();
  if (gamma_auto_) resolve_gamma(d);
  encoder_.reset(*ctx_.codec, d);
  decoder_ = ctx_.codec->make_decoder(d);
  diff_.assign(d, 0.0f);
  sent_.assign(d, 0.0f);
  // Public copies start at the shared initial model when every node starts there.
  const std::vector<float> start = ctx_.identical_init
                                       ? std::vector<float>(model.begin(), model.end())
                                       : std::vector<float>(d, 0.0f);
  hat_self_ = start;
  for (int j : ctx_.topology->peers(ctx_.self)) hats_[j] = start;
}

std::vector<Outgoing> Choco::produce(std::int64_t round, int) {
  const auto outs = live(ctx_.topology->out_neighbors(ctx_.self, round));
  double sq = 0;
  for (std::size_t k = 0; k < diff_.size(); ++k) {
    diff_[k] = model_[k] - hat_self_[k];
    sq += static_cast<double>(diff_[k]) * diff_[k];
  }
  kept_.reset();
  if (!should_send(sq)) {
    ++skipped_;
    net::Message m = gossip_message(ctx_, round, {});
    m.not_triggered = true;
    return to_each(outs, m);
  }
  ++triggered_;
  auto payload = encoder_.encode(diff_, codec_ctx(ctx_, round, ctx_.self), sent_);
  double left = 0;
  for (std::size_t k = 0; k < sent_.size(); ++k) {
    hat_self_[k] += sent_[k];
    const double r = static_cast<double>(diff_[k]) - sent_[k];
    left += r * r;
  }
  kept_ = sq > 0 ? 1.0 - left / sq : 1.0;
  return to_each(outs, gossip_message(ctx_, round, std::move(payload)));
}

std::vector<Expected> Choco::expect(std::int64_t round, int) const {
  auto e = expect_from_in_neighbors(ctx_, round);
  std::erase_if(e, [this](const Expected& x) { return peer_is_down(x.sender); });
  return e;
}

void Choco::absorb(std::int64_t round, int, std::vector<net::Message>& received) {
  sort_by_sender(received);
  for (const auto& m : received) {
    auto it = hats_.find(m.sender);
    if (it == hats_.end())
      throw ProtocolError(name() + ": node " + std::to_string(ctx_.self) +
                          " got a message from non-neighbour " + std::to_string(m.sender));
    if (m.not_triggered) continue;
    decoder_->decode_add(m.payload.bytes(), codec_ctx(ctx_, round, m.sender), it->second, 1.0f);
  }
  const Topology& t = *ctx_.topology;
  const float g = static_cast<float>(gamma_);
  // A neighbour marked down drops out of the consensus step (its weight stays here).
  for (int j : live(t.in_neighbors(ctx_.self, round))) {
    const float w = g * static_cast<float>(t.weight(ctx_.self, j, round));
    const auto& h = hats_.at(j);
    for (std::size_t k = 0; k < model_.size(); ++k) model_[k] += w * (h[k] - hat_self_[k]);
  }
}

std::vector<Method::StateBuffer> Choco::state_buffers() {
  std::vector<StateBuffer> out{vector_state("hat_self", hat_self_)};
  for (auto& [j, h] : hats_) out.push_back(vector_state("hat_" + std::to_string(j), h));
  encoder_.add_state(out, "ef_memory");
  return out;
}

net::Message Choco::rejoin_offer(const net::Message& request, std::int64_t round) {
  auto m = Method::rejoin_offer(request, round);
  const auto it = hats_.find(request.sender);
  if (it == hats_.end())
    throw ProtocolError(name() + ": node " + std::to_string(ctx_.self) +
                        " got a rejoin request from non-neighbour " +
                        std::to_string(request.sender));
  std::vector<float> v;
  if (!m.payload.empty()) v = m.payload.to_floats();
  v.insert(v.end(), hat_self_.begin(), hat_self_.end());
  v.insert(v.end(), it->second.begin(), it->second.end());
  m.payload = net::Payload::share(std::make_shared<const std::vector<float>>(std::move(v)));
  m.scalars = {Method::wants_model(request) ? 1.0 : 0.0};
  return m;
}

void Choco::rejoin_accept(const net::Message& offer) {
  const std::size_t d = hat_self_.size();
  const bool has_model = !offer.scalars.empty() && offer.scalars[0] != 0.0;
  const auto v = offer.payload.to_floats();
  const auto it = hats_.find(offer.sender);
  if (v.size() != (has_model ? 3 : 2) * d || it == hats_.end())
    throw ProtocolError(name() + ": node " + std::to_string(ctx_.self) +
                        " got a malformed rejoin offer from peer " + std::to_string(offer.sender) +
                        "; do all nodes use the same config?");
  refuse_offer_values(check_values(v), offer);
  const float* at = v.data();
  if (has_model) {
    const float k = static_cast<float>(offers_accepted_);
    for (std::size_t i = 0; i < d; ++i) model_[i] = (k * model_[i] + at[i]) / (k + 1.0f);
    ++offers_accepted_;
    at += d;
  }
  it->second.assign(at, at + d);
  // Every neighbour holds the same copy of ours unless messages were lost before the
  // restart; the first offer decides.
  if (!hat_synced_) hat_self_.assign(at + d, at + 2 * d);
  hat_synced_ = true;
}

std::vector<Option> choco_options() {
  return {{"method.gamma", "number|auto", "auto",
           "choco, squarm: consensus step size; auto: 1.5 delta, delta the share of ||x||^2 "
           "the codec removes from a normal vector, at most 0.4 for choco (fp32, fp16, sign, "
           "topk:0.1|sign reach it; topk:0.01: 0.13; randk:0.01 and the default sketch: "
           "0.015) and 0.25 for squarm, whose skipped sends leave the public copies staler "
           "(at 0.4 its nodes drifted apart on the quickstart); node 0 logs the value",
           0, 10},
          {"method.allow_noncontractive", "bool", false,
           "choco, squarm: accept a codec that is not contractive (e.g. qsgd:4), at your risk"}};
}

MethodInfo choco_method() {
  return method_entry<Choco>(
      "choco", "CHOCO-SGD: compressed gossip with public copies (contractive codec)",
      {true, true, true}, LocalMomentum::kOptimizer, choco_options(), kPublicCopiesNoAggregation);
}

}  // namespace rumor::gossip
