#pragma once
// Models whose parameters live in ONE contiguous float buffer: every parameter tensor of
// the underlying LibTorch module is a view into it, and so is every gradient. Consensus
// methods read and write params() directly; nothing is copied in or out of the module.
// LibTorch stays behind a pimpl; rumor/train/torch_access.hpp exposes the tensors for
// Torch-side code. Thread safety: one Model per thread (a peer owns its model).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace rumor::train {

struct ModelSpec {
  std::string name = "mlp";      // logreg, mlp, cnn, resnet8, torchscript
  std::vector<int> hidden{128};  // mlp: hidden layer sizes
  std::string norm = "group";    // cnn: "group" (GroupNorm) or "none"; resnet8: always group
  int channels = 32;             // cnn: first conv channels (second has twice); resnet8: 16
  std::string path;              // torchscript: file saved with torch.jit.save
};

// What the model is fed: per-sample shape (e.g. {1, 28, 28} or {dim}) and class count;
// taken from the dataset (data::Dataset::shape, num_classes).
struct ModelInput {
  std::vector<std::int64_t> shape;
  int num_classes = 0;
};

// Result of one forward/backward pass on a minibatch.
struct BatchStats {
  double loss = 0.0;        // mean cross-entropy over the batch
  std::size_t correct = 0;  // argmax == label
  std::size_t count = 0;
};

class Model {
 public:
  // Builds the model; parameters are initialised from `seed` alone (PyTorch's default
  // fan-in uniform scheme, drawn from rumor::Rng), so every node gets the same vector.
  // A torchscript model keeps the values stored in its file. Throws rumor::ConfigError
  // on an unknown name or a model that does not fit the input.
  static std::unique_ptr<Model> create(const ModelSpec& spec, const ModelInput& input,
                                       std::uint64_t seed);
  ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  const std::string& name() const;
  const ModelInput& input() const;
  std::size_t num_params() const;

  // The flat parameter buffer and the flat gradient buffer (same layout).
  std::span<float> params();
  std::span<const float> params() const;
  std::span<float> grads();
  std::span<const float> grads() const;

  // Names and sizes of the parameter tensors in buffer order (for logs and checkpoints).
  struct Slot {
    std::string name;
    std::vector<std::int64_t> shape;
    std::size_t offset = 0;
    std::size_t size = 0;
  };
  const std::vector<Slot>& layout() const;

  // Zeroes grads(), runs forward and backward on `batch` samples of `features`
  // (row-major [batch x dim]) and `labels`; gradients land in grads().
  BatchStats forward_backward(std::span<const float> features,
                              std::span<const std::int32_t> labels);
  // mlp and logreg have a hand-written backward (same gradients, fewer tensor ops); off
  // forces autograd (tests compare the two).
  void set_manual_backward(bool on) { manual_backward_ = on; }

  // Forward only (no gradient), in chunks; returns summed stats over all samples.
  BatchStats evaluate(std::span<const float> features, std::span<const std::int32_t> labels,
                      std::size_t chunk = 1000) const;
  // Logits [n x num_classes] for n samples (no gradient).
  std::vector<float> predict(std::span<const float> features) const;

  // Saves the parameters (LibTorch format: one flat tensor plus layout names) / the
  // module itself for torchscript models. Throws rumor::Error when it cannot write.
  void save(const std::string& path) const;
  // Reads parameters written by save() (of a model with the same layout) into params().
  // Throws rumor::Error naming the file when it cannot be read or does not match.
  void load(const std::string& path);

  struct Impl;
  Impl& impl() { return *impl_; }
  const Impl& impl() const { return *impl_; }

 private:
  explicit Model(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  bool manual_backward_ = true;
};

std::vector<std::string> model_names();

// Sets LibTorch intra-op threads and OpenBLAS threads for this process (default 1: peers
// share the cores).
void set_compute_threads(int n);

// The BLAS library actually loaded in this process, found at run time, e.g.
// "OpenBLAS 0.3.21 ... (/usr/lib/x86_64-linux-gnu/libopenblas.so.0)"; "unknown" if none.
std::string loaded_blas();

// OpenBLAS 0.3.21 (Debian 12) does not recognise newer CPUs (e.g. Sapphire and Emerald Rapids) and
// falls back to its generic Prescott kernels, several times slower. If the loaded
// OpenBLAS picked a pre-Haswell core on a CPU with AVX2/AVX-512 and OPENBLAS_CORETYPE is
// unset, this sets OPENBLAS_CORETYPE (Haswell / SkylakeX) and re-executes the program
// with the same argv: OpenBLAS reads it only at load time. Returns if nothing to do or
// if exec fails. Call first thing in main(). RUMOR_NO_BLAS_REEXEC=1 disables it.
void ensure_blas_core(char** argv);
// After ensure_blas_core re-executed with forced kernels: checks them against a plain loop
// (cblas_sgemm on the models' shapes) and, if they compute wrong results, re-executes once
// more with OpenBLAS's own choice and a warning. Call right after ensure_blas_core.
void verify_forced_blas_core(char** argv);
// True when OpenBLAS's sgemm agrees with a plain triple loop (or no OpenBLAS is loaded).
bool blas_self_check();

}  // namespace rumor::train
