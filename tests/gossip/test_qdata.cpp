// qdata: quantizer bounds, importance rule, replay-buffer bound, malformed frames, and the
// method on a ring with a LibTorch-free stand-in for local training.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "harness.hpp"
#include "rumor/common/error.hpp"
#include "rumor/gossip/qdata.hpp"

using namespace rumor;
using namespace rumor::gossip;
using namespace rumor::gossip::testing;

namespace {

// Box-Muller.
double normal(Rng& rng) {
  const double u = 1.0 - rng.uniform(), v = rng.uniform();
  return std::sqrt(-2.0 * std::log(u)) * std::cos(6.283185307179586 * v);
}

std::vector<float> gaussian(std::size_t n, std::uint64_t seed) {
  Rng rng(seed);
  std::vector<float> v(n);
  for (auto& x : v) x = static_cast<float>(normal(rng));
  return v;
}

// Samples are points in R^sdim with labels; the loss of (x, y) at model m is
// 0.5 ||x - m[0:sdim]||^2, so high-loss samples are the ones far from the model.
class ToyWork : public LocalWork, public SampleWork {
 public:
  ToyWork(std::span<float> model, std::size_t sdim, std::size_t shard, std::uint64_t seed)
      : model_(model), sdim_(sdim), g_(model.size()) {
    Rng rng(seed);
    for (std::size_t i = 0; i < shard * sdim; ++i)
      features_.push_back(static_cast<float>(normal(rng) + static_cast<double>(seed % 5)));
    for (std::size_t i = 0; i < shard; ++i) labels_.push_back(static_cast<std::int32_t>(i % 3));
  }
  Stats gradient() override {
    std::vector<float> f;
    std::vector<std::int32_t> l;
    draw(8, steps_, f, l);
    return gradient_on(f, l);
  }
  std::span<const float> grads() const override { return g_; }
  void step(std::span<float> x) override { step(x, g_); }
  void step(std::span<float> x, std::span<const float> d) override {
    for (std::size_t k = 0; k < x.size(); ++k) x[k] -= 0.1f * d[k];
    ++steps_;
  }
  double lr() const override { return 0.1; }
  std::int64_t steps() const override { return steps_; }
  double epochs() const override { return 0; }
  SampleWork* sample_work() override { return this; }

  std::size_t sample_dim() const override { return sdim_; }
  int num_classes() const override { return 3; }
  void draw(std::size_t n, std::int64_t round, std::vector<float>& f,
            std::vector<std::int32_t>& l) override {
    Rng rng = Rng::derive(3, static_cast<std::uint64_t>(round));
    for (std::size_t k = 0; k < n; ++k) {
      const std::size_t i = rng.below(labels_.size());
      f.insert(f.end(), features_.begin() + static_cast<std::ptrdiff_t>(i * sdim_),
               features_.begin() + static_cast<std::ptrdiff_t>((i + 1) * sdim_));
      l.push_back(labels_[i]);
    }
  }
  std::vector<float> losses(std::span<const float> f, std::span<const std::int32_t> l) override {
    std::vector<float> out(l.size());
    for (std::size_t i = 0; i < l.size(); ++i)
      for (std::size_t k = 0; k < sdim_; ++k)
        out[i] += 0.5f * (f[i * sdim_ + k] - model_[k]) * (f[i * sdim_ + k] - model_[k]);
    return out;
  }
  Stats gradient_on(std::span<const float> f, std::span<const std::int32_t> l) override {
    std::fill(g_.begin(), g_.end(), 0.0f);
    const float inv = 1.0f / static_cast<float>(l.size());
    for (std::size_t i = 0; i < l.size(); ++i)
      for (std::size_t k = 0; k < sdim_; ++k) g_[k] += inv * (model_[k] - f[i * sdim_ + k]);
    const auto ls = losses(f, l);
    return {std::accumulate(ls.begin(), ls.end(), 0.0) / static_cast<double>(l.size()), 0.0};
  }

 private:
  std::span<float> model_;
  std::size_t sdim_;
  std::vector<float> features_, g_;
  std::vector<std::int32_t> labels_;
  std::int64_t steps_ = 0;
};

// A ring of n qdata nodes training ToyWork on models of `dim` values.
struct QdataSim {
  Sim sim;
  // same_data: every node holds the same shard (so training does not pull them apart).
  QdataSim(int n, std::size_t dim, nlohmann::json params, bool same_data = false)
      : sim(gen("ring", n), "qdata", "fp32", dim, std::move(params), true) {
    for (int i = 0; i < n; ++i)
      sim.work[i] = std::make_unique<ToyWork>(sim.models[i], 6, 50,
                                              same_data ? 0 : static_cast<std::uint64_t>(i));
  }
};

qdata::Limits limits(std::size_t dim, std::size_t max_samples, int bits = 4) {
  return {bits, dim, 3, max_samples};
}

}  // namespace

TEST_SUITE("gossip") {
  TEST_CASE("qdata quantize then dequantize stays within half a step for every bit width") {
    for (int bits = 1; bits <= 8; ++bits) {
      for (std::size_t dim : {1, 7, 64, 784}) {
        CAPTURE(bits);
        CAPTURE(dim);
        const auto x = gaussian(dim, 100 + dim + static_cast<std::size_t>(bits));
        std::vector<std::uint8_t> packed(qdata::packed_size(dim, bits));
        const auto s = qdata::quantize(x, bits, packed.data());
        std::vector<float> y(dim);
        qdata::dequantize(packed.data(), bits, s, y);
        const auto [lo, hi] = std::minmax_element(x.begin(), x.end());
        const double bound = (*hi - *lo) / (2.0 * ((1 << bits) - 1));
        double worst = 0;
        for (std::size_t k = 0; k < dim; ++k)
          worst = std::max(worst, std::abs(static_cast<double>(x[k]) - y[k]));
        CHECK(worst <= bound * (1 + 1e-5) + 1e-6);
        CHECK(y[lo - x.begin()] == doctest::Approx(*lo));  // the minimum is exact
      }
    }
    // A constant sample comes back exactly.
    std::vector<float> c(10, 2.5f), y(10);
    std::vector<std::uint8_t> packed(qdata::packed_size(10, 3));
    qdata::dequantize(packed.data(), 3, qdata::quantize(c, 3, packed.data()), y);
    CHECK(y == c);
  }

  TEST_CASE("qdata error shrinks as bits grow") {
    const auto x = gaussian(784, 5);
    double prev = INFINITY;
    for (int bits = 1; bits <= 8; ++bits) {
      std::vector<std::uint8_t> packed(qdata::packed_size(x.size(), bits));
      std::vector<float> y(x.size());
      qdata::dequantize(packed.data(), bits, qdata::quantize(x, bits, packed.data()), y);
      double err = 0;
      for (std::size_t k = 0; k < x.size(); ++k) err += (x[k] - y[k]) * (x[k] - y[k]);
      CHECK(err < prev);
      prev = err;
    }
  }

  TEST_CASE("qdata importance rule top picks the highest-loss samples") {
    Rng rng(11);
    std::vector<float> losses(200);
    for (auto& l : losses) l = static_cast<float>(rng.uniform() * 5);
    qdata::Importance imp(qdata::Rule::kTop, 0.8, 0.01);
    const auto picked = imp.select(losses, 12);
    REQUIRE(picked.size() == 12);
    std::vector<float> sorted = losses;
    std::sort(sorted.rbegin(), sorted.rend());
    for (std::size_t r = 0; r < picked.size(); ++r) CHECK(losses[picked[r]] == sorted[r]);
    CHECK(imp.threshold() == sorted[11]);
    // Every sample not picked has a loss no higher than every picked one.
    for (std::size_t i = 0; i < losses.size(); ++i)
      if (std::find(picked.begin(), picked.end(), i) == picked.end())
        CHECK(losses[i] <= imp.threshold());
    // A budget above the candidates takes them all; NaN losses are never picked.
    losses[3] = NAN;
    CHECK(imp.select(losses, 1000).size() == 199);
  }

  TEST_CASE("qdata importance rule quantile tracks the quantile and sends only losses above it") {
    qdata::Importance imp(qdata::Rule::kQuantile, 0.8, 0.01);
    Rng rng(12);
    std::size_t sent = 0, seen = 0;
    for (int round = 0; round < 400; ++round) {
      std::vector<float> losses(64);
      for (auto& l : losses) l = static_cast<float>(rng.uniform());  // quantile 0.8 = 0.8
      const double before = imp.threshold();
      const auto picked = imp.select(losses, 64);
      for (std::size_t r = 0; r < picked.size(); ++r) {
        if (round > 0) CHECK(losses[picked[r]] > before);
        if (r) CHECK(losses[picked[r]] <= losses[picked[r - 1]]);
      }
      if (round >= 200) sent += picked.size(), seen += losses.size();
    }
    CHECK(imp.threshold() == doctest::Approx(0.8).epsilon(0.05));
    CHECK(static_cast<double>(sent) / static_cast<double>(seen) ==
          doctest::Approx(0.2).epsilon(0.25));
    // The budget caps what is sent.
    std::vector<float> high(64, 10.0f);
    CHECK(imp.select(high, 5).size() == 5);
  }

  TEST_CASE("qdata replay buffer never exceeds its capacity and keeps the newest samples") {
    qdata::ReplayBuffer b(16, 3);
    for (int i = 0; i < 100; ++i) {
      const float v = static_cast<float>(i);
      std::vector<float> x{v, v, v};
      b.add(x, i % 3);
      CHECK(b.size() == std::min(i + 1, 16));
    }
    Rng rng(1);
    std::vector<float> f;
    std::vector<std::int32_t> l;
    b.sample(500, rng, f, l);
    REQUIRE(f.size() == 1500);
    for (std::size_t i = 0; i < 500; ++i) CHECK(f[i * 3] >= 84.0f);  // only the last 16
  }

  TEST_CASE("qdata frames round-trip samples, refinement and model sections") {
    const std::size_t dim = 20;
    const auto x = gaussian(3 * dim, 4);
    const std::vector<std::int32_t> labels{0, 2, 1};
    codec::Bytes refine{1, 2, 3}, model{9, 9, 9, 9, 9}, out;
    const auto s = qdata::encode_frame(4, dim, x, labels, &refine, &model, out);
    CHECK(s.samples + s.refine + s.model == out.size());
    CHECK(s.refine == 3);
    CHECK(s.model == 5);
    CHECK(s.samples == qdata::kHeaderSize + 3 * (10 + qdata::packed_size(dim, 4)));
    qdata::Frame f;
    qdata::decode_frame(out, limits(dim, 3), "test", f);
    CHECK(f.count == 3);
    CHECK(f.labels == labels);
    CHECK(f.has_refine);
    CHECK(f.has_model);
    CHECK(std::vector<std::uint8_t>(f.refine.begin(), f.refine.end()) == refine);
    CHECK(std::vector<std::uint8_t>(f.model.begin(), f.model.end()) == model);
    for (std::size_t k = 0; k < x.size(); ++k) CHECK(std::abs(f.features[k] - x[k]) < 0.5f);
  }

  TEST_CASE("malformed qdata payloads are rejected with ProtocolError and never crash") {
    const std::size_t dim = 33;
    const auto x = gaussian(4 * dim, 8);
    const std::vector<std::int32_t> labels{0, 1, 2, 1};
    codec::Bytes refine(17, 5), model(40, 7), b;
    qdata::encode_frame(3, dim, x, labels, &refine, &model, b);
    const auto lim = limits(dim, 4, 3);
    qdata::Frame f;
    qdata::decode_frame(b, lim, "test", f);
    for (std::size_t n = 0; n < b.size(); ++n) {
      codec::Bytes t(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(n));
      REQUIRE_THROWS_AS(qdata::decode_frame(t, lim, "test", f), ProtocolError);
    }
    codec::Bytes longer = b;
    longer.push_back(0);
    CHECK_THROWS_AS(qdata::decode_frame(longer, lim, "test", f), ProtocolError);
    // Another receiver's bit width, dimension, budget or class count is refused.
    CHECK_THROWS_AS(qdata::decode_frame(b, limits(dim, 4, 4), "test", f), ProtocolError);
    CHECK_THROWS_AS(qdata::decode_frame(b, limits(dim + 1, 4, 3), "test", f), ProtocolError);
    CHECK_THROWS_AS(qdata::decode_frame(b, limits(dim, 3, 3), "test", f), ProtocolError);
    CHECK_THROWS_AS(qdata::decode_frame(b, {3, dim, 2, 4}, "test", f), ProtocolError);
    auto with = [&](std::size_t at, std::vector<std::uint8_t> bytes) {
      codec::Bytes m = b;
      std::copy(bytes.begin(), bytes.end(), m.begin() + static_cast<std::ptrdiff_t>(at));
      return m;
    };
    const std::uint32_t nan_bits = 0x7fc00000u;
    std::vector<std::uint8_t> nan(4);
    std::memcpy(nan.data(), &nan_bits, 4);
    for (const auto& m :
         {with(0, {'X'}), with(1, {2}), with(3, {0x80}), with(8, {200, 0, 0, 0}),
          with(12, {0xff, 0xff, 0xff, 0xff}), with(20, {3, 0}), with(22, nan), with(26, nan)}) {
      try {
        qdata::decode_frame(m, lim, "node 1, from peer 2, round 3", f);
        FAIL("a malformed frame was accepted");
      } catch (const ProtocolError& e) {
        CHECK(std::string(e.what()).find("node 1, from peer 2, round 3") != std::string::npos);
      }
    }
    // Single-byte corruptions anywhere: success or ProtocolError, nothing else.
    Rng rng(2);
    for (int t = 0; t < 2000; ++t) {
      codec::Bytes m = b;
      m[rng.below(m.size())] ^= static_cast<std::uint8_t>(1 + rng.below(255));
      try {
        qdata::decode_frame(m, lim, "test", f);
        for (float v : f.features) CHECK(std::isfinite(v));
      } catch (const ProtocolError&) {
      }
    }
  }

  TEST_CASE("qdata method: receivers' buffers stay bounded and sample bytes ignore the model") {
    const nlohmann::json params = {{"budget", 3},       {"buffer", 10}, {"candidates", 16},
                                   {"gossip_every", 4}, {"bits", 4},    {"replay_batch", 4}};
    std::uint64_t sample_bytes[2] = {0, 0}, model_bytes[2] = {0, 0};
    for (int which = 0; which < 2; ++which) {
      QdataSim q(5, which == 0 ? 6 : 600, params);
      for (int r = 0; r < 12; ++r) {
        q.sim.round(r);
        for (auto& m : q.sim.methods) {
          const auto j = m->round_metrics();
          CHECK(j["qd_buffer"].get<std::size_t>() <= 10);
          CHECK(j["qd_buffer"].get<std::size_t>() == std::min<std::size_t>(10, 6 * (r + 1)));
          CHECK(j["qd_samples_sent"] == 6);  // budget 3 to each of 2 ring neighbours
          CHECK(j["qd_samples_recv"] == 6);
        }
      }
      const auto j = q.sim.methods[0]->round_metrics();
      sample_bytes[which] = j["qd_bytes_samples"];
      model_bytes[which] = j["qd_bytes_model"];
      CHECK(j["qd_bytes_refine"] == 0);
    }
    CHECK(sample_bytes[0] == sample_bytes[1]);  // independent of the model's size
    CHECK(model_bytes[1] > 50 * model_bytes[0]);
  }

  TEST_CASE("qdata method: periodic model gossip brings the nodes together") {
    // No local training pull (mix 0, budget 0): only the averaging every 2 rounds acts.
    QdataSim q(6, 50, {{"budget", 0}, {"gossip_every", 2}});
    for (auto& w : q.sim.work) w = std::make_unique<NoLocalWork>();
    // NoLocalWork has no samples: qdata refuses it with a ConfigError naming the need.
    CHECK_THROWS_AS(q.sim.methods[0]->local(0, *q.sim.work[0]), ConfigError);
    QdataSim t(6, 50, {{"budget", 0}, {"gossip_every", 2}, {"mix", 0.0}}, true);
    for (int i = 0; i < 6; ++i) {
      Rng rng(static_cast<std::uint64_t>(i) + 40);
      for (auto& v : t.sim.models[i]) v = static_cast<float>(normal(rng));
    }
    const double before = t.sim.consensus_distance();
    for (int r = 0; r < 60; ++r) t.sim.round(r);
    CHECK(t.sim.consensus_distance() < 0.2 * before);
  }

  TEST_CASE("qdata method: refinement travels coded and its inner payload is checked") {
    QdataSim q(4, 40, {{"budget", 2}, {"refine", "sign"}, {"gossip_every", 0}, {"buffer", 8}});
    for (int r = 0; r < 3; ++r) q.sim.round(r);
    const auto j = q.sim.methods[1]->round_metrics();
    CHECK(j["qd_bytes_refine"].get<std::uint64_t>() > 0);
    CHECK(j["qd_bytes_model"] == 0);
    // A frame whose refinement section is not a sign payload is a ProtocolError.
    const std::size_t dim = 6;
    const auto x = gaussian(2 * dim, 3);
    codec::Bytes junk(12, 0xab), b;
    qdata::encode_frame(4, dim, x, std::vector<std::int32_t>{0, 1}, &junk, nullptr, b);
    net::Message m;
    m.sender = 0;
    m.round = 3;
    m.payload = net::Payload::copy_of(b);
    std::vector<net::Message> in{m};
    CHECK_THROWS_AS(q.sim.methods[1]->absorb(3, 0, in), ProtocolError);
  }
}
