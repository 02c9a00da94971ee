#pragma once
// Quantized-data payload (method "qdata"), after Hanna, Ezzeldin et al., "Quantizing data for
// distributed learning": nodes send a few important training samples, quantized to b bits per
// input value, instead of model updates, so the bytes scale with the input dimension and not
// with the model. PRIVACY: with this method training data leaves the node.
//
// Pieces (no LibTorch here, so tests stay light): the per-sample quantizer, the importance
// rule, the receiver's bounded replay buffer and the wire frame. The method itself lives in
// src/gossip/qdata.cpp.
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "rumor/codec/codec.hpp"
#include "rumor/common/rng.hpp"
#include "rumor/gossip/method.hpp"

namespace rumor::gossip {

// What a data-sharing method needs from local training beyond LocalWork: samples of the
// node's shard, per-sample losses and gradients on given samples. Samples are row-major
// floats [n x sample_dim()] with one label each. Gradients land in LocalWork::grads().
class SampleWork {
 public:
  virtual ~SampleWork() = default;
  virtual std::size_t sample_dim() const = 0;
  virtual int num_classes() const = 0;
  // n distinct samples of the shard (all of it if smaller), drawn from (seed, node, round).
  virtual void draw(std::size_t n, std::int64_t round, std::vector<float>& features,
                    std::vector<std::int32_t>& labels) = 0;
  // Cross-entropy of each sample at the current model.
  virtual std::vector<float> losses(std::span<const float> features,
                                    std::span<const std::int32_t> labels) = 0;
  // Mean gradient over the samples at the current model, into LocalWork::grads().
  virtual LocalWork::Stats gradient_on(std::span<const float> features,
                                       std::span<const std::int32_t> labels) = 0;
};

namespace qdata {

// Bytes of one sample's codes: dim values of `bits` bits, packed LSB first.
std::size_t packed_size(std::size_t dim, int bits);

// Per-sample affine quantization: offset = min(x), scale = (max(x) - min(x)) / (2^bits - 1),
// code = round((x - offset) / scale). Every value comes back within scale / 2.
struct SampleScale {
  float offset = 0.0f;
  float scale = 0.0f;
};
SampleScale quantize(std::span<const float> x, int bits, std::uint8_t* packed);
void dequantize(const std::uint8_t* packed, int bits, SampleScale s, std::span<float> out);

// Which candidates to send. kTop: the `budget` highest losses. kQuantile: those above a
// running estimate of the `quantile` of the losses seen (highest first, at most `budget`;
// fewer when few are above it).
enum class Rule { kTop, kQuantile };
Rule parse_rule(const std::string& name);  // "top" | "quantile"; ConfigError otherwise

class Importance {
 public:
  Importance(Rule rule, double quantile, double step) : rule_(rule), q_(quantile), step_(step) {}
  // Indices into `losses`, highest loss first (ties: lower index first).
  std::vector<std::size_t> select(std::span<const float> losses, std::size_t budget);
  // kTop: the lowest loss selected last time; kQuantile: the running quantile (NaN before
  // any loss was seen).
  double threshold() const { return threshold_; }

 private:
  Rule rule_;
  double q_, step_;
  double threshold_ = std::numeric_limits<double>::quiet_NaN();
};

// Samples received from neighbours, oldest overwritten first once `capacity` is reached.
class ReplayBuffer {
 public:
  ReplayBuffer() = default;
  ReplayBuffer(std::size_t capacity, std::size_t dim);
  void add(std::span<const float> x, std::int32_t label);
  std::size_t size() const { return size_; }
  std::size_t capacity() const { return capacity_; }
  std::size_t dim() const { return dim_; }
  // n samples drawn uniformly with replacement (appended to features / labels).
  void sample(std::size_t n, Rng& rng, std::vector<float>& features,
              std::vector<std::int32_t>& labels) const;

 private:
  std::size_t capacity_ = 0, dim_ = 0, size_ = 0, next_ = 0;
  std::vector<float> features_;
  std::vector<std::int32_t> labels_;
};

// Wire frame (little endian):
//   u8 'Q', u8 version 1, u8 bits, u8 flags (1: refinement, 2: model), u32 dim, u32 count,
//   u32 refine_len, u32 model_len,
//   count x (u16 label, f32 offset, f32 scale, packed_size(dim, bits) code bytes),
//   refine_len bytes (a refinement codec payload), model_len bytes (a model codec payload).
inline constexpr std::size_t kHeaderSize = 20;
struct Sections {
  std::size_t samples = 0;  // header + samples
  std::size_t refine = 0;
  std::size_t model = 0;
};
// `features` holds count x dim original values; they are quantized here.
Sections encode_frame(int bits, std::size_t dim, std::span<const float> features,
                      std::span<const std::int32_t> labels, const codec::Bytes* refine,
                      const codec::Bytes* model, codec::Bytes& out);

struct Limits {
  int bits = 4;
  std::size_t dim = 0;
  int num_classes = 0;
  std::size_t max_samples = 0;
};
struct Frame {
  std::size_t count = 0;
  std::vector<float> features;  // dequantized, count x dim
  std::vector<std::int32_t> labels;
  bool has_refine = false, has_model = false;
  codec::ByteView refine, model;  // views into the decoded bytes
};
// Checks every field and length against `limits`; throws ProtocolError (prefixed with
// `where`) on anything malformed. Never reads out of bounds.
void decode_frame(codec::ByteView bytes, const Limits& limits, const std::string& where,
                  Frame& out);

}  // namespace qdata
}  // namespace rumor::gossip
