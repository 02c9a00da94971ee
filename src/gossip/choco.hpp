#pragma once
// CHOCO-SGD (Koloskova et al. 2019), internal: squarm.cpp extends it with local momentum and
// a send trigger. Every node keeps public copies hat x_j of itself and of each neighbour;
// only compressed differences q = C(x - hat x_i) travel, and everyone applies the same
// decoded q, so all copies of hat x_i agree bit for bit.
// Consensus step: x += gamma sum_j w_ij (hat x_j - hat x_i).
#include <map>
#include <optional>

#include "methods.hpp"

namespace rumor::gossip {

// CHOCO's options, which SQuARM extends.
std::vector<Option> choco_options();
// method.gamma "auto": the consensus step for a codec that removes `delta` of ||x||^2 from a
// vector without structure (codec::reference_delta). CHOCO's analysis makes the step
// proportional to delta; measured on ring16 (experiments/payloads), K = 1% random values
// (delta 0.01) stay together at 0.01, drift slowly at 0.02 and run away at 0.04 and above,
// K = 2% stay together at 0.02, and top-k of 0.7% (delta 0.066) stays together at 0.1 and runs
// away at 0.25 and 0.4: 1.5 delta is inside every stable range. At most the method's largest
// step (CHOCO: the former fixed default 0.4, reached at delta 0.27: fp32, fp16, sign,
// topk:0.1|sign keep it; SQuARM: 0.25, see squarm.cpp); at least 0.001.
inline constexpr double kAutoGammaSlope = 1.5, kAutoGammaMin = 0.001, kAutoGammaMax = 0.4;
double auto_gamma(double delta, double max_gamma = kAutoGammaMax);
// Why CHOCO and SQuARM refuse method.aggregation (robust mixing).
inline constexpr const char* kPublicCopiesNoAggregation =
    "messages are compressed differences that update public copies hat x_j which every "
    "neighbour must apply identically; a rule that clips or trims them makes the copies of "
    "the same node disagree, and the consensus step no longer sees what was sent";

class Choco : public Method {
 public:
  // max_gamma: the largest step method.gamma auto gives.
  explicit Choco(MethodContext ctx, double max_gamma = kAutoGammaMax);
  std::string name() const override { return "choco"; }

  void init(std::span<float> model) override;
  std::vector<Outgoing> produce(std::int64_t round, int stage) override;
  std::vector<Expected> expect(std::int64_t round, int stage) const override;
  void absorb(std::int64_t round, int stage, std::vector<net::Message>& received) override;

  MethodStats stats() const override { return {skipped_, triggered_}; }
  bool sends_not_triggered() const override { return true; }
  nlohmann::json save_state() const override {
    return {{"skipped", skipped_}, {"triggered", triggered_}};
  }
  void load_state(const nlohmann::json& s) override {
    skipped_ = s.value("skipped", std::uint64_t{0});
    triggered_ = s.value("triggered", std::uint64_t{0});
  }
  std::vector<StateBuffer> state_buffers() override;
  // choco_kept: the share of ||x - hat x_i||^2 this round's payload removed, i.e. the delta
  // the codec achieved (1 for a lossless one; at most 0 means the copies did not get closer).
  nlohmann::json round_metrics() const override {
    if (!kept_) return nlohmann::json::object();
    return {{"choco_kept", *kept_}};
  }

  // Rejoin: the offer carries this node's public copy and its copy of the peer's, so both
  // ends agree again on every hat x they share (sends to a down peer were skipped, so its
  // copies are stale). Payload: [model if wanted] [hat_self] [hat of the peer], fp32.
  net::Message rejoin_offer(const net::Message& request, std::int64_t round) override;
  void rejoin_accept(const net::Message& offer) override;

  // The consensus step in use (method.gamma, or what "auto" resolved to at init()).
  double gamma() const { return gamma_; }

  // Test access: the public copy this node keeps of node j (itself included).
  const std::vector<float>& public_copy(int j) const {
    return j == ctx_.self ? hat_self_ : hats_.at(j);
  }

 protected:
  // Whether to send this round, given ||x - hat x_i||^2; CHOCO always sends.
  virtual bool should_send(double) { return true; }

  // method.gamma, resolved (choco_options); "auto" is resolved by init() from the codec.
  double gamma_ = 0;
  bool gamma_auto_ = false;
  double max_gamma_ = kAutoGammaMax;
  void resolve_gamma(std::size_t d);
  bool hat_synced_ = false;
  std::uint64_t skipped_ = 0, triggered_ = 0;
  std::optional<double> kept_;  // this round's choco_kept, when it sent
  PayloadEncoder encoder_;
  std::unique_ptr<codec::Decoder> decoder_;
  std::vector<float> diff_, sent_, hat_self_;
  std::map<int, std::vector<float>> hats_;
};

}  // namespace rumor::gossip
