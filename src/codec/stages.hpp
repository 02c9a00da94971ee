#pragma once
// Internal building blocks of codec chains: value codecs (act on n values, dense) and the
// Count-Sketch table. The chain/sparsifier logic lives in chain.cpp.
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "rumor/common/rng.hpp"
#include "wire.hpp"

namespace rumor::codec::detail {

enum class ValueKind : std::uint8_t { kFp32 = 1, kFp16 = 2, kBf16 = 3, kQsgd = 4, kSign = 5 };

// Encodes n floats into a block of exactly size(n) bytes (its own small header included).
class ValueCodec {
 public:
  virtual ~ValueCodec() = default;
  virtual std::string name() const = 0;
  virtual std::size_t size(std::size_t n) const = 0;
  virtual void encode(std::span<const float> v, Rng& rng, std::uint8_t* out) const = 0;
  // Reads exactly size(out.size()) bytes from r (header checked against this codec).
  virtual void decode(Reader& r, std::span<float> out) const = 0;
  virtual bool unbiased() const = 0;
  virtual bool contractive() const = 0;
  virtual double delta(std::size_t n) const = 0;
  virtual bool linear() const { return false; }
};

std::unique_ptr<ValueCodec> make_fp32();
std::unique_ptr<ValueCodec> make_fp16();
std::unique_ptr<ValueCodec> make_bf16();
std::unique_ptr<ValueCodec> make_qsgd(int bits, bool biased, std::uint32_t chunk);
std::unique_ptr<ValueCodec> make_sign(std::uint32_t chunk);

// Count-Sketch hashes for one (seed, rows, cols). Row r hashes key k with a multiply-add-shift
// hash v_r(k) = ((a_r k + b_r) mod 2^64) >> 32, a_r, b_r uniform 64-bit from the shared seed:
// pairwise independent for 32-bit keys (Dietzfelbinger 1996), which is what the Count-Sketch
// estimate needs (Charikar et al.). Bucket = (v cols) >> 32, sign = lowest bit of v. Keys are
// visited in order, so v advances by one 64-bit addition per key.
constexpr std::uint32_t kMaxSketchRows = 32;

class SketchHash {
 public:
  SketchHash(std::uint64_t seed, std::uint32_t rows, std::uint32_t cols);
  // table[r * cols + h_r(k)] += s_r(k) * x[k] for all k.
  void sketch(std::span<const float> x, float* table) const;
  // est[k] = median_r s_r(k) * table[r * cols + h_r(k)].
  void estimate(const float* table, std::span<float> est) const;
  std::uint32_t bucket(std::uint32_t r, std::uint64_t k) const {
    return static_cast<std::uint32_t>((hash(r, k) * cols_) >> 32);
  }
  bool negative(std::uint32_t r, std::uint64_t k) const { return (hash(r, k) & 1u) != 0; }
  std::uint32_t rows() const { return rows_; }
  std::uint32_t cols() const { return cols_; }

 private:
  std::uint64_t hash(std::uint32_t r, std::uint64_t k) const { return (a_[r] * k + b_[r]) >> 32; }
  std::uint32_t rows_, cols_;
  std::array<std::uint64_t, kMaxSketchRows> a_{}, b_{};
};

}  // namespace rumor::codec::detail
