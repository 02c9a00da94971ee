#pragma once
// Vector kernels of the value codecs, chosen once at run time by what the CPU has (the build
// flags stay generic). The scalar kernels are the reference: every vector kernel gives the
// same bytes, which tests check path against path.
#include <cstddef>
#include <cstdint>
#include <string>

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

}  // namespace rumor::codec::simd
