// SQuARM-SGD (Singh et al. 2020): CHOCO-SGD with local Nesterov steps (the optimizer's
// momentum) that sends q only when the public copy lags the model by more than a threshold;
// otherwise a 'not triggered' notice keeps receivers going.
//
// The paper's test is ||x - hat x_i||^2 > c_t eta_t^2, whose scale depends on the model's
// size, its gradients, H and the momentum (useful c_t range from 1 to 1e5). By default the
// lag is measured in rounds of the node's own movement instead: how much ||x - hat x_i||^2
// grew since the last send (what the codec left out then is not counted) over a running
// mean of ||x_t - x_{t-1}||^2, the model's squared movement in one round.
#include <algorithm>
#include <cmath>

#include "choco.hpp"
#include "common.hpp"
#include "rumor/common/error.hpp"

namespace rumor::gossip {
namespace {

double sq_distance(std::span<const float> a, std::span<const float> b) {
  double s = 0;
  for (std::size_t k = 0; k < a.size(); ++k) {
    const double d = static_cast<double>(a[k]) - b[k];
    s += d * d;
  }
  return s;
}

class Squarm : public Choco {
 public:
  // A consensus step of at most 0.25 (method.gamma auto): with sends skipped the copies are
  // staler than CHOCO's, and on the quickstart (topk:0.1|sign) 0.4 makes the nodes'
  // disagreement grow without bound (experiments/squarm-budget); always sending, 0.4 is
  // stable there.
  explicit Squarm(MethodContext ctx) : Choco(std::move(ctx), 0.25) {
    c0_ = param<double>("c0");
    growth_ = param<double>("c_growth");
    every_ = param<double>("c_every_epochs");
    const auto units = param<std::string>("c_units");
    if (units != "update" && units != "lr2")
      throw ConfigError("squarm: method.c_units must be \"update\" or \"lr2\", got \"" + units +
                        "\"");
    per_update_ = units == "update";
    const auto decay = param<std::string>("lr_schedule");
    if (decay != "cosine" && decay != "optimizer")
      throw ConfigError("squarm: method.lr_schedule must be \"cosine\" or \"optimizer\", got \"" +
                        decay + "\"");
    if (c0_ < 0 || growth_ < 0 || every_ <= 0)
      throw ConfigError(
          "squarm: method.c0 and method.c_growth must be >= 0, "
          "method.c_every_epochs > 0");
  }
  std::string name() const override { return "squarm"; }

  void init(std::span<float> model) override {
    Choco::init(model);
    last_.assign(model.begin(), model.end());
  }

  LocalWork::Stats local(std::int64_t round, LocalWork& work) override {
    const auto s = Method::local(round, work);
    trains_ = work.trains();
    lr_ = trains_ ? work.lr() : 0.0;
    epochs_ = trains_ ? work.epochs() : 0.0;
    return s;
  }

  std::vector<Outgoing> produce(std::int64_t round, int stage) override {
    if (trains_) {
      // How far the model moved in a round (local steps and consensus): a running mean over
      // the last ~10 rounds (a plain mean until there are 10).
      const double u = sq_distance(model_, last_);
      ++updates_;
      update_sq_ += (u - update_sq_) / static_cast<double>(std::min<std::uint64_t>(updates_, 10));
      last_.assign(model_.begin(), model_.end());
    }
    const auto sent = triggered_;
    auto out = Choco::produce(round, stage);
    // What the codec left out of this send: lag that only more sends could remove, so the
    // trigger does not count it (c_t then means the same for any codec).
    if (triggered_ != sent) residual_sq_ = sq_distance(model_, hat_self_);
    return out;
  }

  // c_t = c0 + growth * floor(epochs / every): grows slowly, as the analysis allows.
  double threshold() const { return c0_ + growth_ * std::floor(epochs_ / every_); }

  nlohmann::json round_metrics() const override {
    if (std::isnan(lag_)) return nlohmann::json::object();
    return {{"trigger_lag", lag_}, {"trigger_c", threshold()}};
  }
  nlohmann::json save_state() const override {
    auto s = Choco::save_state();
    s["update_sq"] = update_sq_;
    s["updates"] = updates_;
    s["residual_sq"] = residual_sq_;
    return s;
  }
  std::vector<StateBuffer> state_buffers() override {
    auto out = Choco::state_buffers();
    out.push_back(vector_state("squarm_last", last_));
    return out;
  }
  void load_state(const nlohmann::json& s) override {
    Choco::load_state(s);
    update_sq_ = s.value("update_sq", 0.0);
    updates_ = s.value("updates", std::uint64_t{0});
    residual_sq_ = s.value("residual_sq", 0.0);
  }

 protected:
  bool should_send(double sq) override {
    const double unit = per_update_ ? update_sq_ : lr_ * lr_;
    // Task average, or no local progress yet: nothing to scale the trigger by.
    if (!(unit > 0)) return true;
    lag_ = (per_update_ ? sq - residual_sq_ : sq) / unit;
    return threshold() <= 0 || lag_ > threshold();  // c_t = 0: every round
  }

 private:
  // Options (squarm_options()).
  double c0_ = 0, growth_ = 0, every_ = 0;
  bool per_update_ = true;
  // From the last local(): step size, epochs; running mean of ||x_t - x_{t-1}||^2.
  bool trains_ = false;
  double lr_ = 0, epochs_ = 0, update_sq_ = 0;
  double residual_sq_ = 0;  // ||x - hat x||^2 right after the last send
  std::uint64_t updates_ = 0;
  double lag_ = std::nan("");  // the last value compared with c_t (a metric)
  std::vector<float> last_;    // the model at the previous send decision
};

}  // namespace

namespace {
std::vector<Option> squarm_options() {
  auto o = choco_options();
  o.insert(o.end(),
           {{"method.c0", "number", 2.5,
             "squarm: trigger threshold c_0; a node sends when the lag of its public copy, in "
             "c_units, exceeds c_t = c0 + c_growth * floor(epochs / c_every_epochs) (0: always; "
             "metrics lines: trigger_lag, trigger_c)",
             0, 1e12},
            {"method.c_units", "string", "update",
             "squarm: unit of the threshold: update (rounds of movement: the running mean of "
             "||x_t - x_{t-1}||^2; only the lag gathered since the last send counts; one round "
             "reads about 3 on the quickstart, so c0 2.5 skips a send when the model moved "
             "less than usual) or lr2 (the paper's lr^2: useful c0 depends on the model and "
             "its gradients)"},
            {"method.c_growth", "number", 1.0,
             "squarm: c_t grows by this every c_every_epochs epochs", 0, 1e9},
            {"method.c_every_epochs", "number", 10.0, "squarm: epochs between threshold increases",
             0, 1e9},
            {"method.beta", "number", 0.9, "squarm, qgm: Nesterov momentum factor", 0, 1},
            {"method.lr_schedule", "string", "cosine",
             "squarm: the local steps' learning rate: cosine (from optimizer.lr down to "
             "optimizer.schedule.min_lr over the run, after optimizer.schedule.warmup_steps; "
             "the paper's analysis lets eta_t decay, and the public copies catch up with the "
             "models as the steps shrink, so the nodes end in agreement) or optimizer "
             "(optimizer.schedule as configured)"},
            {"method.scale_lr", "bool", true,
             "squarm: local steps at optimizer.lr x (1 - beta), so that they move the model as far "
             "as plain SGD at optimizer.lr (false: the paper's steps, effectively lr / (1 - beta), "
             "10x at beta 0.9)"}});
  return o;
}
}  // namespace

MethodInfo squarm_method() {
  return method_entry<Squarm>(
      "squarm", "SQuARM-SGD: local Nesterov steps, triggered compressed updates",
      {true, true, true}, LocalMomentum::kNesterov, squarm_options(), kPublicCopiesNoAggregation);
}

}  // namespace rumor::gossip
