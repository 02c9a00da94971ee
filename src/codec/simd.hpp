#pragma once
// Vector kernels of the value codecs, chosen once at run time by what the CPU has (the build
// flags stay generic). The scalar kernels are the reference: every vector kernel gives the
// same bytes, which tests check path against path.
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>

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
