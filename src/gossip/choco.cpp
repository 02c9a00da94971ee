// CHOCO-SGD (Koloskova et al. 2019) and SQuARM-SGD (Singh et al. 2020).
// Every node keeps public copies hat x_j of itself and of each neighbour; only compressed
// differences q = C(x - hat x_i) travel, and everyone applies the same decoded q, so all
// copies of hat x_i agree bit for bit. Consensus step: x += gamma sum_j w_ij (hat x_j - hat x_i).
// SQuARM adds local Nesterov steps (the optimizer's momentum) and sends q only when
// ||x - hat x_i||^2 > c_t eta_t^2; otherwise a 'not triggered' notice keeps receivers going.
#include <cmath>
#include <map>

#include "methods.hpp"
#include "rumor/common/error.hpp"

namespace rumor::gossip {
namespace {

class Choco : public Method {
 public:
  explicit Choco(MethodContext ctx) : Method(std::move(ctx)) {
    gamma_ = ctx_.params.value("gamma", 0.4);
    if (!(gamma_ > 0 && gamma_ <= 1))
      throw ConfigError("method.gamma must be in (0, 1], got " + std::to_string(gamma_));
  }
  std::string name() const override { return "choco"; }

  void init(std::span<float> model) override {
    model_ = model;
    const std::size_t d = model.size();
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

  std::vector<Outgoing> produce(std::int64_t round, int) override {
    const auto outs = live(ctx_.topology->out_neighbors(ctx_.self, round));
    double sq = 0;
    for (std::size_t k = 0; k < diff_.size(); ++k) {
      diff_[k] = model_[k] - hat_self_[k];
      sq += static_cast<double>(diff_[k]) * diff_[k];
    }
    if (!should_send(sq)) {
      ++skipped_;
      net::Message m = gossip_message(ctx_, round, {});
      m.not_triggered = true;
      return to_each(outs, m);
    }
    ++triggered_;
    auto payload = encoder_.encode(diff_, codec_ctx(ctx_, round, ctx_.self), sent_);
    for (std::size_t k = 0; k < sent_.size(); ++k) hat_self_[k] += sent_[k];
    return to_each(outs, gossip_message(ctx_, round, std::move(payload)));
  }

  std::vector<Expected> expect(std::int64_t round, int) const override {
    auto e = expect_from_in_neighbors(ctx_, round);
    std::erase_if(e, [this](const Expected& x) { return peer_is_down(x.sender); });
    return e;
  }

  void absorb(std::int64_t round, int, std::vector<net::Message>& received) override {
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

  MethodStats stats() const override { return {skipped_, triggered_}; }

  nlohmann::json save_state() const override {
    return {{"skipped", skipped_}, {"triggered", triggered_}};
  }
  void load_state(const nlohmann::json& s) override {
    skipped_ = s.value("skipped", std::uint64_t{0});
    triggered_ = s.value("triggered", std::uint64_t{0});
  }
  std::vector<StateBuffer> state_buffers() override {
    std::vector<StateBuffer> out{vector_state("hat_self", hat_self_)};
    for (auto& [j, h] : hats_) out.push_back(vector_state("hat_" + std::to_string(j), h));
    encoder_.add_state(out, "ef_memory");
    return out;
  }

  // Rejoin: the offer carries this node's public copy and its copy of the peer's, so both
  // ends agree again on every hat x they share (sends to a down peer were skipped, so its
  // copies are stale). Payload: [model if wanted] [hat_self] [hat of the peer], fp32.
  net::Message rejoin_offer(const net::Message& request, std::int64_t round) override {
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
  void rejoin_accept(const net::Message& offer) override {
    const std::size_t d = hat_self_.size();
    const bool has_model = !offer.scalars.empty() && offer.scalars[0] != 0.0;
    const auto v = offer.payload.to_floats();
    const auto it = hats_.find(offer.sender);
    if (v.size() != (has_model ? 3 : 2) * d || it == hats_.end())
      throw ProtocolError(name() + ": node " + std::to_string(ctx_.self) +
                          " got a malformed rejoin offer from peer " +
                          std::to_string(offer.sender) + "; do all nodes use the same config?");
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

  // Test access: the public copy this node keeps of node j (itself included).
  const std::vector<float>& public_copy(int j) const {
    return j == ctx_.self ? hat_self_ : hats_.at(j);
  }

 protected:
  virtual bool should_send(double) { return true; }

  double gamma_ = 0.4;
  bool hat_synced_ = false;
  std::uint64_t skipped_ = 0, triggered_ = 0;
  PayloadEncoder encoder_;
  std::unique_ptr<codec::Decoder> decoder_;
  std::vector<float> diff_, sent_, hat_self_;
  std::map<int, std::vector<float>> hats_;
};

class Squarm : public Choco {
 public:
  explicit Squarm(MethodContext ctx) : Choco(std::move(ctx)) {
    c0_ = ctx_.params.value("c0", 2.0);
    growth_ = ctx_.params.value("c_growth", 1.0);
    every_ = ctx_.params.value("c_every_epochs", 10.0);
    if (c0_ < 0 || growth_ < 0 || every_ <= 0)
      throw ConfigError(
          "squarm: method.c0 and method.c_growth must be >= 0, "
          "method.c_every_epochs > 0");
  }
  std::string name() const override { return "squarm"; }

  LocalWork::Stats local(std::int64_t round, LocalWork& work) override {
    const auto s = Method::local(round, work);
    lr_ = work.trains() ? work.lr() : 0.0;
    epochs_ = work.trains() ? work.epochs() : 0.0;
    return s;
  }

  // c_t = c0 + growth * floor(epochs / every): grows slowly, as the analysis allows.
  double threshold() const { return c0_ + growth_ * std::floor(epochs_ / every_); }

 protected:
  bool should_send(double sq) override {
    if (lr_ <= 0) return true;  // task average: no step size to scale the trigger by
    return sq > threshold() * lr_ * lr_;
  }

 private:
  double c0_ = 2.0, growth_ = 1.0, every_ = 10.0, lr_ = 0.0, epochs_ = 0.0;
};

}  // namespace

std::unique_ptr<Method> make_choco(MethodContext ctx) {
  return std::make_unique<Choco>(std::move(ctx));
}
std::unique_ptr<Method> make_squarm(MethodContext ctx) {
  return std::make_unique<Squarm>(std::move(ctx));
}

}  // namespace rumor::gossip
