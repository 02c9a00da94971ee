// Scalar and AVX2 kernels of the selecting codecs: top-k candidate collection and the
// Count-Sketch row hash; see simd.hpp.
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

void sketch_add_scalar(std::uint32_t first, std::size_t n, std::uint32_t key, std::uint32_t cols,
                       const float* x, float* row) {
  for (std::size_t j = 0; j < n; ++j) {
    const std::uint32_t h = sketch_mix(first + static_cast<std::uint32_t>(j), key);
    row[sketch_bucket(h, cols)] +=
        std::bit_cast<float>(std::bit_cast<std::uint32_t>(x[j]) ^ h << 31);
  }
}

void sketch_lookup_scalar(std::uint32_t first, std::size_t n, std::uint32_t key, std::uint32_t cols,
                          const float* row, float* out) {
  for (std::size_t j = 0; j < n; ++j) {
    const std::uint32_t h = sketch_mix(first + static_cast<std::uint32_t>(j), key);
    const float t = row[sketch_bucket(h, cols)];
    out[j] = std::bit_cast<float>(std::bit_cast<std::uint32_t>(t) ^ h << 31);
  }
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

// Eight keys hashed in vector lanes, then their eight additions in scalar code: the
// additions (loads and stores) overlap the next keys' hashing (vector arithmetic), which
// hashing a whole block first and adding it afterwards does not.
RUMOR_AVX2 void sketch_add_avx2(std::uint32_t first, std::size_t n, std::uint32_t key,
                                std::uint32_t cols, const float* x, float* row) {
  const __m256i vkey = _mm256_set1_epi32(static_cast<int>(key));
  const __m256i vcols = _mm256_set1_epi32(static_cast<int>(cols));
  __m256i k = _mm256_add_epi32(_mm256_set1_epi32(static_cast<int>(first)),
                               _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  alignas(32) std::uint32_t bucket[8];
  alignas(32) float term[8];
  std::size_t j = 0;
  for (; j + 8 <= n; j += 8, k = _mm256_add_epi32(k, _mm256_set1_epi32(8))) {
    const __m256i h = mix8(k, vkey);
    _mm256_store_si256(reinterpret_cast<__m256i*>(bucket), bucket8(h, vcols));
    const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + j));
    _mm256_store_si256(reinterpret_cast<__m256i*>(term),
                       _mm256_xor_si256(xv, _mm256_slli_epi32(h, 31)));
    for (unsigned l = 0; l < 8; ++l) row[bucket[l]] += term[l];
  }
  sketch_add_scalar(first + static_cast<std::uint32_t>(j), n - j, key, cols, x + j, row);
}

RUMOR_AVX2 void sketch_lookup_avx2(std::uint32_t first, std::size_t n, std::uint32_t key,
                                   std::uint32_t cols, const float* row, float* out) {
  const __m256i vkey = _mm256_set1_epi32(static_cast<int>(key));
  const __m256i vcols = _mm256_set1_epi32(static_cast<int>(cols));
  __m256i k = _mm256_add_epi32(_mm256_set1_epi32(static_cast<int>(first)),
                               _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  std::size_t j = 0;
  for (; j + 8 <= n; j += 8, k = _mm256_add_epi32(k, _mm256_set1_epi32(8))) {
    const __m256i h = mix8(k, vkey);
    // buckets < cols <= 2^26: valid signed 32-bit gather offsets
    const __m256 t = _mm256_i32gather_ps(row, bucket8(h, vcols), 4);
    _mm256_storeu_ps(out + j, _mm256_xor_ps(t, _mm256_castsi256_ps(_mm256_slli_epi32(h, 31))));
  }
  sketch_lookup_scalar(first + static_cast<std::uint32_t>(j), n - j, key, cols, row, out + j);
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
