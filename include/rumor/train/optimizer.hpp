#pragma once
// Local optimizer working directly on a flat parameter buffer (no LibTorch): the same
// code updates a model's params() or a method's own vector (e.g. push-sum's numerator).
// Thread safety: one optimizer per peer.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace rumor::train {

struct ScheduleOptions {
  std::string kind = "constant";  // constant, step, cosine
  std::size_t step_size = 1000;   // step: multiply by gamma every step_size steps
  double gamma = 0.1;
  std::size_t total_steps = 0;  // cosine: decays to min_lr at total_steps (required)
  double min_lr = 0.0;
  std::size_t warmup_steps = 0;  // linear warm-up from 0 to lr, combined with any kind
};

// Learning rate at a given step; warm-up first, then the schedule counted from step 0.
class LrSchedule {
 public:
  LrSchedule(double base_lr, ScheduleOptions options);  // throws rumor::ConfigError
  double at(std::size_t step) const;
  double base() const { return base_lr_; }

 private:
  double base_lr_;
  ScheduleOptions options_;
};

struct OptimizerOptions {
  std::string name = "sgd";
  double lr = 0.1;
  double momentum = 0.0;
  bool nesterov = false;
  double weight_decay = 0.0;
  ScheduleOptions schedule;
};

// SGD with momentum / Nesterov and weight decay, same update as torch.optim.SGD:
//   g = grad + wd * x;  m = mu * m + g (m = g at the first step);
//   d = nesterov ? g + mu * m : m;  x -= lr * d.
class LocalOptimizer {
 public:
  LocalOptimizer(std::size_t num_params, OptimizerOptions options);  // throws ConfigError
  // One step on `params` with `grads` at the scheduled rate; returns the rate used.
  double step(std::span<float> params, std::span<const float> grads);
  // Same with an explicit rate (the schedule's step counter still advances).
  void step(std::span<float> params, std::span<const float> grads, double lr);

  double lr() const { return schedule_.at(steps_); }  // rate of the next step
  std::size_t steps() const { return steps_; }
  const OptimizerOptions& options() const { return options_; }
  std::span<float> momentum_buffer() { return momentum_; }
  void reset();  // clears momentum and the step counter
  // Checkpoint restore: the step counter (the momentum buffer is restored in place).
  void restore_steps(std::size_t steps) { steps_ = steps; }

 private:
  OptimizerOptions options_;
  LrSchedule schedule_;
  std::vector<float> momentum_;
  std::size_t steps_ = 0;
};

}  // namespace rumor::train
