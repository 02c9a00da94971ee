#include <doctest/doctest.h>

#include <bit>

#include "helpers.hpp"
#include "rumor/codec/topk.hpp"

using namespace rumor::codec;
using namespace rumor::codec::test;

namespace {

// Reference: full sort by (|x| descending, index ascending), first k, sorted by index.
std::vector<std::uint32_t> reference(std::span<const float> x, std::size_t k) {
  std::vector<std::uint32_t> idx(x.size());
  std::iota(idx.begin(), idx.end(), 0u);
  auto mag = [&](std::uint32_t i) { return std::bit_cast<std::uint32_t>(x[i]) & 0x7fffffffu; };
  std::stable_sort(idx.begin(), idx.end(),
                   [&](std::uint32_t a, std::uint32_t b) { return mag(a) > mag(b); });
  idx.resize(std::min(k, x.size()));
  std::sort(idx.begin(), idx.end());
  return idx;
}

}  // namespace

TEST_SUITE("codec") {
  TEST_CASE("top-k equals a full sort (ties to the lower index) on many vector shapes") {
    TopkSelector sel;
    std::vector<std::uint32_t> got;
    rumor::Rng rng(5);
    struct Shape {
      const char* name;
      std::size_t d;
    };
    for (std::size_t d : {1ul, 7ul, 1000ul, 40000ul, 200000ul}) {
      std::vector<std::vector<float>> xs;
      xs.push_back(gaussian(d, d));
      std::vector<float> ties(d);  // few distinct magnitudes: heavy ties at the threshold
      for (auto& v : ties) v = static_cast<float>(static_cast<int>(rng.below(7)) - 3);
      xs.push_back(ties);
      xs.push_back(std::vector<float>(d, -1.5f));  // all equal
      std::vector<float> zeros(d, 0.0f);
      for (std::size_t i = 0; i < d; i += 2) zeros[i] = -0.0f;  // signed zeros tie too
      xs.push_back(zeros);
      std::vector<float> sorted(d);  // increasing magnitude: top-k at the end
      for (std::size_t i = 0; i < d; ++i) sorted[i] = static_cast<float>(i) * (i % 2 ? 1 : -1);
      xs.push_back(sorted);
      for (std::size_t v = 0; v < xs.size(); ++v) {
        for (std::size_t k : {std::size_t{1}, d / 100 + 1, d / 10 + 1, d / 2 + 1, d}) {
          CAPTURE(d);
          CAPTURE(v);
          CAPTURE(k);
          sel.select(xs[v], k, got);
          REQUIRE(got == reference(xs[v], k));
        }
      }
    }
  }

  TEST_CASE("top-k on a large Gaussian vector uses the sampled threshold (no fallback)") {
    TopkSelector sel;
    std::vector<std::uint32_t> got;
    for (std::uint64_t seed = 0; seed < 5; ++seed) {
      auto x = gaussian(300000, 50 + seed);
      sel.select(x, 3000, got);
      REQUIRE(got == reference(x, 3000));
    }
    CHECK(sel.fallbacks() == 0);
    // A vector whose mass is concentrated where the sample rarely looks still comes out exact
    // (through the fallback when the candidate count is off).
    std::vector<float> x(300000, 1.0f);
    for (std::size_t i = 0; i < 2000; ++i) x[i * 7] = 2.0f + static_cast<float>(i % 3);
    sel.select(x, 3000, got);
    CHECK(got == reference(x, 3000));
  }

  TEST_CASE("topk codec payload: varint indices are much smaller than int64") {
    auto x = gaussian(100000, 60);
    auto c = make_codec("topk:0.01");
    Bytes b;
    roundtrip(*c, x, {}, &b);
    // 1000 values (4 bytes each) and gaps of ~100 (1-2 bytes each), not 8-byte indices.
    CHECK(b.size() < 13 + 5 + 1000 * 4 + 1000 * 2);
    CHECK(b.size() > 13 + 5 + 1000 * 4 + 1000 * 1);
    CHECK(bits_per_param(b.size(), x.size()) < 0.5);
  }
}
