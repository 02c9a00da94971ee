// `allreduce`: exact averaging after every round by a ring all-reduce, the centralized
// reference among the consensus methods.
#include "methods.hpp"
#include "rumor/common/error.hpp"
#include "rumor/gossip/ring_allreduce.hpp"

namespace rumor::gossip {
namespace {

class Allreduce : public Method {
 public:
  explicit Allreduce(MethodContext ctx)
      : Method(std::move(ctx)),
        ring_(ctx_.self, ctx_.topology->size(), net::MessageKind::kAllreduce,
              net::LinkKind::kControl) {}
  std::string name() const override { return "allreduce"; }
  void init(std::span<float> model) override { model_ = model; }
  // The ring needs every node in every round: there is nothing to continue with.
  void set_peer_down(int peer, std::int64_t round) override {
    throw ProtocolError("allreduce: node " + std::to_string(ctx_.self) + " lost peer " +
                        std::to_string(peer) + " at round " + std::to_string(round + 1) +
                        "; the ring all-reduce cannot continue without a node (use a gossip "
                        "method such as dpsgd or sgp with on_peer_failure continue)");
  }
  int stages(std::int64_t round) const override { return ring_.stages(round); }
  std::vector<Outgoing> produce(std::int64_t round, int stage) override {
    if (stage == 0) ring_.begin(model_);
    return ring_.produce(round, stage);
  }
  std::vector<Expected> expect(std::int64_t round, int stage) const override {
    return ring_.expect(round, stage);
  }
  Refusal check(const net::Message& m) override { return ring_.check(m); }
  void absorb(std::int64_t round, int stage, std::vector<net::Message>& received) override {
    ring_.absorb(round, stage, received);
    if (ring_.done()) {
      const float inv = 1.0f / static_cast<float>(ctx_.topology->size());
      for (float& v : model_) v *= inv;
    }
  }

 private:
  RingAllreduce ring_;
};

}  // namespace

MethodInfo allreduce_method() {
  return method_entry<Allreduce>("allreduce",
                                 "exact averaging by ring all-reduce over the control ring",
                                 {false, false, false}, LocalMomentum::kOptimizer, {});
}

}  // namespace rumor::gossip
