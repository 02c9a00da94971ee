#include "peak_scan.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string_view>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace rumor::net {
namespace {

constexpr std::uint32_t kMagnitude = 0x7fffffffu;

std::uint32_t peak_scalar(const std::uint8_t* p, std::size_t words) {
  std::uint32_t top = 0;
  for (std::size_t i = 0; i < words; ++i) {
    std::uint32_t w;
    std::memcpy(&w, p + 4 * i, 4);
    top = std::max(top, w & kMagnitude);
  }
  return top;
}

#if defined(__x86_64__)
// The build targets generic x86-64 (no unsigned 32-bit max below SSE4.1): AVX2 is chosen at
// run time, as the codec kernels are.
__attribute__((target("avx2"))) std::uint32_t peak_avx2(const std::uint8_t* p, std::size_t words) {
  const __m256i mag = _mm256_set1_epi32(static_cast<int>(kMagnitude));
  __m256i a = _mm256_setzero_si256(), b = _mm256_setzero_si256();
  std::size_t i = 0;
  for (; i + 16 <= words; i += 16) {
    const auto* q = reinterpret_cast<const __m256i*>(p + 4 * i);
    a = _mm256_max_epu32(a, _mm256_and_si256(_mm256_loadu_si256(q), mag));
    b = _mm256_max_epu32(b, _mm256_and_si256(_mm256_loadu_si256(q + 1), mag));
  }
  alignas(32) std::uint32_t lanes[8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), _mm256_max_epu32(a, b));
  std::uint32_t top = *std::max_element(lanes, lanes + 8);
  return std::max(top, peak_scalar(p + 4 * i, words - i));
}

bool use_avx2() {
  static const bool yes = [] {
    const char* env = std::getenv("RUMOR_SIMD");
    if (env != nullptr && std::string_view(env) == "off") return false;
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") != 0;
  }();
  return yes;
}
#endif

}  // namespace

std::uint32_t fp32_peak(const std::uint8_t* p, std::size_t words, bool vector) {
#if defined(__x86_64__)
  if (vector && use_avx2()) return peak_avx2(p, words);
#endif
  return peak_scalar(p, words);
}

void PeakScan::advance(const std::uint8_t* base, std::size_t have) {
  const std::size_t whole = have > phase_ ? (have - phase_) / 4 : 0;
  if (whole <= words_) return;
  peak_ = std::max(peak_, fp32_peak(base + phase_ + 4 * words_, whole - words_));
  words_ = whole;
}

}  // namespace rumor::net
