#pragma once
// D-PSGD mixing, shared by dpsgd and qgm (internal).
#include <memory>

#include "common.hpp"
#include "rumor/codec/codec.hpp"
#include "rumor/gossip/method.hpp"

namespace rumor::gossip {

MethodInfo dpsgd_method();  // qgm extends dpsgd's options

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
};

}  // namespace rumor::gossip
