#pragma once
// Built-in architectures (internal; includes LibTorch).
#include <torch/torch.h>

#include <memory>

#include "rumor/train/model.hpp"

namespace rumor::train::detail {

// A module mapping a batch [n, ...input shape] to logits [n, classes]. Normalisation
// layers' parameters are named with "gn" (init_from_seed relies on it).
struct Net : torch::nn::Module {
  virtual torch::Tensor forward(torch::Tensor x) = 0;
  // Optional hand-written backward for the cross-entropy loss, writing the gradients into
  // the parameters' .grad() tensors (views into the flat gradient buffer) without autograd.
  // Returns false if the architecture has none. Sets loss (mean) and correct.
  virtual bool manual_backward(const torch::Tensor& x, const std::int64_t* labels, double& loss,
                               std::size_t& correct) {
    return false;
  }
};

// Throws rumor::ConfigError for an unknown name or an input the architecture cannot take.
std::shared_ptr<Net> build_net(const ModelSpec& spec, const ModelInput& input);

}  // namespace rumor::train::detail
