#pragma once
// Vector kernels of the codecs (casts, qsgd, sign, top-k candidates, Count-Sketch rows),
// chosen once at run time by what the CPU has (the build flags stay generic). The scalar kernels
// are the reference: every vector kernel gives the same bytes, which tests check path against path.
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>

#include "rumor/common/rng.hpp"

namespace rumor::codec::simd {

enum class Isa { kScalar, kAvx2 };

// The widest kernels this CPU runs, unless RUMOR_SIMD=off asks for the scalar reference.
Isa best();
std::string isa_name(Isa isa);

// n floats to n little-endian halves / bfloat16s at `out` (any alignment), round to nearest
// even, NaN to a quiet NaN of the same sign, exactly as wire.hpp's scalar conversions.
void to_half(const float* in, std::size_t n, std::uint8_t* out, Isa isa = best());
void from_half(const std::uint8_t* in, std::size_t n, float* out, Isa isa = best());
void to_bf16(const float* in, std::size_t n, std::uint8_t* out, Isa isa = best());
void from_bf16(const std::uint8_t* in, std::size_t n, float* out, Isa isa = best());

// QSGD levels: n values (a multiple of 8) packed LSB first in BITS + 1 bits each (level, then
// sign) from `in`, a byte boundary; out[i] = level * step, negated when the sign bit is set.
void qsgd_levels(const std::uint8_t* in, std::size_t n, int bits, float step, float* out,
                 Isa isa = best());

// QSGD codes of n values (a multiple of 8), written as `qsgd_levels` reads them:
// a = min(|x| inv, 2^BITS - 1), level floor(a) + (u < frac(a)) with u the next 24-bit
// uniform (two per rng() word, low half first), sign bit set for negative non-zero levels.
// Draws n / 2 words from rng, in the same order on every path.
void qsgd_codes(const float* x, std::size_t n, float inv, int bits, Rng& rng, std::uint8_t* out,
                Isa isa = best());
// qsgd_codes, and meanwhile sum_squares(next, next_n), which it returns: the next chunk's
// chain of additions runs alongside these codes instead of before that chunk's.
double qsgd_codes_sum_next(const float* x, std::size_t n, float inv, int bits, Rng& rng,
                           std::uint8_t* out, const float* next, std::size_t next_n,
                           Isa isa = best());

// Sums of x^2 and of |x| in double with four interleaved partial sums (x[i] goes to sum
// i % 4 while four remain, the rest to sum 0; then (s0 + s1) + (s2 + s3)). The order is part
// of the encoded bytes (qsgd norms, sign scales): every path gives the same bits.
double sum_squares(const float* x, std::size_t n, Isa isa = best());
double sum_abs(const float* x, std::size_t n, Isa isa = best());

// Sign bits: bit i of the (n + 7) / 8 bytes at `out` (LSB first) is x[i]'s sign bit; the
// unused bits of the last byte are zero.
void sign_bits(const float* x, std::size_t n, std::uint8_t* out, Isa isa = best());
// out[i] = scale with the sign bit of bit (first + i) of `bits` (scale's own sign bit clear).
void sign_values(const std::uint8_t* bits, std::size_t first, std::size_t n, float scale,
                 float* out, Isa isa = best());

// Top-k candidates: (i, |x_i| bits) of every i with |x_i| bits >= threshold (>= 0), in index
// order, into idx and key (room for cap + 16 each). Returns their count, or a number above
// cap as soon as the room is known to be too small (the arrays then hold a prefix).
std::size_t collect_at_least(const float* x, std::size_t n, std::int32_t threshold, std::size_t cap,
                             std::uint32_t* idx, std::int32_t* key, Isa isa = best());

// Count-Sketch row hash: an xorshift-multiply mix of k + key (a bijection of 32-bit words;
// the multipliers are Wellons' "lowbias32"), and a column in [0, cols) from the top 31 bits.
constexpr std::uint32_t sketch_mix(std::uint32_t k, std::uint32_t key) {
  std::uint32_t z = k + key;
  z ^= z >> 16;
  z *= 0x7feb352dU;
  z ^= z >> 15;
  z *= 0x846ca68bU;
  return z ^ (z >> 16);
}
constexpr std::uint32_t sketch_bucket(std::uint32_t h, std::uint32_t cols) {
  return static_cast<std::uint32_t>((static_cast<std::uint64_t>(h >> 1) * cols) >> 31);
}

// Where key k goes in a row of `cols` columns hashed with `key`. Rows of at least
// kSketchWindow columns hash windows of 16 consecutive keys: window g = k / 16 draws
// h = sketch_mix(g, key), a uniform start column sketch_bucket(h, cols) and 16 sign bits
// sketch_mix(h, ~key); key k takes column (start + k % 16) mod cols and sign bit k % 16.
// Two keys of different windows share a column with probability 1/cols, as with a bucket
// per key, and keys of one window never do; a window's updates are two vector additions
// instead of sixteen scattered ones. Narrower rows hash each key: h = sketch_mix(k, key),
// column sketch_bucket(h, cols), sign h's lowest bit (disjoint bits of h).
constexpr std::uint32_t kSketchWindow = 16;
struct SketchCell {
  std::uint32_t col;
  std::uint32_t negative;  // 0 or 1
};
constexpr SketchCell sketch_cell(std::uint32_t k, std::uint32_t key, std::uint32_t cols) {
  if (cols < kSketchWindow) {
    const std::uint32_t h = sketch_mix(k, key);
    return {sketch_bucket(h, cols), h & 1u};
  }
  const std::uint32_t h = sketch_mix(k / kSketchWindow, key);
  const std::uint32_t lane = k % kSketchWindow;
  const std::uint32_t col = sketch_bucket(h, cols) + lane;
  return {col >= cols ? col - cols : col, (sketch_mix(h, ~key) >> lane) & 1u};
}
// For keys first .. first + n - 1 of one row, in that order: row[col] += x[j] with its sign
// bit flipped when the cell is negative (so each column adds its terms in key order).
void sketch_add(std::uint32_t first, std::size_t n, std::uint32_t key, std::uint32_t cols,
                const float* x, float* row, Isa isa = best());
// For keys first .. first + n - 1 of one row: out[j] = row[col] with its sign bit flipped when
// the cell is negative (the row's estimate of each key).
void sketch_lookup(std::uint32_t first, std::size_t n, std::uint32_t key, std::uint32_t cols,
                   const float* row, float* out, Isa isa = best());

// Calls f(std::integral_constant<unsigned, BITS>{}) for BITS in 1..8, so kernels over packed
// codes are compiled once per width.
template <class F>
void dispatch_bits(int bits, F&& f) {
  switch (bits) {
    case 1:
      return f(std::integral_constant<unsigned, 1>{});
    case 2:
      return f(std::integral_constant<unsigned, 2>{});
    case 3:
      return f(std::integral_constant<unsigned, 3>{});
    case 4:
      return f(std::integral_constant<unsigned, 4>{});
    case 5:
      return f(std::integral_constant<unsigned, 5>{});
    case 6:
      return f(std::integral_constant<unsigned, 6>{});
    case 7:
      return f(std::integral_constant<unsigned, 7>{});
    default:
      return f(std::integral_constant<unsigned, 8>{});
  }
}

}  // namespace rumor::codec::simd
