#include <doctest/doctest.h>

#include <cstring>

#include "helpers.hpp"
#include "stages.hpp"

using namespace rumor::codec;
using namespace rumor::codec::test;

TEST_SUITE("codec") {
  TEST_CASE("count-sketch table and estimates agree with direct per-key hashing") {
    for (std::uint32_t rows : {3u, 4u, 5u, 7u}) {
      CAPTURE(rows);
      const std::uint32_t cols = 97;
      const std::size_t d = 3000;
      rumor::codec::detail::SketchHash h(42, rows, cols);
      auto x = gaussian(d, rows);
      std::vector<float> table(rows * cols, 0.0f), naive(rows * cols, 0.0f);
      h.sketch(x, table.data());
      for (std::size_t k = 0; k < d; ++k) {
        for (std::uint32_t r = 0; r < rows; ++r) {
          naive[r * cols + h.bucket(r, k)] += h.negative(r, k) ? -x[k] : x[k];
        }
      }
      for (std::size_t i = 0; i < table.size(); ++i) {
        REQUIRE(table[i] == doctest::Approx(naive[i]).epsilon(1e-4).scale(1.0));
      }
      std::vector<float> est(d);
      h.estimate(table.data(), est);
      for (std::size_t k = 0; k < d; ++k) {
        std::vector<float> v;
        for (std::uint32_t r = 0; r < rows; ++r) {
          const float t = table[r * cols + h.bucket(r, k)];
          v.push_back(h.negative(r, k) ? -t : t);
        }
        std::sort(v.begin(), v.end());
        const float med = rows % 2 ? v[rows / 2] : 0.5f * (v[rows / 2 - 1] + v[rows / 2]);
        REQUIRE(est[k] == med);
      }
      // Buckets spread evenly and signs are balanced (loose statistical bounds).
      std::vector<int> load(cols, 0);
      int neg = 0;
      for (std::size_t k = 0; k < 97000; ++k) {
        ++load[h.bucket(0, k)];
        neg += h.negative(0, k);
      }
      CHECK(*std::max_element(load.begin(), load.end()) < 1300);
      CHECK(*std::min_element(load.begin(), load.end()) > 700);
      CHECK(std::abs(neg - 48500) < 1500);
    }
  }

  TEST_CASE("count-sketch recovers a single spike exactly") {
    auto c = make_codec("sketch:5:64:1");
    std::vector<float> x(5000, 0.0f);
    x[4321] = -7.5f;
    auto y = roundtrip(*c, x, {9, 0, 0});
    CHECK(y[4321] == -7.5f);
    CHECK(norm2(y) == doctest::Approx(7.5 * 7.5));
  }

  TEST_CASE("count-sketch is linear: merged sketches decode like the sketch of the sum") {
    const std::size_t d = 20000;
    auto c = make_codec("sketch:5:2000:100");
    REQUIRE(c->mergeable());
    auto x = gaussian(d, 70);
    auto y = gaussian(d, 71);
    for (std::size_t i = 0; i < 50; ++i) x[i * 13] += 30.0f;  // heavy hitters
    std::vector<float> s(d);
    for (std::size_t i = 0; i < d; ++i) s[i] = x[i] + y[i];
    // Sketches of different senders, same seed: hashes depend on the seed alone.
    auto ex = c->make_encoder(d);
    auto ey = c->make_encoder(d);
    auto es = c->make_encoder(d);
    Bytes bx, by, bs;
    ex->encode(x, {1, 4, 0}, bx);
    ey->encode(y, {1, 4, 1}, by);
    es->encode(s, {1, 4, 2}, bs);
    Bytes merged = bx;
    c->merge_add(merged, by);
    REQUIRE(merged.size() == bs.size());
    // Tables agree to fp32 rounding.
    const std::size_t n = (bs.size() - 17) / 4;
    for (std::size_t i = 0; i < n; ++i) {
      float a, b;
      std::memcpy(&a, merged.data() + 17 + 4 * i, 4);
      std::memcpy(&b, bs.data() + 17 + 4 * i, 4);
      REQUIRE(a == doctest::Approx(b).epsilon(1e-5).scale(1.0));
    }
    auto dec = c->make_decoder(d);
    std::vector<float> dm(d), ds(d);
    dec->decode(merged, {1, 0, 0}, dm);
    dec->decode(bs, {1, 0, 0}, ds);
    std::size_t same = 0;
    for (std::size_t i = 0; i < d; ++i) {
      if (ds[i] != 0.0f) {
        same += dm[i] != 0.0f;
        CHECK(dm[i] == doctest::Approx(ds[i]).epsilon(1e-4).scale(1.0));
      }
    }
    CHECK(same == 100);
    // Mismatched parameters are refused.
    auto other = make_codec("sketch:5:1000:100");
    Bytes bo;
    other->make_encoder(d)->encode(x, {1, 0, 0}, bo);
    CHECK_THROWS_AS(c->merge_add(merged, bo), rumor::CodecError);
  }

  // The setting of record: ROWS = 5, COLS = 10 K (= 100,000), K = d / 100. A fully random hash
  // recovers 0.845 of the top-K here (numpy simulation); the bar is 0.8.
  TEST_CASE("count-sketch heavy-hitter recovery on a shuffled power-law vector (d=1e6, K=d/100)") {
    const std::size_t d = 1000000, k = d / 100;
    std::vector<float> x(d);
    rumor::Rng rng(77);
    for (std::size_t i = 0; i < d; ++i) {
      x[i] = (rng.below(2) ? 1.0f : -1.0f) / static_cast<float>(i + 1);
    }
    std::shuffle(x.begin(), x.end(), rng);
    // True top-K by magnitude.
    std::vector<float> mags(d);
    for (std::size_t i = 0; i < d; ++i) mags[i] = std::fabs(x[i]);
    std::vector<float> sorted = mags;
    std::nth_element(sorted.begin(), sorted.begin() + (k - 1), sorted.end(), std::greater<>());
    const float kth = sorted[k - 1];
    auto c = make_codec("sketch:5:100000:10000");
    auto y = roundtrip(*c, x, {2024, 0, 0});
    std::nth_element(sorted.begin(), sorted.begin() + 999, sorted.begin() + k, std::greater<>());
    const float kth1000 = sorted[999];
    std::size_t hit = 0, hit1000 = 0, nz = 0;
    for (std::size_t i = 0; i < d; ++i) {
      if (y[i] != 0.0f) {
        ++nz;
        hit += mags[i] >= kth;
        hit1000 += mags[i] >= kth1000;
      }
    }
    const double recall = static_cast<double>(hit) / k;
    const double recall1000 = static_cast<double>(hit1000) / 1000;
    MESSAGE("count-sketch recall (5 x 100000, K = 10000, d = 1e6): top-K ", recall, ", top-1000 ",
            recall1000);
    CHECK(nz <= k);
    CHECK(recall1000 >= 0.95);
    CHECK(recall >= 0.8);
  }
}
