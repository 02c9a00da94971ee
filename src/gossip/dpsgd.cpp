// D-PSGD (Lian et al. 2017): adapt then combine by default, x <- sum_j W(i, j) (x_j - eta d_j);
// combine then adapt on request, x <- sum_j W(i, j) x_j - eta d_i(x_i).
#include <cstring>

#include "methods.hpp"
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
}

void Dpsgd::init(std::span<float> model) {
  model_ = model;
  encoder_.reset(*ctx_.codec, model.size());
  decoder_ = ctx_.codec->make_decoder(model.size());
  mixed_.assign(model.size(), 0.0f);
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
  const Topology& t = *ctx_.topology;
  // The weight of a neighbour that sent nothing (down, or past the deadline) stays here.
  double handed_in = 0;
  for (const auto& m : received) handed_in += t.weight(m.sender, ctx_.self, round);
  const float sw = static_cast<float>(1.0 - handed_in);
  for (std::size_t k = 0; k < model_.size(); ++k) mixed_[k] = sw * model_[k];
  for (const auto& m : received) {
    const float w = static_cast<float>(t.weight(ctx_.self, m.sender, round));
    decoder_->decode_add(m.payload.bytes(), codec_ctx(ctx_, round, m.sender), mixed_, w);
  }
  std::memcpy(model_.data(), mixed_.data(), model_.size_bytes());
  if (cta_work_) cta_work_->step(model_);
  cta_work_ = nullptr;
}

MethodInfo dpsgd_method() {
  return method_entry<Dpsgd>("dpsgd",
                             "D-PSGD: local step, then gossip averaging with Metropolis weights",
                             {true, true, false}, LocalMomentum::kOptimizer,
                             {{"method.variant", "string", "atc",
                               "dpsgd/qgm: atc (adapt then combine) or cta (combine then adapt)"}});
}

}  // namespace rumor::gossip
