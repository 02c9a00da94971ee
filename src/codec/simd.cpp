// Scalar and AVX2 (+F16C) kernels of the casts; see simd.hpp.
#include "simd.hpp"

#include <algorithm>
#include <bit>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "simd_target.hpp"
#include "wire.hpp"

namespace rumor::codec::simd {
namespace {

using detail::bf16_to_float;
using detail::float_to_bf16;
using detail::float_to_half;
using detail::half_to_float;

// The scalar reference: one value at a time through wire.hpp's conversions.
template <std::uint16_t (*Narrow)(float)>
void narrow_scalar(const float* in, std::size_t n, std::uint8_t* out) {
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint16_t h = Narrow(in[i]);
    std::memcpy(out + 2 * i, &h, 2);
  }
}
template <float (*Widen)(std::uint16_t)>
void widen_scalar(const std::uint8_t* in, std::size_t n, float* out) {
  for (std::size_t i = 0; i < n; ++i) {
    std::uint16_t h;
    std::memcpy(&h, in + 2 * i, 2);
    out[i] = Widen(h);
  }
}
constexpr auto to_half_scalar = narrow_scalar<float_to_half>;
constexpr auto from_half_scalar = widen_scalar<half_to_float>;
constexpr auto to_bf16_scalar = narrow_scalar<float_to_bf16>;
constexpr auto from_bf16_scalar = widen_scalar<bf16_to_float>;

template <unsigned kBits>
void qsgd_levels_scalar_t(const std::uint8_t* in, std::size_t n, float step, float* out) {
  constexpr unsigned kW = kBits + 1;
  __extension__ typedef unsigned __int128 U128;
  using Acc = std::conditional_t<(kW * 8 > 64), U128, std::uint64_t>;
  for (std::size_t g = 0; g < n; g += 8, in += kW) {
    Acc acc = 0;
    std::memcpy(&acc, in, kW);  // little-endian host: the low kW bytes
    for (unsigned j = 0; j < 8; ++j) {
      const auto code = static_cast<std::uint32_t>(acc >> (j * kW)) & ((1u << kW) - 1);
      const float mag = static_cast<float>(code & ((1u << kBits) - 1)) * step;
      // step >= +0 (a checked scale), so setting the sign bit is negation
      out[g + j] = std::bit_cast<float>(std::bit_cast<std::uint32_t>(mag) | (code >> kBits) << 31);
    }
  }
}
void qsgd_levels_scalar(const std::uint8_t* in, std::size_t n, int bits, float step, float* out) {
  dispatch_bits(bits, [&](auto b) { qsgd_levels_scalar_t<decltype(b)::value>(in, n, step, out); });
}

#if RUMOR_SIMD_X86
// F16C rounds to nearest even like the scalar code; only NaNs differ (the hardware keeps the
// payload's top bits), so lanes holding a NaN are set to the scalar's quiet NaN.
RUMOR_AVX2 __m128i half_lanes(const float* in) {
  const __m256 x = _mm256_loadu_ps(in);
  __m128i h = _mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m256i a = _mm256_and_si256(_mm256_castps_si256(x), _mm256_set1_epi32(0x7fffffff));
  const __m256i nan32 = _mm256_cmpgt_epi32(a, _mm256_set1_epi32(0x7f800000));
  if (!_mm256_testz_si256(nan32, nan32)) {
    const __m128i nan16 =
        _mm_packs_epi32(_mm256_castsi256_si128(nan32), _mm256_extracti128_si256(nan32, 1));
    const __m128i fixed =
        _mm_or_si128(_mm_and_si128(h, _mm_set1_epi16(-0x8000)), _mm_set1_epi16(0x7e00));
    h = _mm_blendv_epi8(h, fixed, nan16);
  }
  return h;
}

// Outputs this large leave the caches anyway: streaming stores skip reading each output line
// before writing it, so a cast moves 6 bytes per value where a copy moves 8.
constexpr std::size_t kStreamBytes = std::size_t{8} << 20;

// Whether 16-bit values written from `out` on get streaming stores, after a head of
// `head` values brings them to a 32-byte boundary (none for an odd address).
bool stream_16bit(const std::uint8_t* out, std::size_t n, std::size_t& head) {
  const auto addr = reinterpret_cast<std::uintptr_t>(out);
  if (2 * n < kStreamBytes || addr % 2 != 0) return false;
  head = (32 - addr % 32) % 32 / 2;  // < 16 <= n
  return true;
}

RUMOR_AVX2 void to_half_avx2(const float* in, std::size_t n, std::uint8_t* out) {
  std::size_t i = 0;
  if (stream_16bit(out, n, i)) {
    to_half_scalar(in, i, out);
    for (; i + 16 <= n; i += 16) {
      const __m256i h = _mm256_set_m128i(half_lanes(in + i + 8), half_lanes(in + i));
      _mm256_stream_si256(reinterpret_cast<__m256i*>(out + 2 * i), h);
    }
    _mm_sfence();
  }
  for (; i + 8 <= n; i += 8) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 2 * i), half_lanes(in + i));
  }
  to_half_scalar(in + i, n - i, out + 2 * i);
}

RUMOR_AVX2 void from_half_avx2(const std::uint8_t* in, std::size_t n, float* out) {
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + 2 * i));
    _mm256_storeu_ps(out + i, _mm256_cvtph_ps(h));
  }
  from_half_scalar(in + 2 * i, n - i, out + i);
}

// Round to nearest even on the integer bits: (f + 0x7fff + ((f >> 16) & 1)) >> 16; a NaN
// keeps its top half with the quiet bit set.
RUMOR_AVX2 __m256i bf16_lanes(__m256i f) {
  const __m256i one = _mm256_set1_epi32(1);
  const __m256i odd = _mm256_and_si256(_mm256_srli_epi32(f, 16), one);
  const __m256i rounded =
      _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(f, _mm256_set1_epi32(0x7fff)), odd), 16);
  const __m256i a = _mm256_and_si256(f, _mm256_set1_epi32(0x7fffffff));
  const __m256i nan = _mm256_cmpgt_epi32(a, _mm256_set1_epi32(0x7f800000));
  const __m256i quiet = _mm256_or_si256(_mm256_srli_epi32(f, 16), _mm256_set1_epi32(0x40));
  return _mm256_blendv_epi8(rounded, quiet, nan);
}

RUMOR_AVX2 __m256i bf16_pack16(const float* in) {
  const __m256i lo = bf16_lanes(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(in)));
  const __m256i hi = bf16_lanes(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(in + 8)));
  // packus works within 128-bit halves: restore the order of the four 64-bit blocks.
  return _mm256_permute4x64_epi64(_mm256_packus_epi32(lo, hi), 0xd8);
}

RUMOR_AVX2 void to_bf16_avx2(const float* in, std::size_t n, std::uint8_t* out) {
  std::size_t i = 0;
  if (stream_16bit(out, n, i)) {
    to_bf16_scalar(in, i, out);
    for (; i + 16 <= n; i += 16) {
      _mm256_stream_si256(reinterpret_cast<__m256i*>(out + 2 * i), bf16_pack16(in + i));
    }
    _mm_sfence();
  }
  for (; i + 16 <= n; i += 16) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 2 * i), bf16_pack16(in + i));
  }
  to_bf16_scalar(in + i, n - i, out + 2 * i);
}

RUMOR_AVX2 void from_bf16_avx2(const std::uint8_t* in, std::size_t n, float* out) {
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + 2 * i));
    const __m256i f = _mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i), f);
  }
  from_bf16_scalar(in + 2 * i, n - i, out + i);
}

// Codes 0-3 sit in the 64-bit word at the group's start, codes 4-7 in the one at byte
// 4 W / 8 (after 4 W % 8 bits): variable shifts put each code at the bottom of a 64-bit lane,
// whose low halves are then gathered in order. Each word is one 8-byte load (bits past the
// group are masked off), not a W-byte copy, whose pieces would stall the vector load on
// store forwarding; so the last groups, whose loads would run past the input, take the
// scalar kernel.
template <unsigned kBits>
RUMOR_AVX2 void qsgd_levels_avx2_t(const std::uint8_t* in, std::size_t n, float step, float* out) {
  constexpr unsigned kW = kBits + 1;
  constexpr unsigned kHiByte = 4 * kW / 8, kHiBit = 4 * kW % 8;
  constexpr std::size_t kRead = kHiByte + 8;  // bytes read from a group's start
  const __m256i lo_shift = _mm256_setr_epi64x(0, kW, 2 * kW, 3 * kW);
  const __m256i hi_shift =
      _mm256_setr_epi64x(kHiBit, kHiBit + kW, kHiBit + 2 * kW, kHiBit + 3 * kW);
  const __m256i evens = _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6);
  const __m256i code_mask = _mm256_set1_epi32((1 << kW) - 1);
  const __m256i level_mask = _mm256_set1_epi32((1 << kBits) - 1);
  const __m256 vstep = _mm256_set1_ps(step);
  const std::size_t groups = n / 8;
  const std::size_t loaded = groups * kW >= kRead ? (groups * kW - kRead) / kW + 1 : 0;
  std::size_t g = 0;
  for (; g < loaded; ++g, in += kW) {
    std::uint64_t lo_word, hi_word;
    std::memcpy(&lo_word, in, 8);
    std::memcpy(&hi_word, in + kHiByte, 8);
    const __m256i lo = _mm256_permutevar8x32_epi32(
        _mm256_srlv_epi64(_mm256_set1_epi64x(static_cast<long long>(lo_word)), lo_shift), evens);
    const __m256i hi = _mm256_permutevar8x32_epi32(
        _mm256_srlv_epi64(_mm256_set1_epi64x(static_cast<long long>(hi_word)), hi_shift), evens);
    const __m256i code = _mm256_and_si256(_mm256_blend_epi32(lo, hi, 0xf0), code_mask);
    const __m256 mag = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_and_si256(code, level_mask)), vstep);
    const __m256i sign = _mm256_slli_epi32(_mm256_srli_epi32(code, kBits), 31);
    _mm256_storeu_ps(out + 8 * g, _mm256_or_ps(mag, _mm256_castsi256_ps(sign)));
  }
  qsgd_levels_scalar_t<kBits>(in, 8 * (groups - g), step, out + 8 * g);
}
RUMOR_AVX2 void qsgd_levels_avx2(const std::uint8_t* in, std::size_t n, int bits, float step,
                                 float* out) {
  dispatch_bits(bits, [&](auto b) { qsgd_levels_avx2_t<decltype(b)::value>(in, n, step, out); });
}

Isa detect() {
  const char* env = std::getenv("RUMOR_SIMD");
  if (env != nullptr && std::string_view(env) == "off") return Isa::kScalar;
  __builtin_cpu_init();
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("f16c") &&
                    __builtin_cpu_supports("bmi") && __builtin_cpu_supports("bmi2") &&
                    __builtin_cpu_supports("popcnt");
  return avx2 ? Isa::kAvx2 : Isa::kScalar;
}
#else
Isa detect() {
  return Isa::kScalar;
}
#endif

}  // namespace

Isa best() {
  static const Isa isa = detect();
  return isa;
}

std::string isa_name(Isa isa) {
  return isa == Isa::kAvx2 ? "avx2" : "scalar";
}

void to_half(const float* in, std::size_t n, std::uint8_t* out, Isa isa) {
  RUMOR_DISPATCH(to_half, in, n, out);
}
void from_half(const std::uint8_t* in, std::size_t n, float* out, Isa isa) {
  RUMOR_DISPATCH(from_half, in, n, out);
}
void to_bf16(const float* in, std::size_t n, std::uint8_t* out, Isa isa) {
  RUMOR_DISPATCH(to_bf16, in, n, out);
}
void from_bf16(const std::uint8_t* in, std::size_t n, float* out, Isa isa) {
  RUMOR_DISPATCH(from_bf16, in, n, out);
}
void qsgd_levels(const std::uint8_t* in, std::size_t n, int bits, float step, float* out, Isa isa) {
  RUMOR_DISPATCH(qsgd_levels, in, n, bits, step, out);
}

}  // namespace rumor::codec::simd
