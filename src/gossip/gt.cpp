// Gradient tracking (DSGT; Pu & Nedic 2021, "Distributed stochastic gradient tracking
// methods", Math. Programming 187): every node tracks the network's mean gradient in y,
//   y_0 = g_0;  x_{k+1} = sum_j W(i, j) (x_j - lr y_j);  y_{k+1} = sum_j W(i, j) y_j + g_{k+1} -
//   g_k,
// so with doubly stochastic W the mean of the trackers equals the mean of the latest
// gradients at every round, and the step follows the global gradient however different the
// nodes' data are. Messages carry (x - lr y, y) in fp32: a lossy codec on y would break that
// invariant.
#include <algorithm>

#include "common.hpp"
#include "rumor/common/error.hpp"

namespace rumor::gossip {
namespace {

class Gt : public Method {
 public:
  explicit Gt(MethodContext ctx) : Method(std::move(ctx)) {
    if (ctx_.codec->name() != "fp32")
      throw ConfigError("method gt sends the model and its gradient tracker uncompressed (codec " +
                        ctx_.codec->name() +
                        " would break the tracker's invariant: its mean must stay the mean "
                        "gradient); set codec to fp32");
    if (ctx_.local_steps != 1)
      throw ConfigError(
          "method gt takes one tracked gradient step per round; set local_steps to 1");
  }
  std::string name() const override { return "gt"; }

  void init(std::span<float> model) override {
    model_ = model;
    const std::size_t d = model.size();
    y_.assign(d, 0.0f);
    g_old_.assign(d, 0.0f);
    y_mixed_.assign(d, 0.0f);
    out_.assign(2 * d, 0.0f);
    mixed_.assign(2 * d, 0.0f);
    encoder_.reset(*ctx_.codec, 2 * d);
    decoder_ = ctx_.codec->make_decoder(2 * d);
  }

  LocalWork::Stats local(std::int64_t, LocalWork& work) override {
    if (!work.trains()) return {};
    const auto stats = work.gradient();
    const auto g = work.grads();
    if (!started_) {
      std::copy(g.begin(), g.end(), y_.begin());
      started_ = true;
    } else {
      for (std::size_t k = 0; k < y_.size(); ++k) y_[k] = y_mixed_[k] + g[k] - g_old_[k];
    }
    std::copy(g.begin(), g.end(), g_old_.begin());
    work.step(model_, y_);  // x - lr y (the optimizer's schedule and weight decay apply)
    return stats;
  }

  std::vector<Outgoing> produce(std::int64_t round, int) override {
    const std::size_t d = model_.size();
    std::copy(model_.begin(), model_.end(), out_.begin());
    std::copy(y_.begin(), y_.end(), out_.begin() + static_cast<std::ptrdiff_t>(d));
    const auto m =
        gossip_message(ctx_, round, encoder_.encode(out_, codec_ctx(ctx_, round, ctx_.self)));
    return to_each(live(ctx_.topology->out_neighbors(ctx_.self, round)), m);
  }

  std::vector<Expected> expect(std::int64_t round, int) const override {
    auto e = expect_from_in_neighbors(ctx_, round);
    std::erase_if(e, [this](const Expected& x) { return peer_is_down(x.sender); });
    return e;
  }

  Refusal check(const net::Message& m) override {
    if (auto r = check_header(m)) return r;
    return check_payload(m, 2 * model_.size());
  }

  void absorb(std::int64_t round, int, std::vector<net::Message>& received) override {
    sort_by_sender(received);
    const std::size_t d = model_.size();
    const float own = kept_weight(ctx_, round, received);
    for (std::size_t k = 0; k < 2 * d; ++k) mixed_[k] = own * out_[k];
    for (const auto& m : received) {
      const auto w = static_cast<float>(ctx_.topology->weight(ctx_.self, m.sender, round));
      decoder_->decode_add(m.payload.bytes(), codec_ctx(ctx_, round, m.sender), mixed_, w);
    }
    std::copy(mixed_.begin(), mixed_.begin() + static_cast<std::ptrdiff_t>(d), model_.begin());
    std::copy(mixed_.begin() + static_cast<std::ptrdiff_t>(d), mixed_.end(), y_mixed_.begin());
  }

  nlohmann::json save_state() const override { return {{"started", started_}}; }
  void load_state(const nlohmann::json& s) override { started_ = s.at("started").get<bool>(); }
  std::vector<StateBuffer> state_buffers() override {
    return {vector_state("gt_tracker", y_), vector_state("gt_last_grad", g_old_),
            vector_state("gt_mixed_tracker", y_mixed_)};
  }

 private:
  bool started_ = false;
  std::vector<float> y_, g_old_, y_mixed_;  // tracker, last gradient, W y of the last round
  std::vector<float> out_, mixed_;          // (x - lr y, y) sent, and its mix
  PayloadEncoder encoder_;
  std::unique_ptr<codec::Decoder> decoder_;
};

}  // namespace

MethodInfo gt_method() {
  return method_entry<Gt>("gt",
                          "gradient tracking (DSGT): steps along a tracker of the mean gradient, "
                          "which removes the penalty of non-IID data; fp32 only",
                          {true, false, false}, LocalMomentum::kOptimizer, {},
                          "the trackers' mean is the mean gradient only while every neighbour's "
                          "share is mixed with its exact weight");
}

}  // namespace rumor::gossip
