// Quantized-data payload pieces: quantizer, importance rule, replay buffer, wire frame.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "rumor/common/error.hpp"
#include "rumor/gossip/qdata.hpp"

namespace rumor::gossip::qdata {
namespace {

constexpr std::uint8_t kMagic = 'Q';
constexpr std::uint8_t kVersion = 1;
constexpr std::uint8_t kFlagRefine = 1, kFlagModel = 2;
constexpr std::size_t kSampleHeader = 2 + 4 + 4;  // label, offset, scale

void check_bits(int bits) {
  if (bits < 1 || bits > 8)
    throw ConfigError("qdata: bits per input value must be in 1..8, got " + std::to_string(bits));
}

template <typename T>
void put(codec::Bytes& out, std::size_t& at, T v) {
  std::memcpy(out.data() + at, &v, sizeof v);
  at += sizeof v;
}

template <typename T>
T get(codec::ByteView in, std::size_t& at) {
  T v;
  std::memcpy(&v, in.data() + at, sizeof v);
  at += sizeof v;
  return v;
}

}  // namespace

std::size_t packed_size(std::size_t dim, int bits) {
  return (dim * static_cast<std::size_t>(bits) + 7) / 8;
}

SampleScale quantize(std::span<const float> x, int bits, std::uint8_t* packed) {
  check_bits(bits);
  SampleScale s;
  std::memset(packed, 0, packed_size(x.size(), bits));
  if (x.empty()) return s;
  const auto [lo, hi] = std::minmax_element(x.begin(), x.end());
  const std::uint32_t levels = (1u << bits) - 1;
  s.offset = *lo;
  s.scale = (*hi - *lo) / static_cast<float>(levels);
  const float inv = s.scale > 0 ? 1.0f / s.scale : 0.0f;
  std::size_t bit = 0;
  for (float v : x) {
    const float q = std::nearbyint((v - s.offset) * inv);
    const std::uint32_t code =
        std::min(levels, static_cast<std::uint32_t>(std::max(0.0f, std::isfinite(q) ? q : 0.0f)));
    // Codes of up to 8 bits span at most two bytes.
    const std::size_t byte = bit / 8, shift = bit % 8;
    packed[byte] |= static_cast<std::uint8_t>(code << shift);
    if (shift + bits > 8) packed[byte + 1] |= static_cast<std::uint8_t>(code >> (8 - shift));
    bit += bits;
  }
  return s;
}

void dequantize(const std::uint8_t* packed, int bits, SampleScale s, std::span<float> out) {
  check_bits(bits);
  const std::uint32_t mask = (1u << bits) - 1;
  std::size_t bit = 0;
  for (float& v : out) {
    const std::size_t byte = bit / 8, shift = bit % 8;
    std::uint32_t code = packed[byte] >> shift;
    if (shift + bits > 8) code |= static_cast<std::uint32_t>(packed[byte + 1]) << (8 - shift);
    v = s.offset + static_cast<float>(code & mask) * s.scale;
    bit += bits;
  }
}

Rule parse_rule(const std::string& name) {
  if (name == "top") return Rule::kTop;
  if (name == "quantile") return Rule::kQuantile;
  throw ConfigError("method.importance must be top or quantile, got \"" + name + "\"");
}

std::vector<std::size_t> Importance::select(std::span<const float> losses, std::size_t budget) {
  std::vector<std::size_t> order(losses.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  // NaN losses sort last and are never picked.
  auto key = [&](std::size_t i) { return std::isnan(losses[i]) ? -INFINITY : losses[i]; };
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return key(a) > key(b); });
  while (!order.empty() && std::isnan(losses[order.back()])) order.pop_back();
  if (rule_ == Rule::kTop) {
    if (order.size() > budget) order.resize(budget);
    if (!order.empty()) threshold_ = losses[order.back()];
    return order;
  }
  // Running quantile (Robbins-Monro): q += step * (p - 1[l <= q]) settles where P(l <= q) = p.
  // It starts at the first batch's empirical quantile; the batch is judged against the
  // threshold before it is updated with it.
  if (std::isnan(threshold_) && !order.empty()) {
    const auto k = static_cast<std::size_t>(
        std::floor((1.0 - q_) * static_cast<double>(order.size() - 1) + 0.5));
    threshold_ = losses[order[std::min(k, order.size() - 1)]];
  }
  std::vector<std::size_t> out;
  for (std::size_t i : order) {
    if (out.size() >= budget || !(losses[i] > threshold_)) break;
    out.push_back(i);
  }
  // In arrival order: sorted order would bias the estimate (q moves within the batch).
  for (float l : losses)
    if (!std::isnan(l)) threshold_ += step_ * (q_ - (l <= threshold_ ? 1.0 : 0.0));
  return out;
}

ReplayBuffer::ReplayBuffer(std::size_t capacity, std::size_t dim)
    : capacity_(capacity), dim_(dim), features_(capacity * dim), labels_(capacity) {}

void ReplayBuffer::add(std::span<const float> x, std::int32_t label) {
  if (capacity_ == 0) return;
  std::copy(x.begin(), x.begin() + static_cast<std::ptrdiff_t>(dim_),
            features_.begin() + static_cast<std::ptrdiff_t>(next_ * dim_));
  labels_[next_] = label;
  next_ = (next_ + 1) % capacity_;
  size_ = std::min(size_ + 1, capacity_);
}

void ReplayBuffer::sample(std::size_t n, Rng& rng, std::vector<float>& features,
                          std::vector<std::int32_t>& labels) const {
  if (size_ == 0) return;
  for (std::size_t k = 0; k < n; ++k) {
    const std::size_t i = rng.below(size_);
    features.insert(features.end(), features_.begin() + static_cast<std::ptrdiff_t>(i * dim_),
                    features_.begin() + static_cast<std::ptrdiff_t>((i + 1) * dim_));
    labels.push_back(labels_[i]);
  }
}

Sections encode_frame(int bits, std::size_t dim, std::span<const float> features,
                      std::span<const std::int32_t> labels, const codec::Bytes* refine,
                      const codec::Bytes* model, codec::Bytes& out) {
  check_bits(bits);
  const std::size_t count = labels.size();
  const std::size_t per = kSampleHeader + packed_size(dim, bits);
  Sections s;
  s.samples = kHeaderSize + count * per;
  s.refine = refine ? refine->size() : 0;
  s.model = model ? model->size() : 0;
  out.resize(s.samples + s.refine + s.model);
  std::size_t at = 0;
  put<std::uint8_t>(out, at, kMagic);
  put<std::uint8_t>(out, at, kVersion);
  put<std::uint8_t>(out, at, static_cast<std::uint8_t>(bits));
  put<std::uint8_t>(out, at, (refine ? kFlagRefine : 0) | (model ? kFlagModel : 0));
  put<std::uint32_t>(out, at, static_cast<std::uint32_t>(dim));
  put<std::uint32_t>(out, at, static_cast<std::uint32_t>(count));
  put<std::uint32_t>(out, at, static_cast<std::uint32_t>(s.refine));
  put<std::uint32_t>(out, at, static_cast<std::uint32_t>(s.model));
  for (std::size_t i = 0; i < count; ++i) {
    put<std::uint16_t>(out, at, static_cast<std::uint16_t>(labels[i]));
    const auto sc = quantize(features.subspan(i * dim, dim), bits, out.data() + at + 8);
    put<float>(out, at, sc.offset);
    put<float>(out, at, sc.scale);
    at += packed_size(dim, bits);
  }
  if (refine) std::memcpy(out.data() + at, refine->data(), s.refine), at += s.refine;
  if (model) std::memcpy(out.data() + at, model->data(), s.model), at += s.model;
  return s;
}

void decode_frame(codec::ByteView in, const Limits& limits, const std::string& where, Frame& out) {
  auto fail = [&](const std::string& what) {
    throw ProtocolError(where + ": malformed qdata payload (" + what + ", " +
                        std::to_string(in.size()) + " bytes)");
  };
  if (in.size() < kHeaderSize) fail("shorter than its header");
  std::size_t at = 0;
  if (get<std::uint8_t>(in, at) != kMagic) fail("bad magic byte");
  if (const auto v = get<std::uint8_t>(in, at); v != kVersion)
    fail("version " + std::to_string(v) + ", expected " + std::to_string(kVersion));
  const int bits = get<std::uint8_t>(in, at);
  if (bits != limits.bits)
    fail(std::to_string(bits) + " bits per value, this node expects " +
         std::to_string(limits.bits) + "; do all nodes use the same method.bits?");
  const auto flags = get<std::uint8_t>(in, at);
  if (flags & ~(kFlagRefine | kFlagModel)) fail("unknown flags");
  const std::size_t dim = get<std::uint32_t>(in, at);
  if (dim != limits.dim)
    fail("samples of " + std::to_string(dim) + " values, this node's have " +
         std::to_string(limits.dim));
  const std::size_t count = get<std::uint32_t>(in, at);
  if (count > limits.max_samples)
    fail(std::to_string(count) + " samples, more than the budget of " +
         std::to_string(limits.max_samples));
  const std::size_t refine_len = get<std::uint32_t>(in, at);
  const std::size_t model_len = get<std::uint32_t>(in, at);
  if (!(flags & kFlagRefine) && refine_len) fail("refinement bytes without the flag");
  if (!(flags & kFlagModel) && model_len) fail("model bytes without the flag");
  const std::size_t per = kSampleHeader + packed_size(dim, bits);
  // count <= max_samples and dim are bounded, so this cannot overflow.
  const std::size_t need = kHeaderSize + count * per + refine_len + model_len;
  if (need != in.size()) fail("its fields add up to " + std::to_string(need) + " bytes");
  out.count = count;
  out.features.resize(count * dim);
  out.labels.resize(count);
  for (std::size_t i = 0; i < count; ++i) {
    const auto label = get<std::uint16_t>(in, at);
    SampleScale s;
    s.offset = get<float>(in, at);
    s.scale = get<float>(in, at);
    if (label >= limits.num_classes)
      fail("label " + std::to_string(label) + " of sample " + std::to_string(i) + " is not below " +
           std::to_string(limits.num_classes));
    const float top = s.offset + static_cast<float>((1u << bits) - 1) * s.scale;
    if (!std::isfinite(s.offset) || !std::isfinite(s.scale) || s.scale < 0 || !std::isfinite(top))
      fail("sample " + std::to_string(i) + " has a non-finite or negative scale or offset");
    out.labels[i] = label;
    dequantize(in.data() + at, bits, s, std::span<float>(out.features).subspan(i * dim, dim));
    at += packed_size(dim, bits);
  }
  out.has_refine = flags & kFlagRefine;
  out.has_model = flags & kFlagModel;
  out.refine = in.subspan(at, refine_len);
  out.model = in.subspan(at + refine_len, model_len);
}

}  // namespace rumor::gossip::qdata
