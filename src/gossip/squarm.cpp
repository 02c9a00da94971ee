// SQuARM-SGD (Singh et al. 2020): CHOCO-SGD with local Nesterov steps (the optimizer's
// momentum) that sends q only when ||x - hat x_i||^2 > c_t eta_t^2; otherwise a
// 'not triggered' notice keeps receivers going.
#include <cmath>

#include "choco.hpp"
#include "rumor/common/error.hpp"

namespace rumor::gossip {
namespace {

class Squarm : public Choco {
 public:
  explicit Squarm(MethodContext ctx) : Choco(std::move(ctx)) {
    c0_ = param<double>("c0");
    growth_ = param<double>("c_growth");
    every_ = param<double>("c_every_epochs");
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
  double c0_ = 0, growth_ = 0, every_ = 0, lr_ = 0, epochs_ = 0;  // options: squarm_options()
};

}  // namespace

namespace {
std::vector<Option> squarm_options() {
  auto o = choco_options();
  o.insert(o.end(),
           {{"method.c0", "number", 2.0, "squarm: initial trigger threshold c_0", 0, 1e9},
            {"method.c_growth", "number", 1.0,
             "squarm: c_t grows by this every c_every_epochs epochs", 0, 1e3},
            {"method.c_every_epochs", "number", 10.0, "squarm: epochs between threshold increases",
             0, 1e9},
            {"method.beta", "number", 0.9, "squarm, qgm: Nesterov momentum factor", 0, 1}});
  return o;
}
}  // namespace

MethodInfo squarm_method() {
  return method_entry<Squarm>(
      "squarm", "SQuARM-SGD: local Nesterov steps, triggered compressed updates",
      {true, true, true}, LocalMomentum::kNesterov, squarm_options(), kPublicCopiesNoAggregation);
}

}  // namespace rumor::gossip
