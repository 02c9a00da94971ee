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

namespace {

// Gaussian values with zeros of both signs and a few huge ones (the clamp to 2^BITS - 1).
std::vector<float> mixed_values(std::size_t n, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(n);
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint32_t r = rng() % 16;
    x[i] = r == 0 ? 0.0f : r == 1 ? -0.0f : r == 2 ? 1e6f * normal(rng) : normal(rng);
  }
  return x;
}

}  // namespace

TEST_CASE("simd: qsgd codes, every width: the scalar reference's bytes and random stream") {
  if (simd::best() == Isa::kScalar) {
    MESSAGE("this CPU has no AVX2 (or RUMOR_SIMD=off): only the scalar path runs");
    return;
  }
  const std::size_t n = 8 * 300;
  const auto x = mixed_values(n, 3);
  for (int bits = 1; bits <= 8; ++bits) {
    for (const float inv : {0.0f, 0.37f, 3.1f, 1e-3f}) {
      const std::size_t bytes = n / 8 * static_cast<std::size_t>(bits + 1);
      std::vector<std::uint8_t> ref(bytes + 8, 0xa5), vec(bytes + 8, 0xa5);
      rumor::Rng r_ref(99), r_vec(99);
      simd::qsgd_codes(x.data(), n, inv, bits, r_ref, ref.data(), Isa::kScalar);
      simd::qsgd_codes(x.data(), n, inv, bits, r_vec, vec.data(), Isa::kAvx2);
      const std::size_t at = first_difference(ref, vec, 1);
      CHECK_MESSAGE(at == ref.size(), "bits ", bits, " inv ", inv, ": first differing byte ", at);
      CHECK_MESSAGE(r_ref() == r_vec(), "bits ", bits, ": the paths drew different streams");
    }
  }
}

TEST_CASE("simd: qsgd codes with the next chunk's sum of squares alongside") {
  const std::size_t n = 8 * 40;
  const auto x = mixed_values(2 * n + 64, 14);
  for (const std::size_t next_n : {0ul, 1ul, 5ul, 8ul, 13ul, n - 3, n, n + 13, n + 64}) {
    CAPTURE(next_n);
    const std::size_t bytes = n / 8 * 5;
    std::vector<std::uint8_t> plain(bytes);
    rumor::Rng r_plain(7);
    simd::qsgd_codes(x.data(), n, 0.37f, 4, r_plain, plain.data(), Isa::kScalar);
    const double want = simd::sum_squares(x.data() + n, next_n, Isa::kScalar);
    for (const Isa isa : {Isa::kScalar, simd::best()}) {
      rumor::Rng r(7);
      std::vector<std::uint8_t> out(bytes);
      const double got = simd::qsgd_codes_sum_next(x.data(), n, 0.37f, 4, r, out.data(),
                                                   x.data() + n, next_n, isa);
      CHECK(out == plain);
      CHECK(std::bit_cast<std::uint64_t>(got) == std::bit_cast<std::uint64_t>(want));
      CHECK(r() == rumor::Rng(r_plain)());
    }
  }
}

TEST_CASE("simd: sums of squares and magnitudes give the same bits on every path") {
  const auto x = mixed_values(4099, 5);
  for (std::size_t n : {0ul, 1ul, 3ul, 4ul, 5ul, 7ul, 8ul, 33ul, 4099ul}) {
    CAPTURE(n);
    const double sq = simd::sum_squares(x.data(), n, Isa::kScalar);
    const double ab = simd::sum_abs(x.data(), n, Isa::kScalar);
    CHECK(std::bit_cast<std::uint64_t>(sq) ==
          std::bit_cast<std::uint64_t>(simd::sum_squares(x.data(), n, simd::best())));
    CHECK(std::bit_cast<std::uint64_t>(ab) ==
          std::bit_cast<std::uint64_t>(simd::sum_abs(x.data(), n, simd::best())));
  }
}

TEST_CASE("simd: sign bits and sign values, every length and bit offset") {
  const auto x = mixed_values(300, 6);
  for (std::size_t n = 0; n <= x.size(); n += (n < 70 ? 1 : 23)) {
    std::vector<std::uint8_t> ref((n + 7) / 8 + 1, 0x5a), vec((n + 7) / 8 + 1, 0x5a);
    simd::sign_bits(x.data(), n, ref.data(), Isa::kScalar);
    simd::sign_bits(x.data(), n, vec.data(), simd::best());
    CHECK_MESSAGE(ref == vec, "n ", n);
    for (std::size_t i = 0; i < n; ++i) {
      REQUIRE(((ref[i / 8] >> (i % 8)) & 1) == (std::bit_cast<std::uint32_t>(x[i]) >> 31));
    }
  }
  std::vector<std::uint8_t> bits(64);
  std::mt19937 rng(8);
  for (auto& b : bits) b = static_cast<std::uint8_t>(rng());
  for (std::size_t first = 0; first < 17; ++first) {
    for (std::size_t n : {0ul, 1ul, 7ul, 8ul, 9ul, 31ul, 200ul}) {
      std::vector<float> ref(n), vec(n);
      simd::sign_values(bits.data(), first, n, 0.75f, ref.data(), Isa::kScalar);
      simd::sign_values(bits.data(), first, n, 0.75f, vec.data(), simd::best());
      CHECK_MESSAGE(first_difference(ref, vec, 4) == n, "first ", first, " n ", n);
      for (std::size_t i = 0; i < n; ++i) {
        const bool neg = (bits[(first + i) / 8] >> ((first + i) % 8)) & 1;
        REQUIRE(vec[i] == (neg ? -0.75f : 0.75f));
      }
    }
  }
}

TEST_CASE("simd: top-k candidates, counts and early stops equal the scalar reference") {
  const auto x = mixed_values(5003, 9);  // no multiple of 16: the tail runs
  for (const std::int32_t threshold : {0, 0x3f000000, 0x3fc00000, 0x40400000, 0x7f800000}) {
    for (const std::size_t cap : {0ul, 10ul, 100ul, 1000ul, 5003ul}) {
      std::vector<std::uint32_t> ri(cap + 16), vi(cap + 16);
      std::vector<std::int32_t> rk(cap + 16), vk(cap + 16);
      const std::size_t rn = simd::collect_at_least(x.data(), x.size(), threshold, cap, ri.data(),
                                                    rk.data(), Isa::kScalar);
      const std::size_t vn = simd::collect_at_least(x.data(), x.size(), threshold, cap, vi.data(),
                                                    vk.data(), simd::best());
      CAPTURE(threshold);
      CAPTURE(cap);
      REQUIRE(rn == vn);
      REQUIRE(rn <= cap + 16);
      ri.resize(rn), vi.resize(rn), rk.resize(rn), vk.resize(rn);
      CHECK(ri == vi);
      CHECK(rk == vk);
    }
  }
}

TEST_CASE("simd: Count-Sketch row additions and lookups equal the scalar reference") {
  const auto x = mixed_values(1000, 10);
  std::vector<float> row(1u << 12);
  for (std::size_t i = 0; i < row.size(); ++i) row[i] = x[i % x.size()] + static_cast<float>(i);
  // Narrow rows (a hash per key), rows whose windows often wrap past the end, wide rows;
  // keys from a window boundary or not, and past 2^32 (they wrap).
  for (const std::uint32_t cols : {1u, 3u, 15u, 16u, 17u, 97u, 4096u}) {
    for (const std::uint32_t first : {0u, 5u, 0xfffffc00u}) {
      for (const std::size_t n : {0ul, 7ul, 1000ul}) {
        CAPTURE(cols);
        CAPTURE(first);
        CAPTURE(n);
        std::vector<float> rt(row), vt(row), rl(n), vl(n);
        simd::sketch_add(first, n, 0x9e3779b9u, cols, x.data(), rt.data(), Isa::kScalar);
        simd::sketch_add(first, n, 0x9e3779b9u, cols, x.data(), vt.data(), simd::best());
        CHECK(first_difference(rt, vt, 4) == rt.size());
        for (std::size_t i = cols; i < row.size(); ++i) REQUIRE(rt[i] == row[i]);  // in range
        simd::sketch_lookup(first, n, 12345u, cols, row.data(), rl.data(), Isa::kScalar);
        simd::sketch_lookup(first, n, 12345u, cols, row.data(), vl.data(), simd::best());
        CHECK(first_difference(rl, vl, 4) == n);
        for (std::size_t j = 0; j < n; ++j) {  // the scalar kernel is sketch_cell, key by key
          const auto c = simd::sketch_cell(first + static_cast<std::uint32_t>(j), 12345u, cols);
          REQUIRE(c.col < cols);
          REQUIRE(std::bit_cast<std::uint32_t>(rl[j]) ==
                  (std::bit_cast<std::uint32_t>(row[c.col]) ^ c.negative << 31));
        }
      }
    }
  }
}

TEST_CASE("simd: large casts (streaming stores) at even and odd output addresses") {
  const std::size_t n = (std::size_t{4} << 20) + 13;
  auto x = mixed_values(n, 12);
  x[n / 2] = std::bit_cast<float>(0x7fa00001u);  // a signalling NaN in the streamed part
  for (auto enc : {&simd::to_half, &simd::to_bf16}) {
    for (std::size_t offset : {0ul, 1ul, 6ul}) {
      std::vector<std::uint8_t> ref(2 * n + 8), vec(2 * n + 8);
      enc(x.data(), n, ref.data() + offset, Isa::kScalar);
      enc(x.data(), n, vec.data() + offset, simd::best());
      CHECK_MESSAGE(first_difference(ref, vec, 1) == ref.size(), "offset ", offset);
    }
  }
}
