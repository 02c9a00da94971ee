// Scalar and AVX2 kernels of the selecting codecs: top-k candidate collection and the
// Count-Sketch row updates and lookups; see simd.hpp.
#include <algorithm>
#include <bit>
#include <cstring>

#include "simd_target.hpp"

namespace rumor::codec::simd {
namespace {

constexpr std::size_t kBlock = 16;

inline std::int32_t mag_key(float v) {
  return static_cast<std::int32_t>(std::bit_cast<std::uint32_t>(v) & 0x7fffffffu);
}

std::size_t collect_at_least_scalar(const float* x, std::size_t n, std::int32_t threshold,
                                    std::size_t cap, std::uint32_t* idx, std::int32_t* key) {
  std::size_t pos = 0;
  std::size_t i = 0;
  for (; i + kBlock <= n; i += kBlock) {
    // Most blocks hold no candidate: test the whole block first, then compact.
    std::int32_t any = 0;
    for (std::size_t j = 0; j < kBlock; ++j) any |= mag_key(x[i + j]) >= threshold;
    if (!any) continue;
    if (pos > cap) return pos;
    for (std::size_t j = 0; j < kBlock; ++j) {
      const std::int32_t kv = mag_key(x[i + j]);
      idx[pos] = static_cast<std::uint32_t>(i + j);
      key[pos] = kv;
      pos += kv >= threshold;
    }
  }
  if (pos > cap) return pos;
  for (; i < n; ++i) {
    const std::int32_t kv = mag_key(x[i]);
    idx[pos] = static_cast<std::uint32_t>(i);
    key[pos] = kv;
    pos += kv >= threshold;
  }
  return pos;
}

// Calls f(j, column, negative) for keys first + j, j = 0 .. n - 1, in order (sketch_cell,
// with one hash per window).
template <class F>
void for_each_cell(std::uint32_t first, std::size_t n, std::uint32_t key, std::uint32_t cols,
                   F&& f) {
  if (cols < kSketchWindow) {
    for (std::size_t j = 0; j < n; ++j) {
      const std::uint32_t h = sketch_mix(first + static_cast<std::uint32_t>(j), key);
      f(j, sketch_bucket(h, cols), h & 1u);
    }
    return;
  }
  for (std::size_t j = 0; j < n;) {
    const std::uint32_t k = first + static_cast<std::uint32_t>(j);
    const std::uint32_t h = sketch_mix(k / kSketchWindow, key);
    const std::uint32_t start = sketch_bucket(h, cols), signs = sketch_mix(h, ~key);
    for (std::uint32_t lane = k % kSketchWindow; lane < kSketchWindow && j < n; ++lane, ++j) {
      const std::uint32_t col = start + lane;
      f(j, col >= cols ? col - cols : col, (signs >> lane) & 1u);
    }
  }
}

inline float flip(float v, std::uint32_t negative) {
  return std::bit_cast<float>(std::bit_cast<std::uint32_t>(v) ^ negative << 31);
}

void sketch_add_scalar(std::uint32_t first, std::size_t n, std::uint32_t key, std::uint32_t cols,
                       const float* x, float* row) {
  for_each_cell(first, n, key, cols, [&](std::size_t j, std::uint32_t col, std::uint32_t neg) {
    row[col] += flip(x[j], neg);
  });
}

void sketch_lookup_scalar(std::uint32_t first, std::size_t n, std::uint32_t key, std::uint32_t cols,
                          const float* row, float* out) {
  for_each_cell(first, n, key, cols, [&](std::size_t j, std::uint32_t col, std::uint32_t neg) {
    out[j] = flip(row[col], neg);
  });
}

#if RUMOR_SIMD_X86
RUMOR_AVX2 std::size_t collect_at_least_avx2(const float* x, std::size_t n, std::int32_t threshold,
                                             std::size_t cap, std::uint32_t* idx,
                                             std::int32_t* key) {
  const __m256i abs_mask = _mm256_set1_epi32(0x7fffffff);
  const __m256i below = _mm256_set1_epi32(threshold - 1);  // threshold >= 0: no overflow
  const __m256i step = _mm256_set1_epi32(8);
  std::size_t pos = 0;
  std::size_t i = 0;
  for (; i + kBlock <= n; i += kBlock) {
    const __m256i k0 =
        _mm256_and_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i)), abs_mask);
    const __m256i k1 =
        _mm256_and_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i + 8)), abs_mask);
    const auto m0 = static_cast<unsigned>(
        _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(k0, below))));
    const auto m1 = static_cast<unsigned>(
        _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(k1, below))));
    unsigned m = m0 | m1 << 8;
    if (m == 0) continue;
    if (pos > cap) return pos;
    if (m == 0xffff) {  // a whole block (every element is a candidate in the fallback)
      const __m256i i0 = _mm256_add_epi32(_mm256_set1_epi32(static_cast<int>(i)),
                                          _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(idx + pos), i0);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(idx + pos + 8), _mm256_add_epi32(i0, step));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(key + pos), k0);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(key + pos + 8), k1);
      pos += kBlock;
      continue;
    }
    for (; m != 0; m &= m - 1) {
      const auto j = static_cast<std::size_t>(__builtin_ctz(m));
      idx[pos] = static_cast<std::uint32_t>(i + j);
      key[pos] = mag_key(x[i + j]);
      ++pos;
    }
  }
  if (pos > cap) return pos;
  for (; i < n; ++i) {  // fewer than 16 left: room enough
    const std::int32_t kv = mag_key(x[i]);
    idx[pos] = static_cast<std::uint32_t>(i);
    key[pos] = kv;
    pos += kv >= threshold;
  }
  return pos;
}

// Eight hashes at once: the same 32-bit operations lane by lane; the bucket's 64-bit product
// is taken for even and odd lanes apart.
RUMOR_AVX2 __m256i mix8(__m256i k, __m256i key) {
  __m256i z = _mm256_add_epi32(k, key);
  z = _mm256_xor_si256(z, _mm256_srli_epi32(z, 16));
  z = _mm256_mullo_epi32(z, _mm256_set1_epi32(0x7feb352d));
  z = _mm256_xor_si256(z, _mm256_srli_epi32(z, 15));
  z = _mm256_mullo_epi32(z, _mm256_set1_epi32(static_cast<int>(0x846ca68bU)));
  return _mm256_xor_si256(z, _mm256_srli_epi32(z, 16));
}
RUMOR_AVX2 __m256i bucket8(__m256i h, __m256i cols) {
  const __m256i half = _mm256_srli_epi32(h, 1);
  const __m256i even = _mm256_srli_epi64(_mm256_mul_epu32(half, cols), 31);
  const __m256i odd = _mm256_srli_epi64(_mm256_mul_epu32(_mm256_srli_epi64(half, 32), cols), 31);
  return _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xaa);
}

// The hashes of eight windows (starting at key k0, a window boundary): their start columns
// and sign bits.
struct Windows8 {
  alignas(32) std::uint32_t start[8];
  alignas(32) std::uint32_t signs[8];
};
RUMOR_AVX2 void hash_windows8(std::uint32_t k0, std::uint32_t key, std::uint32_t cols,
                              Windows8& w) {
  const __m256i k = _mm256_add_epi32(_mm256_set1_epi32(static_cast<int>(k0)),
                                     _mm256_setr_epi32(0, 16, 32, 48, 64, 80, 96, 112));
  const __m256i h = mix8(_mm256_srli_epi32(k, 4), _mm256_set1_epi32(static_cast<int>(key)));
  _mm256_store_si256(reinterpret_cast<__m256i*>(w.start),
                     bucket8(h, _mm256_set1_epi32(static_cast<int>(cols))));
  _mm256_store_si256(reinterpret_cast<__m256i*>(w.signs),
                     mix8(h, _mm256_set1_epi32(static_cast<int>(~key))));
}

// A window's 16 sign bits as sign-bit masks of lanes 0-7 (lo) and 8-15 (hi).
struct SignMasks {
  __m256i lo, hi;
};
RUMOR_AVX2 SignMasks sign_masks(std::uint32_t signs) {
  const __m256i s = _mm256_set1_epi32(static_cast<int>(signs));
  const __m256i top = _mm256_set1_epi32(static_cast<int>(0x80000000u));
  return {_mm256_and_si256(_mm256_sllv_epi32(s, _mm256_setr_epi32(31, 30, 29, 28, 27, 26, 25, 24)),
                           top),
          _mm256_and_si256(_mm256_sllv_epi32(s, _mm256_setr_epi32(23, 22, 21, 20, 19, 18, 17, 16)),
                           top)};
}

// Keys first + j .. of one row, kernel by kernel: add (src = x, dst = the row) or lookup
// (src = the row, dst = out).
template <bool kAdd>
void sketch_scalar(std::uint32_t first, std::size_t j, std::size_t n, std::uint32_t key,
                   std::uint32_t cols, const float* src, float* dst) {
  const std::uint32_t k = first + static_cast<std::uint32_t>(j);
  if constexpr (kAdd) {
    sketch_add_scalar(k, n, key, cols, src + j, dst);
  } else {
    sketch_lookup_scalar(k, n, key, cols, src, dst + j);
  }
}

// Eight windows at a time: their hashes in vector lanes, then each window's 16 columns as two
// vector loads and stores (one by one when the window wraps past the row's end).
template <bool kAdd>
RUMOR_AVX2 void sketch_avx2(std::uint32_t first, std::size_t n, std::uint32_t key,
                            std::uint32_t cols, const float* src, float* dst) {
  constexpr std::uint32_t kW = kSketchWindow;
  std::size_t j = cols < kW ? n : std::min<std::size_t>(n, (kW - first % kW) % kW);
  sketch_scalar<kAdd>(first, 0, j, key, cols, src, dst);
  Windows8 w;
  for (; j + 8 * kW <= n; j += 8 * kW) {
    hash_windows8(first + static_cast<std::uint32_t>(j), key, cols, w);
    for (std::uint32_t l = 0; l < 8; ++l) {
      const std::size_t at = j + kW * l;
      if (w.start[l] + kW > cols) {
        sketch_scalar<kAdd>(first, at, kW, key, cols, src, dst);
        continue;
      }
      const SignMasks m = sign_masks(w.signs[l]);
      const float* in = kAdd ? src + at : src + w.start[l];
      float* out = kAdd ? dst + w.start[l] : dst + at;
      __m256 lo = _mm256_xor_ps(_mm256_loadu_ps(in), _mm256_castsi256_ps(m.lo));
      __m256 hi = _mm256_xor_ps(_mm256_loadu_ps(in + 8), _mm256_castsi256_ps(m.hi));
      if constexpr (kAdd) {
        lo = _mm256_add_ps(_mm256_loadu_ps(out), lo);
        hi = _mm256_add_ps(_mm256_loadu_ps(out + 8), hi);
      }
      _mm256_storeu_ps(out, lo);
      _mm256_storeu_ps(out + 8, hi);
    }
  }
  sketch_scalar<kAdd>(first, j, n - j, key, cols, src, dst);
}
RUMOR_AVX2 void sketch_add_avx2(std::uint32_t first, std::size_t n, std::uint32_t key,
                                std::uint32_t cols, const float* x, float* row) {
  sketch_avx2<true>(first, n, key, cols, x, row);
}
RUMOR_AVX2 void sketch_lookup_avx2(std::uint32_t first, std::size_t n, std::uint32_t key,
                                   std::uint32_t cols, const float* row, float* out) {
  sketch_avx2<false>(first, n, key, cols, row, out);
}
#endif

}  // namespace

std::size_t collect_at_least(const float* x, std::size_t n, std::int32_t threshold, std::size_t cap,
                             std::uint32_t* idx, std::int32_t* key, Isa isa) {
  return RUMOR_DISPATCH(collect_at_least, x, n, threshold, cap, idx, key);
}
void sketch_add(std::uint32_t first, std::size_t n, std::uint32_t key, std::uint32_t cols,
                const float* x, float* row, Isa isa) {
  RUMOR_DISPATCH(sketch_add, first, n, key, cols, x, row);
}
void sketch_lookup(std::uint32_t first, std::size_t n, std::uint32_t key, std::uint32_t cols,
                   const float* row, float* out, Isa isa) {
  RUMOR_DISPATCH(sketch_lookup, first, n, key, cols, row, out);
}

}  // namespace rumor::codec::simd
