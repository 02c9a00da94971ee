// Models on one flat parameter buffer. The only LibTorch translation unit of the module
// besides the architectures (architectures.cpp): the flat tensor owns the storage, and
// every parameter tensor is re-pointed (Tensor::set_) at its slice of it, so the module,
// optimizers and consensus methods all see the same memory.
#include <ATen/Parallel.h>
#include <torch/script.h>
#include <torch/torch.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>

#include "architectures.hpp"
#include "rumor/common/error.hpp"
#include "rumor/common/rng.hpp"
#include "rumor/common/threads.hpp"
#include "rumor/train/model.hpp"
#include "rumor/train/torch_access.hpp"

namespace rumor::train {

struct Model::Impl {
  std::string name;
  ModelInput input;
  std::size_t dim = 0;
  torch::Tensor flat;
  torch::Tensor flat_grad;
  std::vector<torch::Tensor> params;
  std::vector<Slot> layout;
  std::shared_ptr<detail::Net> net;        // built-in architectures
  std::optional<torch::jit::Module> jit;   // torchscript
  std::vector<std::int64_t> label_buffer;  // int32 -> int64 labels, reused

  torch::Tensor forward(const torch::Tensor& x) {
    if (net) return net->forward(x);
    return jit->forward({x}).toTensor();
  }
  torch::Tensor batch_input(std::span<const float> features, std::size_t n) const {
    std::vector<std::int64_t> sizes{static_cast<std::int64_t>(n)};
    sizes.insert(sizes.end(), input.shape.begin(), input.shape.end());
    // from_blob does not copy; the tensor is only read.
    return torch::from_blob(const_cast<float*>(features.data()), sizes, torch::kFloat32);
  }
};

namespace {

enum : std::uint64_t { kStreamInit = 0x696e6974 };

std::vector<std::int64_t> contiguous_strides(const std::vector<std::int64_t>& sizes) {
  std::vector<std::int64_t> strides(sizes.size(), 1);
  for (std::size_t i = sizes.size(); i-- > 1;)
    strides[i - 1] = strides[i] * std::max<std::int64_t>(sizes[i], 1);
  return strides;
}

// Moves every parameter into one flat buffer (values kept) and points its gradient at
// the matching slice of a flat gradient buffer.
void bind_flat(Model::Impl& m, const std::vector<std::pair<std::string, torch::Tensor>>& named) {
  torch::NoGradGuard no_grad;
  std::int64_t total = 0;
  for (const auto& [name, p] : named) total += p.numel();
  m.flat = torch::empty({total}, torch::kFloat32);
  m.flat_grad = torch::zeros({total}, torch::kFloat32);
  std::int64_t off = 0;
  for (const auto& [name, p0] : named) {
    torch::Tensor p = p0;
    if (p.scalar_type() != torch::kFloat32) {
      throw ConfigError("model parameter '" + name + "' is not float32; save the model in float32");
    }
    const std::int64_t n = p.numel();
    const std::vector<std::int64_t> sizes(p.sizes().begin(), p.sizes().end());
    m.flat.narrow(0, off, n).copy_(p.reshape({-1}));
    p.set_(m.flat.storage(), off, sizes, contiguous_strides(sizes));
    p.requires_grad_(true);
    p.mutable_grad() = m.flat_grad.narrow(0, off, n).view(sizes);
    m.params.push_back(p);
    m.layout.push_back(
        Model::Slot{name, sizes, static_cast<std::size_t>(off), static_cast<std::size_t>(n)});
    off += n;
  }
}

// PyTorch's default initialisation (uniform +-1/sqrt(fan_in) for weights and biases,
// ones/zeros for normalisation layers), drawn from rumor::Rng so that it depends on the
// seed alone: no global Torch generator, no thread interference.
void init_from_seed(Model::Impl& m, std::uint64_t seed) {
  float* data = m.flat.data_ptr<float>();
  std::int64_t last_fan_in = 1;
  for (std::size_t s = 0; s < m.layout.size(); ++s) {
    const auto& slot = m.layout[s];
    float* p = data + slot.offset;
    const bool is_norm = slot.name.find("gn") != std::string::npos;
    const bool is_bias =
        slot.name.size() >= 4 && slot.name.compare(slot.name.size() - 4, 4, "bias") == 0;
    if (is_norm) {
      std::fill(p, p + slot.size, is_bias ? 0.0f : 1.0f);
      continue;
    }
    std::int64_t fan_in = last_fan_in;
    if (slot.shape.size() >= 2) {
      fan_in = 1;
      for (std::size_t i = 1; i < slot.shape.size(); ++i) fan_in *= slot.shape[i];
      last_fan_in = fan_in;
    }
    const float bound = 1.0f / std::sqrt(static_cast<float>(std::max<std::int64_t>(fan_in, 1)));
    Rng rng = Rng::derive(seed, kStreamInit, s);
    for (std::size_t i = 0; i < slot.size; ++i) p[i] = (2.0f * rng.uniform_float() - 1.0f) * bound;
  }
}

std::size_t product(const std::vector<std::int64_t>& shape) {
  std::size_t d = 1;
  for (auto v : shape) d *= static_cast<std::size_t>(v);
  return d;
}

BatchStats loss_and_accuracy(const torch::Tensor& logits, const torch::Tensor& labels,
                             torch::Tensor* loss_out) {
  torch::Tensor loss = torch::nn::functional::cross_entropy(logits, labels);
  BatchStats st;
  st.loss = loss.item<double>();
  st.count = static_cast<std::size_t>(labels.size(0));
  // Argmax in plain C++: for small batches four tensor ops cost more than the loop.
  const torch::Tensor l = logits.detach().contiguous();
  const float* z = l.data_ptr<float>();
  const std::int64_t* y = labels.data_ptr<std::int64_t>();
  const auto k = static_cast<std::size_t>(l.size(1));
  for (std::size_t i = 0; i < st.count; ++i) {
    const float* row = z + i * k;
    st.correct += static_cast<std::size_t>(std::max_element(row, row + k) - row) ==
                  static_cast<std::size_t>(y[i]);
  }
  if (loss_out) *loss_out = loss;
  return st;
}

std::string shape_text(c10::IntArrayRef sizes) {
  std::string s = "[";
  for (std::size_t i = 0; i < sizes.size(); ++i) s += (i ? ", " : "") + std::to_string(sizes[i]);
  return s + "]";
}

// The one informative line of a LibTorch or TorchScript error: the last "...Error: ..." line
// of an interpreter traceback (where the cause is), else the first line.
std::string torch_cause(const std::string& what) {
  std::string first, last_error;
  std::size_t start = 0;
  while (start <= what.size()) {
    std::size_t end = what.find('\n', start);
    if (end == std::string::npos) end = what.size();
    std::string line = what.substr(start, end - start);
    line.erase(0, line.find_first_not_of(" \t"));
    if (!line.empty() && first.empty()) first = line;
    if (line.find("Error: ") != std::string::npos) last_error = line;
    start = end + 1;
  }
  std::string cause = last_error.empty() ? first : last_error;
  if (cause.size() > 300) cause = cause.substr(0, 300) + "...";
  return cause;
}

const char* const kByomHint =
    "README.md, section 'Bring your own model (TorchScript)', shows a module that fits";

// A module file saved with torch.jit.save. Errors name the file and say what to do.
torch::jit::Module load_torchscript(const std::string& path) {
  const std::string what = "model.path '" + path + "'";
  if (path.empty())
    throw ConfigError("model 'torchscript' needs model.path (a file saved with torch.jit.save)");
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    throw ConfigError(what +
                      ": no such file (a relative model.path is taken from the config "
                      "file's folder, one given with --set from the working directory); "
                      "write it with torch.jit.save(torch.jit.script(net), PATH); " +
                      kByomHint);
  }
  if (std::filesystem::is_directory(path, ec))
    throw ConfigError(what + " is a folder; give the .pt file saved with torch.jit.save");
  if (!std::ifstream(path, std::ios::binary)) {
    throw ConfigError(what + " cannot be opened for reading (" + std::strerror(errno) +
                      "); check its permissions");
  }
  try {
    return torch::jit::load(path, torch::kCPU);
  } catch (const std::exception& e) {
    const auto* c10 = dynamic_cast<const c10::Error*>(&e);
    throw ConfigError(
        what + " is not a TorchScript module rumor can load (LibTorch " TORCH_VERSION ": " +
        torch_cause(c10 ? c10->what_without_backtrace() : e.what()) +
        "); save it with torch.jit.save(torch.jit.script(net), PATH) (a state_dict or a "
        "torch.save'd nn.Module is not TorchScript, and LibTorch " TORCH_VERSION
        " may not read a file saved by a newer PyTorch); " +
        kByomHint);
  }
}

// Feeds a batch of 2 zero samples of the dataset's shape and checks what comes back: one
// float32 logit per class. A failure says what was fed and what the model must accept.
void check_forward(Model::Impl& m, const ModelSpec& spec) {
  torch::NoGradGuard no_grad;
  std::vector<std::int64_t> sizes{2};
  sizes.insert(sizes.end(), m.input.shape.begin(), m.input.shape.end());
  const std::string fed = "float32 " + shape_text(sizes);
  const std::string classes = std::to_string(m.input.num_classes);
  const std::string name = m.jit ? "TorchScript model " + spec.path : "model '" + spec.name + "'";
  const std::string contract =
      "forward(x) must take x of float32 [batch, " + shape_text(m.input.shape).substr(1) +
      " (batch, then the dataset's sample shape) and return float32 logits [batch, " + classes +
      "]";
  torch::Tensor out;
  try {
    if (m.net) {
      out = m.net->forward(torch::zeros(sizes));
    } else {
      const c10::IValue v = m.jit->forward({torch::zeros(sizes)});
      if (!v.isTensor())
        throw ConfigError(name + " returns a " + v.tagKind() + ", not a tensor; " + contract);
      out = v.toTensor();
    }
  } catch (const ConfigError&) {
    throw;
  } catch (const std::exception& e) {
    const auto* c10 = dynamic_cast<const c10::Error*>(&e);
    throw ConfigError(name + " fails on the input rumor feeds it, " + fed + ": " +
                      torch_cause(c10 ? c10->what_without_backtrace() : e.what()) + "; " +
                      contract + (m.jit ? std::string("; ") + kByomHint : ""));
  }
  if (out.dim() != 2 || out.size(0) != 2 || out.size(1) != m.input.num_classes) {
    throw ConfigError(name + " returns shape " + shape_text(out.sizes()) + " for input " + fed +
                      ", expected [2, " + classes + "] (one logit per class); " + contract);
  }
  if (out.scalar_type() != torch::kFloat32) {
    throw ConfigError(name + " returns " + std::string(c10::toString(out.scalar_type())) +
                      " logits, expected float32; " + contract);
  }
}

}  // namespace

Model::Model(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Model::~Model() = default;

std::unique_ptr<Model> Model::create(const ModelSpec& spec, const ModelInput& input,
                                     std::uint64_t seed) {
  if (input.shape.empty() || input.num_classes < 1) {
    throw ConfigError("model '" + spec.name + "': input shape and class count are required");
  }
  auto impl = std::make_unique<Impl>();
  impl->name = spec.name;
  impl->input = input;
  impl->dim = product(input.shape);
  std::vector<std::pair<std::string, torch::Tensor>> named;
  if (spec.name == "torchscript") {
    impl->jit = load_torchscript(spec.path);
    for (const auto& np : impl->jit->named_parameters(/*recurse=*/true))
      named.emplace_back(np.name, np.value);
    if (named.empty())
      throw ConfigError("TorchScript model " + spec.path +
                        " has no parameters to train (nn.Parameter or registered parameters)");
  } else {
    impl->net = detail::build_net(spec, input);
    for (const auto& np : impl->net->named_parameters(/*recurse=*/true))
      named.emplace_back(np.key(), np.value());
  }
  bind_flat(*impl, named);
  if (!impl->jit) init_from_seed(*impl, seed);
  check_forward(*impl, spec);
  return std::unique_ptr<Model>(new Model(std::move(impl)));
}

const std::string& Model::name() const {
  return impl_->name;
}
const ModelInput& Model::input() const {
  return impl_->input;
}
std::size_t Model::num_params() const {
  return static_cast<std::size_t>(impl_->flat.numel());
}
std::span<float> Model::params() {
  return {impl_->flat.data_ptr<float>(), num_params()};
}
std::span<const float> Model::params() const {
  return {impl_->flat.data_ptr<float>(), num_params()};
}
std::span<float> Model::grads() {
  return {impl_->flat_grad.data_ptr<float>(), num_params()};
}
std::span<const float> Model::grads() const {
  return {impl_->flat_grad.data_ptr<float>(), num_params()};
}
const std::vector<Model::Slot>& Model::layout() const {
  return impl_->layout;
}

BatchStats Model::forward_backward(std::span<const float> features,
                                   std::span<const std::int32_t> labels) {
  const std::size_t n = labels.size();
  if (n == 0 || features.size() != n * impl_->dim) {
    throw Error("forward_backward: " + std::to_string(features.size()) + " feature values for " +
                std::to_string(n) + " labels of dimension " + std::to_string(impl_->dim));
  }
  impl_->label_buffer.assign(labels.begin(), labels.end());
  for (auto l : impl_->label_buffer) {
    if (l < 0 || l >= impl_->input.num_classes)
      throw DataError("label " + std::to_string(l) + " out of range");
  }
  if (impl_->net && manual_backward_) {
    BatchStats st;
    st.count = n;
    if (impl_->net->manual_backward(impl_->batch_input(features, n), impl_->label_buffer.data(),
                                    st.loss, st.correct)) {
      return st;
    }
  }
  torch::Tensor y =
      torch::from_blob(impl_->label_buffer.data(), {static_cast<std::int64_t>(n)}, torch::kInt64);
  impl_->flat_grad.zero_();
  torch::Tensor loss;
  BatchStats st = loss_and_accuracy(impl_->forward(impl_->batch_input(features, n)), y, &loss);
  loss.backward();
  return st;
}

BatchStats Model::evaluate(std::span<const float> features, std::span<const std::int32_t> labels,
                           std::size_t chunk) const {
  torch::NoGradGuard no_grad;
  BatchStats total;
  const std::size_t n = labels.size();
  if (features.size() != n * impl_->dim)
    throw Error("evaluate: features and labels differ in count");
  chunk = std::max<std::size_t>(chunk, 1);
  double loss_sum = 0.0;
  std::vector<std::int64_t> y64;
  for (std::size_t start = 0; start < n; start += chunk) {
    const std::size_t m = std::min(chunk, n - start);
    y64.assign(labels.begin() + static_cast<std::ptrdiff_t>(start),
               labels.begin() + static_cast<std::ptrdiff_t>(start + m));
    torch::Tensor y = torch::from_blob(y64.data(), {static_cast<std::int64_t>(m)}, torch::kInt64);
    BatchStats st = loss_and_accuracy(
        impl_->forward(impl_->batch_input(features.subspan(start * impl_->dim, m * impl_->dim), m)),
        y, nullptr);
    loss_sum += st.loss * static_cast<double>(m);
    total.correct += st.correct;
    total.count += m;
  }
  total.loss = total.count ? loss_sum / static_cast<double>(total.count) : 0.0;
  return total;
}

std::vector<float> Model::predict(std::span<const float> features) const {
  torch::NoGradGuard no_grad;
  const std::size_t n = impl_->dim ? features.size() / impl_->dim : 0;
  torch::Tensor out = impl_->forward(impl_->batch_input(features, n)).contiguous();
  return {out.data_ptr<float>(), out.data_ptr<float>() + out.numel()};
}

void Model::save(const std::string& path) const {
  try {
    if (impl_->jit) {
      impl_->jit->save(path);
    } else {
      torch::serialize::OutputArchive archive;
      for (std::size_t i = 0; i < impl_->params.size(); ++i)
        archive.write(impl_->layout[i].name, impl_->params[i]);
      archive.write("rumor.flat_params", impl_->flat);
      archive.save_to(path);
    }
  } catch (const c10::Error& e) {
    throw Error("cannot write model file " + path + ": " + e.what_without_backtrace());
  }
}

void Model::load(const std::string& path) {
  torch::NoGradGuard no_grad;
  try {
    if (impl_->jit) {
      torch::jit::Module m = torch::jit::load(path, torch::kCPU);
      std::size_t i = 0;
      for (const auto& np : m.named_parameters(/*recurse=*/true)) {
        if (i >= impl_->params.size() || np.value.sizes() != impl_->params[i].sizes()) {
          throw Error("model file " + path + " does not match this model's parameters at '" +
                      np.name + "'");
        }
        impl_->params[i++].copy_(np.value);
      }
      if (i != impl_->params.size()) throw Error("model file " + path + " has too few parameters");
    } else {
      torch::serialize::InputArchive archive;
      archive.load_from(path);
      torch::Tensor flat;
      archive.read("rumor.flat_params", flat);
      if (flat.numel() != impl_->flat.numel()) {
        throw Error("model file " + path + " holds " + std::to_string(flat.numel()) +
                    " parameters, this model has " + std::to_string(impl_->flat.numel()));
      }
      impl_->flat.copy_(flat);
    }
  } catch (const c10::Error& e) {
    throw Error("cannot read model file " + path + ": " + e.what_without_backtrace());
  }
}

std::vector<std::string> model_names() {
  return {"logreg", "mlp", "cnn", "resnet8", "torchscript"};
}

void set_compute_threads(int n) {
  n = std::max(n, 1);
  at::set_num_threads(n);
  limit_blas_threads(n);
}

torch::Tensor flat_params_tensor(Model& model) {
  return model.impl().flat;
}
torch::Tensor flat_grads_tensor(Model& model) {
  return model.impl().flat_grad;
}
std::vector<torch::Tensor> parameter_tensors(Model& model) {
  return model.impl().params;
}
torch::Tensor forward(Model& model, const torch::Tensor& input) {
  return model.impl().forward(input);
}

}  // namespace rumor::train
