// SGD, Adam and AdamW on flat spans and learning-rate schedules; no LibTorch.
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

namespace {
void check_sgd(const OptimizerOptions& o) {
  if (!(o.momentum >= 0.0 && o.momentum < 1.0))
    throw ConfigError("optimizer.momentum must be in [0, 1)");
  if (o.nesterov && o.momentum == 0.0) throw ConfigError("optimizer.nesterov needs momentum > 0");
}

void check_adam(const OptimizerOptions& o) {
  if (o.momentum != 0.0 || o.nesterov)
    throw ConfigError("optimizer." + o.name +
                      " keeps its own moments (optimizer.beta1, beta2): set optimizer.momentum "
                      "to 0 and optimizer.nesterov to false");
  if (!(o.beta1 >= 0.0 && o.beta1 < 1.0)) throw ConfigError("optimizer.beta1 must be in [0, 1)");
  if (!(o.beta2 >= 0.0 && o.beta2 < 1.0)) throw ConfigError("optimizer.beta2 must be in [0, 1)");
  if (!(o.eps > 0.0) || !std::isfinite(o.eps))
    throw ConfigError("optimizer.eps must be a finite number > 0");
}
}  // namespace

LocalOptimizer::LocalOptimizer(std::size_t num_params, OptimizerOptions options)
    : options_(std::move(options)), schedule_(options_.lr, options_.schedule) {
  const auto& name = options_.name;
  adam_ = name == "adam" || name == "adamw";
  if (name != "sgd" && !adam_) {
    throw ConfigError("optimizer.name '" + name +
                      "' is unknown; valid: sgd (with momentum, nesterov, weight_decay), adam, "
                      "adamw (beta1, beta2, eps, weight_decay)");
  }
  if (!(options_.weight_decay >= 0.0)) throw ConfigError("optimizer.weight_decay must be >= 0");
  if (adam_) {
    check_adam(options_);
    momentum_.assign(num_params, 0.0f);
    second_.assign(num_params, 0.0f);
  } else {
    check_sgd(options_);
    if (options_.momentum > 0.0) momentum_.assign(num_params, 0.0f);
  }
}

double LocalOptimizer::step(std::span<float> params, std::span<const float> grads) {
  const double lr = schedule_.at(schedule_step());
  step(params, grads, lr);
  return lr;
}

void LocalOptimizer::step(std::span<float> params, std::span<const float> grads, double lr) {
  if (params.size() != grads.size() || (!momentum_.empty() && params.size() != momentum_.size())) {
    throw Error("LocalOptimizer::step: params, grads and optimizer state differ in size");
  }
  if (adam_) {
    adam_step(params, grads, lr);
  } else {
    sgd_step(params, grads, static_cast<float>(lr));
  }
  ++steps_;
}

void LocalOptimizer::sgd_step(std::span<float> params, std::span<const float> grads, float eta) {
  const auto n = params.size();
  const auto wd = static_cast<float>(options_.weight_decay);
  const auto mu = static_cast<float>(options_.momentum);
  float* x = params.data();
  const float* g = grads.data();
  if (momentum_.empty()) {
    for (std::size_t i = 0; i < n; ++i) x[i] -= eta * (g[i] + wd * x[i]);
    return;
  }
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

void LocalOptimizer::adam_step(std::span<float> params, std::span<const float> grads, double lr) {
  const auto t = static_cast<double>(steps_ + 1);
  const double b1 = options_.beta1, b2 = options_.beta2;
  // Scalars in double as torch.optim computes them, then one float pass.
  const auto step_size = static_cast<float>(lr / (1.0 - std::pow(b1, t)));
  const auto root_c2 = static_cast<float>(std::sqrt(1.0 - std::pow(b2, t)));
  const bool decoupled = options_.name == "adamw";
  const auto wd = static_cast<float>(options_.weight_decay);
  const auto shrink = static_cast<float>(1.0 - lr * options_.weight_decay);
  const auto fb1 = static_cast<float>(b1), fb2 = static_cast<float>(b2);
  const auto eps = static_cast<float>(options_.eps);
  float* x = params.data();
  const float* g = grads.data();
  float* m = momentum_.data();
  float* v = second_.data();
  for (std::size_t i = 0, n = params.size(); i < n; ++i) {
    float gi = g[i];
    if (decoupled) {
      x[i] *= shrink;
    } else {
      gi += wd * x[i];
    }
    m[i] = fb1 * m[i] + (1.0f - fb1) * gi;
    v[i] = fb2 * v[i] + (1.0f - fb2) * gi * gi;
    x[i] -= step_size * m[i] / (std::sqrt(v[i]) / root_c2 + eps);
  }
}

std::vector<OptimizerState> LocalOptimizer::state() {
  if (adam_) return {{"adam_m", momentum_}, {"adam_v", second_}};
  if (momentum_.empty()) return {};
  return {{"momentum", momentum_}};
}

void LocalOptimizer::reset() {
  std::fill(momentum_.begin(), momentum_.end(), 0.0f);
  std::fill(second_.begin(), second_.end(), 0.0f);
  steps_ = 0;
  skipped_ = 0;
}

}  // namespace rumor::train
