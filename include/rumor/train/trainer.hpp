#pragma once
// Local training of one node on its shard: minibatches in a deterministic order from
// (seed, node id, epoch), gradient into the model's flat grads(), optimizer step on the
// flat params(). Thread safety: one trainer per peer; the dataset may be shared.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "rumor/data/dataset.hpp"
#include "rumor/train/model.hpp"
#include "rumor/train/optimizer.hpp"

namespace rumor::train {

// Deterministic minibatch order over a shard: reshuffled at each epoch from
// Rng::derive(seed, node, epoch); the last incomplete batch of an epoch is dropped
// unless the shard is smaller than one batch.
class BatchSampler {
 public:
  BatchSampler(std::vector<std::size_t> shard, std::size_t batch_size, std::uint64_t seed,
               std::uint64_t node);
  // Indices of the next batch (view valid until the next call).
  const std::vector<std::size_t>& next();
  std::size_t epoch() const { return epoch_; }
  std::size_t batches_per_epoch() const;
  const std::vector<std::size_t>& shard() const { return shard_; }

 private:
  void reshuffle();
  std::vector<std::size_t> shard_;
  std::vector<std::size_t> order_;
  std::vector<std::size_t> batch_;
  std::size_t batch_size_;
  std::uint64_t seed_;
  std::uint64_t node_;
  std::size_t epoch_ = 0;
  std::size_t pos_ = 0;
};

struct EvalResult {
  double loss = 0.0;      // mean cross-entropy
  double accuracy = 0.0;  // fraction, 0..1
  std::size_t count = 0;
};

class LocalTrainer {
 public:
  // Trains `model` on `shard` (indices into dataset.train). Model, dataset and optimizer
  // must outlive the trainer.
  LocalTrainer(Model& model, const data::Dataset& dataset, std::vector<std::size_t> shard,
               LocalOptimizer& optimizer, std::size_t batch_size, std::uint64_t seed,
               std::uint64_t node);

  // Next minibatch: forward/backward at the current model.params(); gradients in
  // model.grads(). Methods that step another vector (push-sum) call this, then the
  // optimizer on their own buffer.
  BatchStats compute_gradient();
  // compute_gradient() then optimizer.step(model.params(), model.grads()).
  BatchStats step();

  // Data-sharing methods (qdata): n distinct shard samples drawn from (seed, node, stream)
  // (the whole shard if smaller), appended to features / labels; per-sample cross-entropy
  // at the current model; gradient on given samples into model.grads().
  void draw_samples(std::size_t n, std::uint64_t stream, std::vector<float>& features,
                    std::vector<std::int32_t>& labels) const;
  std::vector<float> sample_losses(std::span<const float> features,
                                   std::span<const std::int32_t> labels) const;
  BatchStats gradient_on(std::span<const float> features, std::span<const std::int32_t> labels);
  std::size_t sample_dim() const { return dataset_.dim; }
  int num_classes() const { return dataset_.num_classes; }

  EvalResult evaluate_test() const;
  EvalResult evaluate(const data::Split& split) const;

  Model& model() { return model_; }
  LocalOptimizer& optimizer() { return optimizer_; }
  const BatchSampler& sampler() const { return sampler_; }
  // Checkpoint restore: replays the batch order up to `batches` taken (index work only).
  void skip_batches(std::size_t batches) {
    for (std::size_t i = 0; i < batches; ++i) sampler_.next();
  }

 private:
  Model& model_;
  const data::Dataset& dataset_;
  LocalOptimizer& optimizer_;
  BatchSampler sampler_;
  std::uint64_t seed_ = 0, node_ = 0;
};

EvalResult evaluate(const Model& model, const data::Split& split);

}  // namespace rumor::train
