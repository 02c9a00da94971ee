#pragma once
// D-PSGD mixing, shared by dpsgd and qgm (internal).
#include <memory>

#include "common.hpp"
#include "rumor/codec/codec.hpp"
#include "rumor/gossip/aggregation.hpp"
#include "rumor/gossip/method.hpp"

namespace rumor::gossip {

MethodInfo dpsgd_method();  // qgm extends dpsgd's options
// The options of method.aggregation (Byzantine-robust mixing), declared by dpsgd and qgm.
std::vector<Option> aggregation_options();

// D-PSGD mixing, shared by dpsgd and qgm: x <- sum_j W(i, j) x_j over decoded neighbours.
class Dpsgd : public Method {
 public:
  explicit Dpsgd(MethodContext ctx);
  std::string name() const override { return "dpsgd"; }
  void init(std::span<float> model) override;
  LocalWork::Stats local(std::int64_t round, LocalWork& work) override;
  std::vector<Outgoing> produce(std::int64_t round, int stage) override;
  std::vector<Expected> expect(std::int64_t round, int stage) const override;
  void absorb(std::int64_t round, int stage, std::vector<net::Message>& received) override;
  nlohmann::json round_metrics() const override;
  std::vector<StateBuffer> state_buffers() override {
    std::vector<StateBuffer> out;
    encoder_.add_state(out, "ef_memory");
    return out;
  }

 protected:
  bool combine_then_adapt_ = false;
  LocalWork* cta_work_ = nullptr;  // cta: the step is applied after mixing
  PayloadEncoder encoder_;
  std::unique_ptr<codec::Decoder> decoder_;
  std::vector<float> mixed_;

 private:
  // method.aggregation other than mean: the received models decoded one by one.
  void absorb_robust(std::int64_t round, const std::vector<net::Message>& received);
  bool mix_in_place(std::int64_t round, const std::vector<net::Message>& received, float sw);
  bool peer_sampling() const;
  static float uniform_weight(const std::vector<net::Message>& received);
  // W(self, sender) of the round, or the uniform weight over what arrived (peer sampling).
  double neighbour_weight(std::int64_t round, int sender,
                          const std::vector<net::Message>& received) const;
  Aggregation aggregation_ = Aggregation::kMean;
  double clip_tau_ = -1;  // < 0: adaptive radius
  int clip_b_ = 1, trim_ = 1;
  std::vector<std::vector<float>> decoded_;
  std::vector<codec::ByteView> raw_;  // mix_in_place's inputs, reused
  std::vector<float> weights_;
  ClipResult last_clip_;
};

}  // namespace rumor::gossip
