#pragma once
// Opt-in LibTorch view of a rumor::train::Model, for the few translation units that work
// with tensors (checkpoints, custom methods). Including this pulls in <torch/torch.h>
// (~20 s per file to compile): everything else should use model.hpp's spans.
#include <torch/torch.h>

#include <vector>

#include "rumor/train/model.hpp"

namespace rumor::train {

// 1-D float tensors over the same memory as Model::params() / Model::grads().
torch::Tensor flat_params_tensor(Model& model);
torch::Tensor flat_grads_tensor(Model& model);
// The module's parameter tensors (views into the flat buffer), in layout() order. Their
// .grad() are views into the flat gradient buffer: zero them in place (torch's
// Optimizer::zero_grad() detaches grads and throws on views) and never reassign them.
std::vector<torch::Tensor> parameter_tensors(Model& model);
// Logits for an input batch of shape [n, ...input.shape] (autograd as the caller sets it).
torch::Tensor forward(Model& model, const torch::Tensor& input);

}  // namespace rumor::train
