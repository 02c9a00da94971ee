// SGD on flat spans and learning-rate schedules; no LibTorch.
#include "rumor/train/optimizer.hpp"

#include <cmath>

#include "rumor/common/error.hpp"

namespace rumor::train {

LrSchedule::LrSchedule(double base_lr, ScheduleOptions options)
    : base_lr_(base_lr), options_(std::move(options)) {
  const auto& o = options_;
  if (!(base_lr >= 0.0) || !std::isfinite(base_lr))
    throw ConfigError("optimizer.lr must be a finite number >= 0");
  if (o.kind == "step") {
    if (o.step_size == 0) throw ConfigError("optimizer.schedule: kind 'step' needs step_size >= 1");
    if (!(o.gamma > 0.0)) throw ConfigError("optimizer.schedule: kind 'step' needs gamma > 0");
  } else if (o.kind == "cosine") {
    if (o.total_steps == 0)
      throw ConfigError("optimizer.schedule: kind 'cosine' needs total_steps >= 1");
  } else if (o.kind != "constant") {
    throw ConfigError("optimizer.schedule.kind '" + o.kind +
                      "' is unknown; valid: constant, step, cosine "
                      "(linear warm-up: warmup_steps with any kind)");
  }
}

double LrSchedule::at(std::size_t step) const {
  const auto& o = options_;
  if (step < o.warmup_steps) {
    return base_lr_ * static_cast<double>(step + 1) / static_cast<double>(o.warmup_steps);
  }
  if (o.kind == "step") {
    return base_lr_ * std::pow(o.gamma, static_cast<double>(step / o.step_size));
  }
  if (o.kind == "cosine") {
    const double t = std::min(1.0, static_cast<double>(step) / static_cast<double>(o.total_steps));
    return o.min_lr + 0.5 * (base_lr_ - o.min_lr) * (1.0 + std::cos(3.141592653589793 * t));
  }
  return base_lr_;
}

LocalOptimizer::LocalOptimizer(std::size_t num_params, OptimizerOptions options)
    : options_(std::move(options)), schedule_(options_.lr, options_.schedule) {
  if (options_.name != "sgd") {
    throw ConfigError("optimizer.name '" + options_.name +
                      "' is unknown; valid: sgd (with momentum, nesterov, weight_decay)");
  }
  if (!(options_.momentum >= 0.0 && options_.momentum < 1.0))
    throw ConfigError("optimizer.momentum must be in [0, 1)");
  if (options_.nesterov && options_.momentum == 0.0)
    throw ConfigError("optimizer.nesterov needs momentum > 0");
  if (!(options_.weight_decay >= 0.0)) throw ConfigError("optimizer.weight_decay must be >= 0");
  if (options_.momentum > 0.0) momentum_.assign(num_params, 0.0f);
}

double LocalOptimizer::step(std::span<float> params, std::span<const float> grads) {
  const double lr = schedule_.at(steps_);
  step(params, grads, lr);
  return lr;
}

void LocalOptimizer::step(std::span<float> params, std::span<const float> grads, double lr) {
  if (params.size() != grads.size() || (!momentum_.empty() && params.size() != momentum_.size())) {
    throw Error("LocalOptimizer::step: params, grads and momentum differ in size");
  }
  const auto n = params.size();
  const auto eta = static_cast<float>(lr);
  const auto wd = static_cast<float>(options_.weight_decay);
  const auto mu = static_cast<float>(options_.momentum);
  float* x = params.data();
  const float* g = grads.data();
  if (momentum_.empty()) {
    for (std::size_t i = 0; i < n; ++i) x[i] -= eta * (g[i] + wd * x[i]);
  } else {
    float* m = momentum_.data();
    // torch.optim.SGD starts the buffer at the first gradient (no dampening).
    const float keep = steps_ == 0 ? 0.0f : mu;
    if (options_.nesterov) {
      for (std::size_t i = 0; i < n; ++i) {
        const float d = g[i] + wd * x[i];
        m[i] = keep * m[i] + d;
        x[i] -= eta * (d + mu * m[i]);
      }
    } else {
      for (std::size_t i = 0; i < n; ++i) {
        const float d = g[i] + wd * x[i];
        m[i] = keep * m[i] + d;
        x[i] -= eta * m[i];
      }
    }
  }
  ++steps_;
}

void LocalOptimizer::reset() {
  std::fill(momentum_.begin(), momentum_.end(), 0.0f);
  steps_ = 0;
}

}  // namespace rumor::train
