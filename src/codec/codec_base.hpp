#pragma once
// Internal: what every Codec implementation shares: dimension and size checks, and the
// Encoder/Decoder bases (error feedback, `sent`, dense or sparse decoding).
#include <algorithm>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "rumor/codec/codec.hpp"
#include "rumor/codec/raw_values.hpp"

namespace rumor::codec::detail {

constexpr std::size_t kMaxDim = 0xffffffffULL;

inline std::uint32_t u32_of(std::size_t v) {
  return static_cast<std::uint32_t>(v);
}

inline void check_dim(const std::string& name, std::size_t d) {
  if (d == 0 || d > kMaxDim) {
    throw CodecError("codec " + name + ": dimension " + std::to_string(d) +
                     " is out of range (1 .. 2^32-1)");
  }
}

inline void check_size(const std::string& name, const char* what, std::size_t got,
                       std::size_t want) {
  if (got != want) {
    throw CodecError("codec " + name + ": " + what + " has " + std::to_string(got) +
                     " floats, expected " + std::to_string(want));
  }
}

// An encoder or decoder of `codec` for dimension d, after checking d.
template <class Impl, class Codec>
std::unique_ptr<Impl> make_checked(const std::string& name, std::shared_ptr<const Codec> codec,
                                   std::size_t d) {
  check_dim(name, d);
  return std::make_unique<Impl>(std::move(codec), d);
}

// A decoded payload is either dense (written straight into the output, size d) or sparse
// (idx_ and vals_ of size k).
class DecoderBase : public Decoder {
 public:
  explicit DecoderBase(std::size_t d) : d_(d) {}
  std::size_t dim() const override { return d_; }
  void decode(ByteView bytes, const CodecContext& ctx, std::span<float> out) override {
    check_size(name(), "decode output", out.size(), d_);
    if (parse(bytes, ctx, out)) return;  // dense, written straight into out
    std::fill(out.begin(), out.end(), 0.0f);
    for (std::size_t j = 0; j < idx_.size(); ++j) out[idx_[j]] = vals_[j];
  }
  void decode_add(ByteView bytes, const CodecContext& ctx, std::span<float> acc,
                  float weight) override {
    check_size(name(), "decode_add accumulator", acc.size(), d_);
    if (const ByteView raw = raw_values(bytes, ctx); !raw.empty()) {
      add_raw(acc, raw, weight);  // read in place: the same bits as the copy below
      return;
    }
    dense_.resize(d_);
    if (parse(bytes, ctx, dense_)) {
      if (weight == 1.0f) {
        for (std::size_t i = 0; i < d_; ++i) acc[i] += dense_[i];
      } else {
        for (std::size_t i = 0; i < d_; ++i) acc[i] += weight * dense_[i];
      }
      return;
    }
    for (std::size_t j = 0; j < idx_.size(); ++j) acc[idx_[j]] += weight * vals_[j];
  }

 protected:
  // Validates the payload; returns true when it decoded densely into `dense` (size d),
  // false when it filled idx_/vals_.
  virtual bool parse(ByteView bytes, const CodecContext& ctx, std::span<float> dense) = 0;
  virtual const std::string& name() const = 0;
  std::size_t d_;
  std::vector<std::uint32_t> idx_;
  std::vector<float> vals_;
  std::vector<float> dense_;
};

// Error feedback and `sent` are shared by every encoder.
class EncoderBase : public Encoder {
 public:
  EncoderBase(std::size_t d, bool ef, std::unique_ptr<Decoder> dec)
      : d_(d), ef_(ef), dec_(std::move(dec)) {
    if (ef_) memory_.assign(d, 0.0f);
  }
  std::size_t dim() const override { return d_; }
  std::size_t encode(std::span<const float> x, const CodecContext& ctx, Bytes& out,
                     std::span<float> sent) override {
    check_size(codec_name(), "encode input", x.size(), d_);
    if (!sent.empty()) check_size(codec_name(), "encode `sent` output", sent.size(), d_);
    std::span<const float> src = x;
    if (ef_) {
      for (std::size_t i = 0; i < d_; ++i) memory_[i] += x[i];
      src = memory_;
    }
    encode_raw(src, ctx, out);
    if (ef_) dec_->decode_add(out, ctx, memory_, -1.0f);  // e <- (e + x) - C(e + x)
    if (!sent.empty()) dec_->decode(out, ctx, sent);
    return out.size();
  }
  std::span<const float> memory() const override { return memory_; }
  void set_memory(std::span<const float> e) override {
    if (!ef_) throw CodecError("codec " + codec_name() + ": has no error-feedback memory");
    check_size(codec_name(), "error-feedback memory", e.size(), d_);
    std::copy(e.begin(), e.end(), memory_.begin());
  }
  void reset() override { std::fill(memory_.begin(), memory_.end(), 0.0f); }

 protected:
  virtual void encode_raw(std::span<const float> x, const CodecContext& ctx, Bytes& out) = 0;
  virtual const std::string& codec_name() const = 0;
  std::size_t d_;
  bool ef_;
  std::unique_ptr<Decoder> dec_;
  std::vector<float> memory_;
};

}  // namespace rumor::codec::detail
