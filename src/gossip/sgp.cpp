// Stochastic Gradient Push (Assran et al. 2019): push-sum on directed, time-varying graphs.
// State: numerator x and weight p (fp64); the model is z = x / p. Each round:
//   local steps on x with gradients at z;  keep 1/(d+1) of (x, p), send the same share to
//   each of the d out-neighbours;  add what arrives;  z = x / p.
// Over a lossy codec the sender keeps x - d * decode(sent), so what it keeps plus what the
// receivers decode is exactly what it had: mass is conserved. Overlap mode absorbs every
// message that has arrived and waits only for those more than tau rounds old.
#include <cmath>
#include <set>

#include "methods.hpp"
#include "rumor/common/error.hpp"

namespace rumor::gossip {
namespace {

class Sgp : public Method {
 public:
  explicit Sgp(MethodContext ctx) : Method(std::move(ctx)) {
    overlap_ = ctx_.params.value("overlap", false);
    tau_ = ctx_.params.value("tau", 1);
    if (overlap_ && tau_ < 0) throw ConfigError("method.tau must be >= 0");
  }
  std::string name() const override { return "sgp"; }

  void init(std::span<float> model) override {
    model_ = model;
    x_.assign(model.begin(), model.end());
    share_.assign(model.size(), 0.0f);
    sent_.assign(model.size(), 0.0f);
    encoder_.reset(*ctx_.codec, model.size());
    decoder_ = ctx_.codec->make_decoder(model.size());
    p_ = 1.0;
  }

  LocalWork::Stats local(std::int64_t, LocalWork& work) override {
    LocalWork::Stats sum;
    if (!work.trains()) return sum;
    for (int h = 0; h < ctx_.local_steps; ++h) {
      const auto s = work.gradient();  // at z (the model span)
      work.step(x_);                   // on the numerator
      debias();
      sum.loss += s.loss;
      sum.accuracy += s.accuracy;
    }
    sum.loss /= ctx_.local_steps;
    sum.accuracy /= ctx_.local_steps;
    return sum;
  }

  std::vector<Outgoing> produce(std::int64_t round, int) override {
    const auto outs = ctx_.topology->out_neighbors(ctx_.self, round);
    const double d = static_cast<double>(outs.size());
    if (outs.empty()) return {};
    const float f = static_cast<float>(1.0 / (d + 1.0));
    for (std::size_t k = 0; k < x_.size(); ++k) share_[k] = x_[k] * f;
    auto payload = encoder_.encode(share_, codec_ctx(ctx_, round, ctx_.self), sent_);
    const float df = static_cast<float>(d);
    for (std::size_t k = 0; k < x_.size(); ++k) x_[k] -= df * sent_[k];
    const double p_share = p_ / (d + 1.0);
    p_ -= d * p_share;
    return to_each(outs, gossip_message(ctx_, round, std::move(payload), {p_share}));
  }

  std::vector<Expected> expect(std::int64_t round, int) const override {
    if (!overlap_) return expect_from_in_neighbors(ctx_, round);
    // Overlap: wait only for messages of round - tau not absorbed yet.
    const std::int64_t due = round - tau_;
    std::vector<Expected> out;
    if (due < 0) return out;
    for (const auto& e : expect_from_in_neighbors(ctx_, due))
      if (!absorbed_.count({e.sender, due})) out.push_back(e);
    return out;
  }

  bool absorbs_early() const override { return overlap_; }

  void absorb(std::int64_t round, int, std::vector<net::Message>& received) override {
    sort_by_sender(received);
    for (const auto& m : received) {
      if (m.scalars.size() != 1 || !std::isfinite(m.scalars[0]) || m.scalars[0] <= 0) {
        throw ProtocolError("sgp: node " + std::to_string(ctx_.self) + " got a message from peer " +
                            std::to_string(m.sender) + " without a valid push-sum weight");
      }
      decoder_->decode_add(m.payload.bytes(), codec_ctx(ctx_, m.round, m.sender), x_, 1.0f);
      p_ += m.scalars[0];
      if (overlap_) absorbed_.insert({m.sender, m.round});
    }
    // Forget bookkeeping that can no longer matter.
    if (overlap_)
      while (!absorbed_.empty() && absorbed_.begin()->second + 2 * tau_ + 2 < round)
        absorbed_.erase(absorbed_.begin());
    debias();
  }

  double weight() const override { return p_; }

  nlohmann::json save_state() const override { return {{"ps_weight", p_}}; }
  void load_state(const nlohmann::json& s) override {
    p_ = s.at("ps_weight").get<double>();
    debias();
  }
  std::vector<StateBuffer> state_buffers() override {
    std::vector<StateBuffer> out{vector_state("sgp_numerator", x_)};
    encoder_.add_state(out, "ef_memory");
    return out;
  }

 private:
  void debias() {
    const float inv = static_cast<float>(1.0 / p_);
    for (std::size_t k = 0; k < x_.size(); ++k) model_[k] = x_[k] * inv;
  }

  bool overlap_ = false;
  int tau_ = 1;
  double p_ = 1.0;
  std::vector<float> x_, share_, sent_;
  PayloadEncoder encoder_;
  std::unique_ptr<codec::Decoder> decoder_;
  // (sender, round) pairs absorbed ahead of their due round (overlap), ordered by round.
  struct ByRound {
    bool operator()(const std::pair<int, std::int64_t>& a,
                    const std::pair<int, std::int64_t>& b) const {
      return a.second != b.second ? a.second < b.second : a.first < b.first;
    }
  };
  std::set<std::pair<int, std::int64_t>, ByRound> absorbed_;
};

}  // namespace

std::unique_ptr<Method> make_sgp(MethodContext ctx) {
  return std::make_unique<Sgp>(std::move(ctx));
}

}  // namespace rumor::gossip
