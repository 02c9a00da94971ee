// `local`: no communication at all; every node trains alone (the lower baseline).
#include "methods.hpp"

namespace rumor::gossip {
namespace {

class Local : public Method {
 public:
  explicit Local(MethodContext ctx) : Method(std::move(ctx)) {}
  std::string name() const override { return "local"; }
  void init(std::span<float> model) override { model_ = model; }
  int stages(std::int64_t) const override { return 0; }
  std::vector<Outgoing> produce(std::int64_t, int) override { return {}; }
  std::vector<Expected> expect(std::int64_t, int) const override { return {}; }
  void absorb(std::int64_t, int, std::vector<net::Message>&) override {}
};

}  // namespace

MethodInfo local_method() {
  return method_entry<Local>("local", "no communication: the lower baseline", {false, false, false},
                             LocalMomentum::kOptimizer, {});
}

}  // namespace rumor::gossip
