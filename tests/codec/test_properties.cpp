#include <doctest/doctest.h>

#include "helpers.hpp"

using namespace rumor::codec;
using namespace rumor::codec::test;

namespace {

// ||mean over n encodings (different rounds) - x|| / ||x||.
double mean_error(const Codec& c, std::span<const float> x, int n) {
  auto enc = c.make_encoder(x.size());
  auto dec = c.make_decoder(x.size());
  std::vector<double> mean(x.size(), 0.0);
  std::vector<float> y(x.size());
  Bytes b;
  for (int r = 0; r < n; ++r) {
    const CodecContext ctx{11, static_cast<std::uint64_t>(r), 1};
    enc->encode(x, ctx, b);
    dec->decode(b, ctx, y);
    for (std::size_t i = 0; i < x.size(); ++i) mean[i] += y[i];
  }
  double e = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double t = mean[i] / n - x[i];
    e += t * t;
  }
  return std::sqrt(e / norm2(x));
}

// Mean over n draws of ||C(x) - x||^2 / ||x||^2, and the standard error of that mean.
std::pair<double, double> mean_contraction(const Codec& c, std::span<const float> x, int n) {
  auto enc = c.make_encoder(x.size());
  std::vector<float> y(x.size());
  Bytes b;
  double s = 0, s2 = 0;
  const double nx = norm2(x);
  for (int r = 0; r < n; ++r) {
    enc->encode(x, {5, static_cast<std::uint64_t>(r), 0}, b, y);
    const double t = dist2(y, x) / nx;
    s += t;
    s2 += t * t;
  }
  const double mean = s / n;
  const double var = n > 1 ? std::max(0.0, (s2 / n - mean * mean) * n / (n - 1)) : 0.0;
  return {mean, std::sqrt(var / n)};
}

std::vector<std::vector<float>> test_vectors(std::size_t d) {
  std::vector<std::vector<float>> out;
  out.push_back(gaussian(d, 21));
  std::vector<float> p(d);  // power law with mixed signs
  for (std::size_t i = 0; i < d; ++i) p[i] = (i % 3 ? 1.0f : -1.0f) / static_cast<float>(i + 1);
  out.push_back(p);
  std::vector<float> one(d, 0.0f);  // a single spike: the worst case for sign
  one[d / 2] = -3.0f;
  out.push_back(one);
  out.push_back(std::vector<float>(d, 0.25f));
  return out;
}

}  // namespace

TEST_SUITE("codec") {
  TEST_CASE("qsgd and unbiased randk are unbiased: the mean of many encodings converges") {
    const std::size_t d = 1000;
    const int n = 2000;
    auto x = gaussian(d, 12);
    // Tolerance: 4 standard deviations of the mean, sqrt(omega / n), omega the variance factor.
    struct Case {
      const char* spec;
      double omega;
    } cases[] = {{"qsgd:4", std::min(512.0 / 225, std::sqrt(512.0) / 15)},
                 {"qsgd:2", std::min(512.0 / 9, std::sqrt(512.0) / 3)},
                 {"qsgd:1:chunk=100", std::min(100.0, 10.0)},
                 {"randk:0.1:unbiased", 9.0},
                 {"randk:0.1:unbiased|qsgd:4", 9.0 + 10 * 1.5}};
    for (const auto& cs : cases) {
      const std::string spec_s = cs.spec;
      CAPTURE(spec_s);
      auto c = make_codec(cs.spec);
      CHECK(c->unbiased());
      const double tol = 4.0 * std::sqrt(cs.omega / n);
      const double err = mean_error(*c, x, n);
      CHECK(err < tol);
      CHECK(err > 0.0);  // it is random
    }
    // The same check detects bias: the contractive variants shrink.
    for (const char* spec : {"qsgd:2:biased", "randk:0.1"}) {
      const std::string spec_s = spec;
      CAPTURE(spec_s);
      auto c = make_codec(spec);
      CHECK_FALSE(c->unbiased());
      CHECK(mean_error(*c, x, 500) > 0.3);
    }
  }

  TEST_CASE("contraction with the declared delta: topk, sign, biased qsgd, randk, chains") {
    const std::size_t d = 2000;
    for (const char* spec :
         {"topk:0.01", "topk:0.3", "topk:0.05|fp16", "sign", "sign:chunk=64", "qsgd:4:biased",
          "qsgd:2:biased", "qsgd:1:biased:chunk=128", "randk:0.1", "topk:0.01|qsgd:4:biased",
          "topk:0.05|qsgd:2:biased", "topk:0.01|sign", "randk:0.2|sign", "bf16", "fp16", "fp32"}) {
      const std::string spec_s = spec;
      CAPTURE(spec_s);
      auto c = make_codec(spec);
      REQUIRE(c->contractive());
      const double delta = c->delta(d);
      CHECK(delta > 0.0);
      CHECK(delta <= 1.0);
      const bool random = std::string(spec).find("qsgd") != std::string::npos ||
                          std::string(spec).find("randk") != std::string::npos;
      const auto xs = test_vectors(d);
      for (std::size_t vi = 0; vi < xs.size(); ++vi) {
        CAPTURE(vi);
        const auto [ratio, se] = mean_contraction(*c, xs[vi], random ? 400 : 1);
        // Slack: fp32 rounding, plus 4 standard errors of the sampled mean for random codecs.
        CHECK(ratio <= 1.0 - delta + 4.0 * se + 1e-6);
      }
    }
  }

  TEST_CASE("declared deltas are tight where the bound is attained") {
    const std::size_t d = 2000;
    std::vector<float> spike(d, 0.0f);
    spike[7] = 2.0f;
    // sign on a single spike in one chunk: ||C(x)-x||^2 = (1 - 1/c) ||x||^2 exactly.
    auto s = make_codec("sign:chunk=2000");
    std::vector<float> y = roundtrip(*s, spike);
    CHECK(dist2(y, spike) / norm2(spike) == doctest::Approx(1.0 - s->delta(d)).epsilon(1e-5));
    // topk on a flat vector keeps exactly k/d of the energy.
    std::vector<float> flat(d, 1.0f);
    auto t = make_codec("topk:0.1");
    y = roundtrip(*t, flat);
    CHECK(dist2(y, flat) / norm2(flat) == doctest::Approx(1.0 - t->delta(d)).epsilon(1e-9));
    // Not contractive: unbiased qsgd, unbiased randk, the linear sketch.
    for (const char* spec : {"qsgd:4", "randk:0.1:unbiased", "sketch:linear"}) {
      auto c = make_codec(spec);
      CHECK_FALSE(c->contractive());
      CHECK(c->delta(d) == 0.0);
    }
  }

  TEST_CASE("error feedback carries the residual: sent + memory tracks the sum of inputs") {
    const std::size_t d = 4000;
    for (const char* spec :
         {"topk:0.01", "sign", "topk:0.02|qsgd:2:biased", "sketch:5:0.25:0.01"}) {
      const std::string spec_s = spec;
      CAPTURE(spec_s);
      // gap[ef] = ||sum of inputs - sum of what was sent||, with and without error feedback.
      double gap[2] = {0, 0};
      for (int ef = 0; ef < 2; ++ef) {
        auto c = make_codec((ef ? std::string("ef|") : std::string()) + spec);
        CHECK(c->error_feedback() == (ef == 1));
        auto enc = c->make_encoder(d);
        std::vector<double> sum_in(d, 0.0), sum_sent(d, 0.0);
        std::vector<float> sent(d);
        Bytes b;
        const int rounds = 60;
        for (int r = 0; r < rounds; ++r) {
          auto x = gaussian(d, 100 + r);
          for (auto& v : x) v += 0.05f;  // a common drift, as gradients have
          enc->encode(x, {3, static_cast<std::uint64_t>(r), 0}, b, sent);
          for (std::size_t i = 0; i < d; ++i) {
            sum_in[i] += x[i];
            sum_sent[i] += sent[i];
          }
        }
        double g = 0, tot = 0;
        for (std::size_t i = 0; i < d; ++i) {
          g += (sum_in[i] - sum_sent[i]) * (sum_in[i] - sum_sent[i]);
          tot += sum_in[i] * sum_in[i];
        }
        gap[ef] = std::sqrt(g / tot);
        if (ef) {
          // Invariant: sum of inputs = sum of what was sent + what is still in memory.
          auto mem = enc->memory();
          REQUIRE(mem.size() == d);
          double err = 0;
          for (std::size_t i = 0; i < d; ++i) {
            const double t = sum_in[i] - sum_sent[i] - mem[i];
            err += t * t;
          }
          CHECK(std::sqrt(err / tot) < 1e-3);  // fp32 accumulation over 60 rounds
          CHECK(norm2(mem) > 0.0);
          enc->reset();
          CHECK(norm2(enc->memory()) == 0.0);
        } else {
          CHECK(enc->memory().empty());
        }
      }
      MESSAGE(spec_s, ": relative gap without ef ", gap[0], ", with ef ", gap[1]);
      CHECK(gap[1] < 0.95 * gap[0]);
    }
    auto plain = make_codec("topk:0.01")->make_encoder(10);
    CHECK_THROWS_AS(plain->set_memory(std::vector<float>(10)), rumor::CodecError);
  }

  TEST_CASE("error feedback memory can be saved and restored") {
    auto c = make_codec("ef|topk:5");
    auto a = c->make_encoder(100);
    auto b = c->make_encoder(100);
    auto x = gaussian(100, 31);
    Bytes ba, bb;
    a->encode(x, {}, ba);
    b->set_memory(a->memory());
    a->encode(x, {}, ba);
    b->encode(x, {}, bb);
    CHECK(ba == bb);
    CHECK_THROWS_AS(b->set_memory(std::vector<float>(99)), rumor::CodecError);
  }
}
