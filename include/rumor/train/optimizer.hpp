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
  std::string name = "sgd";  // sgd, adam, adamw
  double lr = 0.1;
  double momentum = 0.0;  // sgd only
  bool nesterov = false;  // sgd only
  double weight_decay = 0.0;
  double beta1 = 0.9;  // adam, adamw
  double beta2 = 0.999;
  double eps = 1e-8;
  ScheduleOptions schedule;
};

// A named state buffer of the optimizer, in checkpoint order.
struct OptimizerState {
  std::string name;
  std::span<float> data;
};

// Local optimizers on flat spans, each the same update as its torch.optim namesake:
// sgd:   g = grad + wd * x;  m = mu * m + g (m = g at the first step);
//        d = nesterov ? g + mu * m : m;  x -= lr * d.
// adam:  g = grad + wd * x;  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
//        x -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps).
// adamw: as adam with g = grad, after the decoupled decay x *= 1 - lr * wd.
class LocalOptimizer {
 public:
  LocalOptimizer(std::size_t num_params, OptimizerOptions options);  // throws ConfigError
  // One step on `params` with `grads` at the scheduled rate; returns the rate used.
  double step(std::span<float> params, std::span<const float> grads);
  // Same with an explicit rate (the schedule's step counter still advances).
  void step(std::span<float> params, std::span<const float> grads, double lr);

  double lr() const { return schedule_.at(schedule_step()); }  // rate of the next step
  std::size_t steps() const { return steps_; }
  // The schedule's position: the steps taken, plus what follow_schedule_from() skipped.
  std::size_t schedule_step() const { return steps_ + skipped_; }
  // A node that joins a run, or comes back to it, at the run's step `step` goes on with the
  // run's learning rate from there (never back). Its own step count, which starts momentum
  // and Adam's bias correction, stays its own.
  void follow_schedule_from(std::size_t step) {
    if (step > schedule_step()) skipped_ = step - steps_;
  }
  const OptimizerOptions& options() const { return options_; }
  std::span<float> momentum_buffer() { return momentum_; }
  // Buffers a checkpoint must hold (sgd: momentum if any; adam/adamw: first and second moments).
  std::vector<OptimizerState> state();
  void reset();  // clears the state and the step counter
  // Checkpoint restore: the step counter (the momentum buffer is restored in place).
  void restore_steps(std::size_t steps) { steps_ = steps; }

 private:
  void sgd_step(std::span<float> params, std::span<const float> grads, float lr);
  void adam_step(std::span<float> params, std::span<const float> grads, double lr);

  OptimizerOptions options_;
  LrSchedule schedule_;
  bool adam_ = false;
  std::vector<float> momentum_;  // sgd momentum, or adam's first moment
  std::vector<float> second_;    // adam's second moment
  std::size_t steps_ = 0;
  std::size_t skipped_ = 0;  // schedule steps skipped by follow_schedule_from()
};

}  // namespace rumor::train
