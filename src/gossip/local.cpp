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

std::unique_ptr<Method> make_local(MethodContext ctx) {
  return std::make_unique<Local>(std::move(ctx));
}

}  // namespace rumor::gossip
