#pragma once
// Internal building blocks of codec chains: value codecs (act on n values, dense),
// sparsifiers (pick the coordinates a chain sends) and the Count-Sketch table. The chain
// logic lives in codec.cpp; every stage's registry entry (stage_entry.hpp) builds these.
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "rumor/codec/codec.hpp"
#include "rumor/common/rng.hpp"
#include "simd.hpp"
#include "wire.hpp"

namespace rumor::codec::detail {

// Wire tags of the value codecs (the first byte of their block). A new value codec takes an
// unused number: a receiver then refuses a block of any other codec.
enum class ValueKind : std::uint8_t { kFp32 = 1, kFp16 = 2, kBf16 = 3, kQsgd = 4, kSign = 5 };

inline std::uint32_t checked_n(std::size_t n) {
  return static_cast<std::uint32_t>(n);
}

inline std::size_t chunks(std::size_t n, std::uint32_t chunk) {
  return (n + chunk - 1) / chunk;
}

// A scale sent on the wire: finite and not negative.
inline float read_scale(Reader& r, const char* what) {
  const float s = r.f32(what);
  if (!finite(s) || std::signbit(s)) {
    malformed(r.codec(),
              std::string(what) + " is " + std::to_string(s) + ", must be finite and >= 0");
  }
  return s;
}

// Encodes n floats into a block of exactly size(n) bytes (its own small header included).
class ValueCodec {
 public:
  virtual ~ValueCodec() = default;
  virtual std::string name() const = 0;
  virtual std::size_t size(std::size_t n) const = 0;
  virtual void encode(std::span<const float> v, Rng& rng, std::uint8_t* out) const = 0;
  // Reads exactly size(out.size()) bytes from r (header checked against this codec).
  virtual void decode(Reader& r, std::span<float> out) const = 0;
  // Raw fp32 (fp32 itself): reads a block of n values as decode() does and returns where
  // they lie, in place; nullptr, with nothing read, for codecs whose values must be decoded.
  virtual const std::uint8_t* view(Reader& r, std::size_t n) const { return nullptr; }
  virtual bool unbiased() const = 0;
  virtual bool contractive() const = 0;
  virtual double delta(std::size_t n) const = 0;
  virtual bool linear() const { return false; }
};

// k indices, one drawn uniformly in each of k equal blocks of [0, d) (block j is
// [j d / k, (j+1) d / k)), from (seed, round, sender): receivers draw the same ones, so none
// is sent. Each coordinate is kept with probability 1 / its block's width, stored in `width`
// when it is not null. randk, and the sketch's fallback, pick their indices with it.
void block_random_indices(std::size_t d, std::size_t k, const CodecContext& ctx,
                          std::vector<std::uint32_t>& idx, std::vector<float>* width);

// The value codec of a chain that names none.
std::unique_ptr<ValueCodec> make_fp32();

// Picks the coordinates a chain keeps (topk, randk) and writes/reads the payload header that
// says which: [kind][d][k]... The Sparsifier is immutable; a Work belongs to one encoder or
// decoder (one thread) and holds its scratch buffers.
class Sparsifier {
 public:
  class Work {
   public:
    virtual ~Work() = default;
    // Writes the header and picks idx (kept(d) indices) from x (size d).
    virtual void encode(std::span<const float> x, const CodecContext& ctx, Writer& w,
                        std::vector<std::uint32_t>& idx) = 0;
    // Reads and checks the header, fills idx (kept(d) indices, each < d).
    virtual void decode(Reader& r, const CodecContext& ctx, std::vector<std::uint32_t>& idx) = 0;
    // Applied to the decoded kept values (randk:unbiased scales them by the block width).
    virtual void rescale(std::span<float>) {}
  };
  virtual ~Sparsifier() = default;
  virtual std::string name() const = 0;  // canonical, e.g. "topk:0.01"
  virtual std::size_t kept(std::size_t d) const = 0;
  virtual bool unbiased() const = 0;
  virtual bool contractive() const = 0;
  // E||T x||^2 >= delta(d) ||x||^2 for the kept part T x.
  virtual double delta(std::size_t d) const = 0;
  virtual bool fixed_size() const = 0;
  // Header and indices, at most.
  virtual std::size_t max_header_size(std::size_t d) const = 0;
  virtual std::unique_ptr<Work> make_work(std::size_t d) const = 0;
};

// Count-Sketch hashes for one (seed, rows, cols). Row r hashes key k with the keyed 32-bit
// mixer of simd::sketch_cell(k, key_r, cols), key_r uniform from the shared seed alone (so
// sketches of different senders add): windows of 16 consecutive keys share one hash, a
// uniform start column (key k at start + k % 16) and 16 sign bits; rows narrower than 16
// columns hash each key. 32-bit lanes let eight windows hash at once with AVX2, and a
// window's 16 updates are two vector additions instead of 16 scattered ones. On the shuffled
// power-law test vector it recovers the same share of the top-K as a hash drawn uniformly at
// random (test_sketch.cpp measures both). A multiply-add-shift hash (pairwise independent,
// one addition per key) recovered less (0.78 of the top-K where a random hash recovers 0.84,
// in a numpy simulation).
constexpr std::uint32_t kMaxSketchRows = 32;

class SketchHash {
 public:
  SketchHash(std::uint64_t seed, std::uint32_t rows, std::uint32_t cols);
  // table[r * cols + h_r(k)] += s_r(k) * x[k] for all k.
  void sketch(std::span<const float> x, float* table) const;
  // est[k] = median_r s_r(k) * table[r * cols + h_r(k)].
  // `scratch` is resized to rows * 1024 floats and reused between calls.
  void estimate(const float* table, std::span<float> est, std::vector<float>& scratch) const;
  void estimate(const float* table, std::span<float> est) const {
    std::vector<float> scratch;
    estimate(table, est, scratch);
  }
  std::uint32_t bucket(std::uint32_t r, std::uint64_t k) const {
    return simd::sketch_cell(static_cast<std::uint32_t>(k), key_[r], cols_).col;
  }
  bool negative(std::uint32_t r, std::uint64_t k) const {
    return simd::sketch_cell(static_cast<std::uint32_t>(k), key_[r], cols_).negative != 0;
  }
  std::uint32_t rows() const { return rows_; }
  std::uint32_t cols() const { return cols_; }

 private:
  std::uint32_t rows_, cols_;
  std::array<std::uint32_t, kMaxSketchRows> key_{};
};

}  // namespace rumor::codec::detail
