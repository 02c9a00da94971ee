// Scalar and AVX2 kernels of the quantising value codecs (qsgd encode, sign) and the sums
// their scales need; see simd.hpp.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>

#include "simd_target.hpp"

namespace rumor::codec::simd {
namespace {

template <bool kSquare>
double sum_scalar(const float* x, std::size_t n) {
  auto f = [](float v) {
    return kSquare ? static_cast<double>(v) * v : static_cast<double>(std::fabs(v));
  };
  double a0 = 0, a1 = 0, a2 = 0, a3 = 0;
  std::size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    a0 += f(x[i]);
    a1 += f(x[i + 1]);
    a2 += f(x[i + 2]);
    a3 += f(x[i + 3]);
  }
  for (; i < n; ++i) a0 += f(x[i]);
  return (a0 + a1) + (a2 + a3);
}
double sum_squares_scalar(const float* x, std::size_t n) {
  return sum_scalar<true>(x, n);
}
double sum_abs_scalar(const float* x, std::size_t n) {
  return sum_scalar<false>(x, n);
}

template <unsigned kBits>
void qsgd_codes_scalar_t(const float* x, std::size_t n, float inv, Rng& rng, std::uint8_t* out) {
  constexpr unsigned kW = kBits + 1;
  __extension__ typedef unsigned __int128 U128;
  using Acc = std::conditional_t<(kW * 8 > 64), U128, std::uint64_t>;
  const float sf = static_cast<float>((1u << kBits) - 1);
  for (std::size_t g = 0; g < n; g += 8, out += kW) {
    std::uint32_t u[8];
    for (unsigned j = 0; j < 8; j += 2) {
      const std::uint64_t rnd = rng();
      u[j] = static_cast<std::uint32_t>(rnd) & 0xffffffu;
      u[j + 1] = static_cast<std::uint32_t>(rnd >> 32) & 0xffffffu;
    }
    Acc acc = 0;
    for (unsigned j = 0; j < 8; ++j) {
      // a <= s, so floor(a) + (round up) <= s; frac is exact, u has 24 random bits.
      const float a = std::min(std::fabs(x[g + j]) * inv, sf);
      const auto li = static_cast<std::int32_t>(a);
      const float frac = a - static_cast<float>(li);
      const std::uint32_t l =
          static_cast<std::uint32_t>(li) + (static_cast<float>(u[j]) < frac * 16777216.0f);
      const std::uint32_t neg = (std::bit_cast<std::uint32_t>(x[g + j]) >> 31) & (l != 0);
      acc |= static_cast<Acc>(l | neg << kBits) << (j * kW);
    }
    std::memcpy(out, &acc, kW);  // little-endian host: the low kW bytes
  }
}
void qsgd_codes_scalar(const float* x, std::size_t n, float inv, int bits, Rng& rng,
                       std::uint8_t* out) {
  dispatch_bits(bits,
                [&](auto b) { qsgd_codes_scalar_t<decltype(b)::value>(x, n, inv, rng, out); });
}

double qsgd_codes_sum_next_scalar(const float* x, std::size_t n, float inv, int bits, Rng& rng,
                                  std::uint8_t* out, const float* next, std::size_t next_n) {
  qsgd_codes_scalar(x, n, inv, bits, rng, out);
  return sum_squares_scalar(next, next_n);
}

void sign_bits_scalar(const float* x, std::size_t n, std::uint8_t* out) {
  for (std::size_t i = 0; i < n; i += 8) {
    unsigned b = 0;
    for (std::size_t j = 0; j < 8 && i + j < n; ++j)
      b |= (std::bit_cast<std::uint32_t>(x[i + j]) >> 31) << j;
    *out++ = static_cast<std::uint8_t>(b);
  }
}

void sign_values_scalar(const std::uint8_t* bits, std::size_t first, std::size_t n, float scale,
                        float* out) {
  const std::uint32_t sb = std::bit_cast<std::uint32_t>(scale);
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t b = first + i;
    const std::uint32_t neg = (bits[b >> 3] >> (b & 7)) & 1u;
    out[i] = std::bit_cast<float>(sb | (neg << 31));
  }
}

#if RUMOR_SIMD_X86
// The four partial sums are the four double lanes: the same additions in the same order.
// sum_avx2 from x[i] on, with the sums of x[0 .. i) (i a multiple of 4) in acc.
template <bool kSquare>
RUMOR_AVX2 double sum_avx2_from(const float* x, std::size_t i, std::size_t n, __m256d acc) {
  const __m256d abs_mask = _mm256_castsi256_pd(_mm256_set1_epi64x(0x7fffffffffffffffLL));
  for (; i + 4 <= n; i += 4) {
    const __m256d v = _mm256_cvtps_pd(_mm_loadu_ps(x + i));
    acc = _mm256_add_pd(acc, kSquare ? _mm256_mul_pd(v, v) : _mm256_and_pd(v, abs_mask));
  }
  alignas(32) double a[4];
  _mm256_store_pd(a, acc);
  for (; i < n; ++i) {
    a[0] += kSquare ? static_cast<double>(x[i]) * x[i] : static_cast<double>(std::fabs(x[i]));
  }
  return (a[0] + a[1]) + (a[2] + a[3]);
}
RUMOR_AVX2 double sum_squares_avx2(const float* x, std::size_t n) {
  return sum_avx2_from<true>(x, 0, n, _mm256_setzero_pd());
}
RUMOR_AVX2 double sum_abs_avx2(const float* x, std::size_t n) {
  return sum_avx2_from<false>(x, 0, n, _mm256_setzero_pd());
}

// Eight codes in 32-bit lanes to one 8 W-bit word: pairs within 64-bit lanes, then pairs of
// lanes, then the two 128-bit halves.
template <unsigned kW>
RUMOR_AVX2 void pack8(__m256i code, std::uint8_t* out) {
  __extension__ typedef unsigned __int128 U128;
  using Acc = std::conditional_t<(kW * 8 > 64), U128, std::uint64_t>;
  const __m256i low32 = _mm256_set1_epi64x(0xffffffffLL);
  __m256i p = _mm256_or_si256(_mm256_and_si256(code, low32), _mm256_srli_epi64(code, 32 - kW));
  p = _mm256_sllv_epi64(p, _mm256_setr_epi64x(0, 2 * kW, 0, 2 * kW));
  p = _mm256_or_si256(p, _mm256_srli_si256(p, 8));
  const auto q0 = static_cast<std::uint64_t>(_mm_cvtsi128_si64(_mm256_castsi256_si128(p)));
  const auto q1 = static_cast<std::uint64_t>(_mm_cvtsi128_si64(_mm256_extracti128_si256(p, 1)));
  const Acc acc = static_cast<Acc>(q0) | static_cast<Acc>(q1) << (4 * kW);
  std::memcpy(out, &acc, kW);
}

// Codes of x, and sum_squares(next, next_n): its first groups of 8 alongside the codes (the
// next chunk's additions wait on no code), the rest after.
template <unsigned kBits>
RUMOR_AVX2 double qsgd_codes_avx2_t(const float* x, std::size_t n, float inv, Rng& rng_in,
                                    std::uint8_t* out, const float* next, std::size_t next_n) {
  constexpr unsigned kW = kBits + 1;
  Rng rng = rng_in;  // a local copy stays in registers (out may alias anything)
  const __m256 vinv = _mm256_set1_ps(inv);
  const __m256 sf = _mm256_set1_ps(static_cast<float>((1u << kBits) - 1));
  const __m256 two24 = _mm256_set1_ps(16777216.0f);
  const __m256i abs_mask = _mm256_set1_epi32(0x7fffffff);
  const __m256i u_mask = _mm256_set1_epi32(0xffffff);
  __m256d sq = _mm256_setzero_pd();
  const std::size_t along = std::min(n, next_n / 8 * 8);
  for (std::size_t g = 0; g < n; g += 8, out += kW) {
    if (g < along) {
      const __m256d a = _mm256_cvtps_pd(_mm_loadu_ps(next + g));
      const __m256d b = _mm256_cvtps_pd(_mm_loadu_ps(next + g + 4));
      sq = _mm256_add_pd(_mm256_add_pd(sq, _mm256_mul_pd(a, a)), _mm256_mul_pd(b, b));
    }
    const __m256i xb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + g));
    const __m256 ax = _mm256_castsi256_ps(_mm256_and_si256(xb, abs_mask));
    // min(sf, p) = sf < p ? sf : p, as std::min(p, sf)
    const __m256 a = _mm256_min_ps(sf, _mm256_mul_ps(ax, vinv));
    const __m256i li = _mm256_cvttps_epi32(a);
    const __m256 frac = _mm256_sub_ps(a, _mm256_cvtepi32_ps(li));
    const auto r0 = static_cast<long long>(rng());
    const auto r1 = static_cast<long long>(rng());
    const auto r2 = static_cast<long long>(rng());
    const auto r3 = static_cast<long long>(rng());
    const __m256 uf =
        _mm256_cvtepi32_ps(_mm256_and_si256(_mm256_setr_epi64x(r0, r1, r2, r3), u_mask));
    const __m256i up =
        _mm256_castps_si256(_mm256_cmp_ps(uf, _mm256_mul_ps(frac, two24), _CMP_LT_OQ));
    const __m256i l = _mm256_sub_epi32(li, up);  // up is -1 where rounding up
    const __m256i zero = _mm256_cmpeq_epi32(l, _mm256_setzero_si256());
    const __m256i neg = _mm256_andnot_si256(zero, _mm256_srli_epi32(xb, 31));
    pack8<kW>(_mm256_or_si256(l, _mm256_slli_epi32(neg, kBits)), out);
  }
  rng_in = rng;
  return sum_avx2_from<true>(next, along, next_n, sq);
}
RUMOR_AVX2 void qsgd_codes_avx2(const float* x, std::size_t n, float inv, int bits, Rng& rng,
                                std::uint8_t* out) {
  dispatch_bits(bits, [&](auto b) {
    qsgd_codes_avx2_t<decltype(b)::value>(x, n, inv, rng, out, nullptr, 0);
  });
}
RUMOR_AVX2 double qsgd_codes_sum_next_avx2(const float* x, std::size_t n, float inv, int bits,
                                           Rng& rng, std::uint8_t* out, const float* next,
                                           std::size_t next_n) {
  double sq = 0;
  dispatch_bits(bits, [&](auto b) {
    sq = qsgd_codes_avx2_t<decltype(b)::value>(x, n, inv, rng, out, next, next_n);
  });
  return sq;
}

RUMOR_AVX2 void sign_bits_avx2(const float* x, std::size_t n, std::uint8_t* out) {
  std::size_t i = 0;
  for (; i + 32 <= n; i += 32, out += 4) {
    const auto m0 = static_cast<std::uint32_t>(_mm256_movemask_ps(_mm256_loadu_ps(x + i)));
    const auto m1 = static_cast<std::uint32_t>(_mm256_movemask_ps(_mm256_loadu_ps(x + i + 8)));
    const auto m2 = static_cast<std::uint32_t>(_mm256_movemask_ps(_mm256_loadu_ps(x + i + 16)));
    const auto m3 = static_cast<std::uint32_t>(_mm256_movemask_ps(_mm256_loadu_ps(x + i + 24)));
    const std::uint32_t word = m0 | m1 << 8 | m2 << 16 | m3 << 24;
    std::memcpy(out, &word, 4);
  }
  sign_bits_scalar(x + i, n - i, out);
}

// Byte-aligned runs of 8 values: the byte broadcast, each lane tests its own bit.
RUMOR_AVX2 void sign_values_avx2(const std::uint8_t* bits, std::size_t first, std::size_t n,
                                 float scale, float* out) {
  std::size_t i = std::min(n, (8 - first % 8) % 8);
  sign_values_scalar(bits, first, i, scale, out);
  const __m256i lane_bit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
  const __m256i vscale = _mm256_set1_epi32(static_cast<int>(std::bit_cast<std::uint32_t>(scale)));
  for (; i + 8 <= n; i += 8) {
    const __m256i b = _mm256_set1_epi32(bits[(first + i) >> 3]);
    const __m256i set = _mm256_cmpeq_epi32(_mm256_and_si256(b, lane_bit), lane_bit);
    const __m256i v = _mm256_or_si256(vscale, _mm256_slli_epi32(set, 31));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i), v);
  }
  sign_values_scalar(bits, first + i, n - i, scale, out + i);
}
#endif

}  // namespace

void qsgd_codes(const float* x, std::size_t n, float inv, int bits, Rng& rng, std::uint8_t* out,
                Isa isa) {
  RUMOR_DISPATCH(qsgd_codes, x, n, inv, bits, rng, out);
}
double qsgd_codes_sum_next(const float* x, std::size_t n, float inv, int bits, Rng& rng,
                           std::uint8_t* out, const float* next, std::size_t next_n, Isa isa) {
  return RUMOR_DISPATCH(qsgd_codes_sum_next, x, n, inv, bits, rng, out, next, next_n);
}
double sum_squares(const float* x, std::size_t n, Isa isa) {
  return RUMOR_DISPATCH(sum_squares, x, n);
}
double sum_abs(const float* x, std::size_t n, Isa isa) {
  return RUMOR_DISPATCH(sum_abs, x, n);
}
void sign_bits(const float* x, std::size_t n, std::uint8_t* out, Isa isa) {
  RUMOR_DISPATCH(sign_bits, x, n, out);
}
void sign_values(const std::uint8_t* bits, std::size_t first, std::size_t n, float scale,
                 float* out, Isa isa) {
  RUMOR_DISPATCH(sign_values, bits, first, n, scale, out);
}

}  // namespace rumor::codec::simd
