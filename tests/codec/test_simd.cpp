// Every vector kernel gives the scalar reference's bytes, on inputs that reach every case of
// the conversions: all 65,536 halves and bfloat16s, and floats of every exponent with
// mantissas at and around each rounding boundary, both signs, NaNs and infinities.
#include <doctest/doctest.h>

#include <bit>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "simd.hpp"

using rumor::codec::simd::Isa;
namespace simd = rumor::codec::simd;

namespace {

// Mantissas whose low bits sit on the fp16 (13 dropped bits) and bf16 (16 dropped bits)
// rounding boundaries, plus random ones.
std::vector<float> sweep_floats() {
  std::vector<std::uint32_t> mant = {0, 1, 0x7fffff, 0x400000};
  for (std::uint32_t low : {0x0fffu, 0x1000u, 0x1001u, 0x2000u, 0x3000u, 0x7fffu, 0x8000u, 0x8001u,
                            0x18000u, 0x17fffu}) {
    mant.push_back(low);
    mant.push_back((0x5a5a5a5au & 0x7f0000u) | low);
  }
  std::mt19937 rng(7);
  for (int i = 0; i < 40; ++i) mant.push_back(rng() & 0x7fffffu);
  std::vector<float> out;
  for (std::uint32_t sign = 0; sign < 2; ++sign)
    for (std::uint32_t e = 0; e < 256; ++e)
      for (const std::uint32_t m : mant)
        out.push_back(std::bit_cast<float>(sign << 31 | e << 23 | m));
  out.push_back(std::bit_cast<float>(0x7fc00000u));  // the canonical NaN
  return out;  // its length is no multiple of 8 or 16: the scalar tail runs too
}

std::vector<std::uint8_t> all_16bit_patterns() {
  std::vector<std::uint8_t> b(2 * 65536 + 2);
  for (std::uint32_t i = 0; i <= 65536; ++i) {
    const auto h = static_cast<std::uint16_t>(i * 40503u);  // a permutation, 65,537th repeats
    std::memcpy(b.data() + 2 * i, &h, 2);
  }
  return b;
}

// The index of the first value whose bytes differ (values of `width` bytes), or n.
template <class T>
std::size_t first_difference(const std::vector<T>& a, const std::vector<T>& b, std::size_t width) {
  const std::size_t bytes = a.size() * sizeof(T);
  const auto* pa = reinterpret_cast<const std::uint8_t*>(a.data());
  const auto* pb = reinterpret_cast<const std::uint8_t*>(b.data());
  for (std::size_t i = 0; i < bytes; ++i)
    if (pa[i] != pb[i]) return i / width;
  return bytes / width;
}

}  // namespace

TEST_CASE("simd: the casts' vector kernels write the scalar reference's bytes") {
  if (simd::best() == Isa::kScalar) {
    MESSAGE("this CPU has no AVX2/F16C (or RUMOR_SIMD=off): only the scalar path runs");
    return;
  }
  const auto x = sweep_floats();
  REQUIRE(x.size() % 16 != 0);
  for (auto enc : {&simd::to_half, &simd::to_bf16}) {
    std::vector<std::uint8_t> ref(2 * x.size()), vec(2 * x.size());
    enc(x.data(), x.size(), ref.data(), Isa::kScalar);
    enc(x.data(), x.size(), vec.data(), Isa::kAvx2);
    const std::size_t at = first_difference(ref, vec, 2);
    CHECK_MESSAGE(at == x.size(), "first differing value: ", at, " of ", x.size(), ", input bits ",
                  at < x.size() ? std::bit_cast<std::uint32_t>(x[at]) : 0u);
  }
  const auto h = all_16bit_patterns();
  const std::size_t n = h.size() / 2;
  for (auto dec : {&simd::from_half, &simd::from_bf16}) {
    std::vector<float> ref(n), vec(n);
    dec(h.data(), n, ref.data(), Isa::kScalar);
    dec(h.data(), n, vec.data(), Isa::kAvx2);
    const std::size_t at = first_difference(ref, vec, 4);
    std::uint16_t bits = 0;
    if (at < n) std::memcpy(&bits, h.data() + 2 * at, 2);
    CHECK_MESSAGE(at == n, "first differing value: ", at, " of ", n, ", input bits ", bits);
  }
}

TEST_CASE("simd: qsgd levels, every width, on arbitrary bytes (negative zeros included)") {
  if (simd::best() == Isa::kScalar) {
    MESSAGE("this CPU has no AVX2 (or RUMOR_SIMD=off): only the scalar path runs");
    return;
  }
  std::mt19937 rng(11);
  std::vector<std::uint8_t> bytes(9 * 64 + 1);  // one spare byte: the kernels read no further
  for (auto& b : bytes) b = static_cast<std::uint8_t>(rng());
  for (int bits = 1; bits <= 8; ++bits) {
    const std::size_t n = 8 * 64;
    std::vector<float> ref(n), vec(n);
    simd::qsgd_levels(bytes.data() + 1, n, bits, 0.37f, ref.data(), Isa::kScalar);
    simd::qsgd_levels(bytes.data() + 1, n, bits, 0.37f, vec.data(), Isa::kAvx2);
    const std::size_t at = first_difference(ref, vec, 4);
    CHECK_MESSAGE(at == n, "bits ", bits, ": first differing value ", at);
  }
}

TEST_CASE("simd: unaligned output and every tail length") {
  std::vector<float> x(40);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = 0.37f * static_cast<float>(i) - 5.0f;
  for (std::size_t n = 0; n <= x.size(); ++n) {
    std::vector<std::uint8_t> ref(2 * n + 1), vec(2 * n + 1);
    simd::to_half(x.data(), n, ref.data() + 1, Isa::kScalar);
    simd::to_half(x.data(), n, vec.data() + 1, simd::best());
    CHECK(ref == vec);
    std::vector<float> back(n);
    simd::from_half(vec.data() + 1, n, back.data(), simd::best());
    for (std::size_t i = 0; i < n; ++i) CHECK(back[i] == doctest::Approx(x[i]).epsilon(1e-3));
  }
}
