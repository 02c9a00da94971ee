// Local training loop pieces; no LibTorch (the model does the tensor work).
#include "rumor/train/trainer.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "rumor/common/error.hpp"
#include "rumor/common/rng.hpp"

namespace rumor::train {
namespace {
enum : std::uint64_t { kStreamBatches = 0x6261746368, kStreamDraw = 0x64726177 };
}

BatchSampler::BatchSampler(std::vector<std::size_t> shard, std::size_t batch_size,
                           std::uint64_t seed, std::uint64_t node)
    : shard_(std::move(shard)), batch_size_(batch_size), seed_(seed), node_(node) {
  if (shard_.empty())
    throw DataError("node " + std::to_string(node) +
                    " has no training samples; check the partition");
  if (batch_size_ == 0) throw ConfigError("batch_size must be >= 1");
  reshuffle();
}

void BatchSampler::reshuffle() {
  order_ = shard_;
  Rng rng = Rng::derive(seed_, kStreamBatches, node_, epoch_);
  for (std::size_t i = order_.size(); i > 1; --i) std::swap(order_[i - 1], order_[rng.below(i)]);
  pos_ = 0;
}

std::size_t BatchSampler::batches_per_epoch() const {
  return std::max<std::size_t>(shard_.size() / batch_size_, 1);
}

const std::vector<std::size_t>& BatchSampler::next() {
  const std::size_t take = std::min(batch_size_, order_.size());
  if (pos_ + take > order_.size()) {
    ++epoch_;
    reshuffle();
  }
  batch_.assign(order_.begin() + static_cast<std::ptrdiff_t>(pos_),
                order_.begin() + static_cast<std::ptrdiff_t>(pos_ + take));
  pos_ += take;
  return batch_;
}

LocalTrainer::LocalTrainer(Model& model, const data::Dataset& dataset,
                           std::vector<std::size_t> shard, LocalOptimizer& optimizer,
                           std::size_t batch_size, std::uint64_t seed, std::uint64_t node)
    : model_(model),
      dataset_(dataset),
      optimizer_(optimizer),
      sampler_(std::move(shard), batch_size, seed, node),
      seed_(seed),
      node_(node) {
  std::size_t in_dim = 1;
  for (auto v : model.input().shape) in_dim *= static_cast<std::size_t>(v);
  if (in_dim != dataset.dim) {
    throw ConfigError("model '" + model.name() + "' takes " + std::to_string(in_dim) +
                      " inputs but dataset " + dataset.name + " has " +
                      std::to_string(dataset.dim) + " features");
  }
}

BatchStats LocalTrainer::compute_gradient() {
  const auto& idx = sampler_.next();
  const std::size_t d = dataset_.dim;
  // One batch buffer per thread, not per trainer: thousands of peers share a few threads
  // in one process, and the batch lives only for this call.
  thread_local std::vector<float> features;
  thread_local std::vector<std::int32_t> labels;
  features.resize(idx.size() * d);
  labels.resize(idx.size());
  for (std::size_t i = 0; i < idx.size(); ++i) {
    std::memcpy(features.data() + i * d, dataset_.train.features.data() + idx[i] * d,
                d * sizeof(float));
    labels[i] = dataset_.train.labels[idx[i]];
  }
  return model_.forward_backward(features, labels);
}

void LocalTrainer::draw_samples(std::size_t n, std::uint64_t stream, std::vector<float>& features,
                                std::vector<std::int32_t>& labels) const {
  std::vector<std::size_t> pool = sampler_.shard();
  n = std::min(n, pool.size());
  Rng rng = Rng::derive(seed_, kStreamDraw, node_, stream);
  const std::size_t d = dataset_.dim;
  for (std::size_t i = 0; i < n; ++i) {  // partial Fisher-Yates: n distinct samples
    std::swap(pool[i], pool[i + rng.below(pool.size() - i)]);
    const auto row = dataset_.train.row(pool[i], d);
    features.insert(features.end(), row.begin(), row.end());
    labels.push_back(dataset_.train.labels[pool[i]]);
  }
}

std::vector<float> LocalTrainer::sample_losses(std::span<const float> features,
                                               std::span<const std::int32_t> labels) const {
  const auto logits = model_.predict(features);
  const std::size_t c = static_cast<std::size_t>(dataset_.num_classes);
  std::vector<float> out(labels.size());
  for (std::size_t i = 0; i < labels.size(); ++i) {
    const float* z = logits.data() + i * c;
    const float m = *std::max_element(z, z + c);
    double s = 0;
    for (std::size_t k = 0; k < c; ++k) s += std::exp(static_cast<double>(z[k] - m));
    out[i] = static_cast<float>(std::log(s) + m - z[labels[i]]);
  }
  return out;
}

BatchStats LocalTrainer::gradient_on(std::span<const float> features,
                                     std::span<const std::int32_t> labels) {
  return model_.forward_backward(features, labels);
}

BatchStats LocalTrainer::step() {
  BatchStats st = compute_gradient();
  optimizer_.step(model_.params(), model_.grads());
  return st;
}

EvalResult LocalTrainer::evaluate_test() const {
  return evaluate(dataset_.test);
}
EvalResult LocalTrainer::evaluate(const data::Split& split) const {
  return train::evaluate(model_, split);
}

EvalResult evaluate(const Model& model, const data::Split& split) {
  EvalResult r;
  if (split.size() == 0) return r;
  const BatchStats st = model.evaluate(split.features, split.labels);
  r.loss = st.loss;
  r.count = st.count;
  r.accuracy = static_cast<double>(st.correct) / static_cast<double>(st.count);
  return r;
}

}  // namespace rumor::train
