// D-PSGD (Lian et al. 2017): adapt then combine by default, x <- sum_j W(i, j) (x_j - eta d_j);
// combine then adapt on request, x <- sum_j W(i, j) x_j - eta d_i(x_i).
#include <cstring>

#include "methods.hpp"
#include "rumor/codec/raw_values.hpp"
#include "rumor/common/error.hpp"

namespace rumor::gossip {

Dpsgd::Dpsgd(MethodContext ctx) : Method(std::move(ctx)) {
  const auto variant = param<std::string>("variant");
  if (variant == "cta") {
    combine_then_adapt_ = true;
  } else if (variant != "atc") {
    throw ConfigError("method.variant must be atc or cta, got \"" + variant + "\"");
  }
  if (combine_then_adapt_ && ctx_.local_steps != 1)
    throw ConfigError("method.variant cta takes one local step per round; set local_steps to 1");
  aggregation_ = parse_aggregation(param<std::string>("aggregation"), "method " + ctx_.info->name);
  if (const auto& tau = option("clip_tau"); !tau.is_null()) clip_tau_ = tau.get<double>();
  clip_b_ = param<int>("clip_b");
  trim_ = param<int>("trim");
}

void Dpsgd::init(std::span<float> model) {
  model_ = model;
  encoder_.reset(*ctx_.codec, model.size());
  decoder_ = ctx_.codec->make_decoder(model.size());
  if (aggregation_ != Aggregation::kMean) mixed_.assign(model.size(), 0.0f);
}

LocalWork::Stats Dpsgd::local(std::int64_t round, LocalWork& work) {
  if (!combine_then_adapt_) return Method::local(round, work);
  // cta: the gradient is taken at x_i now, the step applied to the mixed vector later.
  cta_work_ = work.trains() ? &work : nullptr;
  return cta_work_ ? work.gradient() : LocalWork::Stats{};
}

std::vector<Outgoing> Dpsgd::produce(std::int64_t round, int) {
  const auto m =
      gossip_message(ctx_, round, encoder_.encode(model_, codec_ctx(ctx_, round, ctx_.self)));
  return to_each(live(ctx_.topology->out_neighbors(ctx_.self, round)), m);
}

std::vector<Expected> Dpsgd::expect(std::int64_t round, int) const {
  auto e = expect_from_in_neighbors(ctx_, round);
  std::erase_if(e, [this](const Expected& x) { return peer_is_down(x.sender); });
  return e;
}

void Dpsgd::absorb(std::int64_t round, int, std::vector<net::Message>& received) {
  sort_by_sender(received);
  if (aggregation_ != Aggregation::kMean) {
    absorb_robust(round, received);
    return;
  }
  // The weight of a neighbour that sent nothing (down, or past the deadline) stays here.
  // In place: what was sent is the encoder's copy, so nobody reads the model meanwhile.
  const float sw = peer_sampling() ? uniform_weight(received) : kept_mixing_weight(round, received);
  if (!mix_in_place(round, received, sw)) {
    for (float& v : model_) v *= sw;
    for (const auto& m : received) {
      const float w = static_cast<float>(neighbour_weight(round, m.sender, received));
      decoder_->decode_add(m.payload.bytes(), codec_ctx(ctx_, round, m.sender), model_, w);
    }
  }
  if (cta_work_) cta_work_->step(model_);
  cta_work_ = nullptr;
}

// Raw fp32 payloads (codec fp32): the scaling and every neighbour's term in one pass over
// the model, reading the payloads where they lie; the same bits as the loop above. False,
// with nothing changed, for other codecs.
bool Dpsgd::mix_in_place(std::int64_t round, const std::vector<net::Message>& received, float sw) {
  raw_.clear();
  weights_.clear();
  for (const auto& m : received) {
    const auto raw = decoder_->raw_values(m.payload.bytes(), codec_ctx(ctx_, round, m.sender));
    if (raw.empty()) return false;
    raw_.push_back(raw);
    weights_.push_back(static_cast<float>(neighbour_weight(round, m.sender, received)));
  }
  codec::mix_raw(model_, sw, raw_, weights_);
  return true;
}

void Dpsgd::absorb_robust(std::int64_t round, const std::vector<net::Message>& received) {
  decoded_.resize(received.size());
  std::vector<std::span<const float>> models;
  std::vector<double> weights;
  for (std::size_t j = 0; j < received.size(); ++j) {
    const auto& m = received[j];
    decoded_[j].resize(model_.size());
    decoder_->decode(m.payload.bytes(), codec_ctx(ctx_, round, m.sender), decoded_[j]);
    models.push_back(decoded_[j]);
    weights.push_back(neighbour_weight(round, m.sender, received));
  }
  switch (aggregation_) {
    case Aggregation::kClip:
      last_clip_ = clipped_gossip(model_, models, weights, clip_tau_, clip_b_, mixed_);
      break;
    case Aggregation::kTrimmedMean:
      trimmed_mean(model_, models, trim_, mixed_);
      break;
    default:
      coordinate_median(model_, models, mixed_);
  }
  std::memcpy(model_.data(), mixed_.data(), model_.size_bytes());
  if (cta_work_) cta_work_->step(model_);
  cta_work_ = nullptr;
}

bool Dpsgd::peer_sampling() const {
  return ctx_.topology->schedule() == Schedule::kPeerSampling;
}

// Peer sampling: itself and every model that arrived, each 1/(1 + arrived) (the in-degree is
// random, so column weights would not make rows sum to one).
float Dpsgd::uniform_weight(const std::vector<net::Message>& received) {
  return 1.0f / (1.0f + static_cast<float>(received.size()));
}

double Dpsgd::neighbour_weight(std::int64_t round, int sender,
                               const std::vector<net::Message>& received) const {
  return peer_sampling() ? uniform_weight(received) : mixing_weight(ctx_.self, sender, round);
}

nlohmann::json Dpsgd::round_metrics() const {
  if (aggregation_ != Aggregation::kClip) return nlohmann::json::object();
  return {{"clip_tau", last_clip_.tau}, {"clip_clipped", last_clip_.clipped}};
}

std::vector<Option> aggregation_options() {
  return {{"method.aggregation", "string", "mean",
           "dpsgd/qgm: how a node combines its model with its neighbours': mean (Metropolis "
           "weights), or Byzantine-robust: clip (self-centred clipping of neighbour "
           "differences, ClippedGossip), trimmed-mean or median (coordinate-wise over itself "
           "and its neighbours)"},
          {"method.clip_tau", "number|null", nullptr,
           "aggregation clip: fixed clipping radius (null: adaptive, the (clip_b+1)-th largest "
           "neighbour distance of the round)",
           0, 1e30},
          {"method.clip_b", "int", 1,
           "aggregation clip, adaptive radius: neighbours that may be Byzantine (the clip_b "
           "farthest are clipped)",
           0, 1e6},
          {"method.trim", "int", 1,
           "aggregation trimmed-mean: values dropped at each end of every coordinate (at most "
           "(n-1)/2 of the n = 1 + neighbours values)",
           0, 1e6}};
}

namespace {
std::vector<Option> dpsgd_options() {
  auto o = aggregation_options();
  o.insert(o.begin(), {"method.variant", "string", "atc",
                       "dpsgd/qgm: atc (adapt then combine) or cta (combine then adapt)"});
  return o;
}
}  // namespace

MethodInfo dpsgd_method() {
  return method_entry<Dpsgd>(
      "dpsgd", "D-PSGD: local step, then gossip averaging with Metropolis weights",
      {true, false, false, true}, LocalMomentum::kOptimizer, dpsgd_options());
}

}  // namespace rumor::gossip
