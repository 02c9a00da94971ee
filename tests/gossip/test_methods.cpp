#include <doctest/doctest.h>

#include <cmath>
#include <cstring>

#include "choco.hpp"
#include "harness.hpp"
#include "peak_scan.hpp"
#include "rumor/common/error.hpp"
#include "rumor/gossip/ring_allreduce.hpp"

using namespace rumor;
using namespace rumor::gossip;
using namespace rumor::gossip::testing;

TEST_SUITE("gossip") {
  TEST_CASE("sgp conserves push-sum mass on a time-varying directed graph") {
    Sim sim(gen("exponential", 16), "sgp", "fp32", 50);
    const auto start_mean = sim.mean();
    const double d0 = sim.consensus_distance();
    for (int r = 0; r < 24; ++r) {
      sim.round(r);
      double weights = 0;
      for (const auto& m : sim.methods) weights += m->weight();
      REQUIRE(weights == doctest::Approx(16.0).epsilon(1e-12));
      CHECK(std::abs(weights - 16.0) < 1e-9);
    }
    // The de-biased models converge to the initial average.
    const auto m = sim.mean();
    for (std::size_t k = 0; k < m.size(); ++k)
      CHECK(m[k] == doctest::Approx(start_mean[k]).epsilon(1e-4));
    CHECK(sim.consensus_distance() < 1e-8 * d0);
  }

  TEST_CASE("sgp over a lossy codec keeps mass: kept plus decoded equals what was there") {
    Sim sim(gen("exponential", 8), "sgp", "fp16", 64, {{"robust", false}});
    // Numerator mass sum_i x_i = sum_i p_i z_i stays at its start value up to fp32 rounding.
    auto numerator_mass = [&] {
      std::vector<double> s(64, 0.0);
      for (std::size_t i = 0; i < sim.models.size(); ++i)
        for (std::size_t k = 0; k < 64; ++k) s[k] += sim.methods[i]->weight() * sim.models[i][k];
      return s;
    };
    const auto before = numerator_mass();
    for (int r = 0; r < 12; ++r) sim.round(r);
    const auto after = numerator_mass();
    for (std::size_t k = 0; k < 64; ++k)
      CHECK(after[k] == doctest::Approx(before[k]).epsilon(1e-4));
  }

  TEST_CASE("sgp overlap absorbs late messages and still conserves weight") {
    Sim sim(gen("exponential", 8), "sgp", "fp32", 16, {{"overlap", true}, {"tau", 2}});
    for (int r = 0; r < 10; ++r) sim.round(r);
    double weights = 0;
    for (const auto& m : sim.methods) weights += m->weight();
    CHECK(std::abs(weights - 8.0) < 1e-9);
  }

  TEST_CASE("dpsgd averaging keeps the mean and reaches consensus at the spectral rate") {
    const Topology ring = gen("ring", 8);
    Sim sim(ring, "dpsgd", "fp32", 40);
    const auto m0 = sim.mean();
    const double d0 = sim.consensus_distance();
    for (int r = 0; r < 60; ++r) sim.round(r);
    const auto m1 = sim.mean();
    for (std::size_t k = 0; k < m0.size(); ++k)
      CHECK(m1[k] == doctest::Approx(m0[k]).epsilon(1e-5));
    // ||x - mean||^2 shrinks at least as fast as slem^(2t) (up to rounding).
    const double slem = ring.summary().slem;
    CHECK(sim.consensus_distance() <= d0 * std::pow(slem, 2 * 60) * 1.01 + 1e-12);
  }

  TEST_CASE("allreduce gives every node the exact mean") {
    Sim sim(gen("ring", 5), "allreduce", "fp32", 23);
    const auto m0 = sim.mean();
    sim.round(0);
    for (const auto& x : sim.models)
      for (std::size_t k = 0; k < x.size(); ++k)
        CHECK(x[k] == doctest::Approx(m0[k]).epsilon(1e-6));
    // Every node holds the same bits.
    for (const auto& x : sim.models) CHECK(x == sim.models[0]);
  }

  TEST_CASE("choco and squarm: public copies agree bit for bit across nodes") {
    // The sketches are accepted as contractive, and their recovery is the same on both ends.
    for (const std::string codec : {"topk:0.25|sign", "sketch:3:16:8", "sketch:3:16:8:exact"})
      for (const std::string method : {"choco", "squarm"}) {
        CAPTURE(method);
        CAPTURE(codec);
        Sim sim(gen("ring", 6), method, codec, 32, {{"gamma", 0.3}});
        const double d0 = sim.consensus_distance();
        for (int r = 0; r < 15; ++r) sim.round(r);
        if (method == "choco") {
          // choco_kept: the share of ||x - hat x||^2 the last payload removed.
          const auto kept = sim.methods[0]->round_metrics().at("choco_kept").get<double>();
          CHECK(kept > 0.0);
          CHECK(kept <= 1.0);
        }
        // Node i's copy of neighbour j equals j's own public copy.
        for (int i = 0; i < 6; ++i) {
          for (const auto& buf : sim.methods[i]->state_buffers()) {
            const auto& name = buf.name;
            const auto span = buf.data;
            if (name.rfind("hat_", 0) != 0 || name == "hat_self") continue;
            const int j = std::stoi(name.substr(4));
            std::span<const float> own;
            for (const auto& b2 : sim.methods[j]->state_buffers())
              if (b2.name == "hat_self") own = b2.data;
            REQUIRE(own.size() == span.size());
            CHECK(std::memcmp(own.data(), span.data(), own.size_bytes()) == 0);
          }
        }
        // Compressed gossip still contracts the disagreement.
        CHECK(sim.consensus_distance() < 0.1 * d0);
      }
  }

  // The consensus step a choco or squarm node uses after init() on a model of d values.
  double resolved_gamma(const std::string& method, const std::string& spec,
                        nlohmann::json params = nlohmann::json::object(), std::size_t d = 20000) {
    const Topology ring = gen("ring", 4);
    MethodContext ctx;
    ctx.topology = &ring;
    ctx.codec = codec::make_codec(spec);
    ctx.params = std::move(params);
    auto m = make_method(method, ctx);
    std::vector<float> x(d, 0.5f);
    m->init(x);
    const auto* c = dynamic_cast<const Choco*>(m.get());
    REQUIRE(c != nullptr);
    return c->gamma();
  }

  TEST_CASE("choco and squarm: method.gamma auto follows what the codec keeps") {
    // Codecs that keep more than 27% of a normal vector keep the former fixed default.
    for (const std::string spec : {"fp32", "fp16", "sign", "topk:0.1|sign", "topk:0.25|sign"}) {
      CAPTURE(spec);
      CHECK(resolved_gamma("choco", spec) == kAutoGammaMax);
    }
    // Sparser ones: 1.5 delta, delta what they remove from a normal vector.
    CHECK(resolved_gamma("choco", "randk:0.01") == doctest::Approx(0.015).epsilon(0.1));
    CHECK(resolved_gamma("choco", "sketch", {}, 100000) == doctest::Approx(0.015).epsilon(0.1));
    // top-k of 1%: 1.5 times the energy of the largest 1% of normal values (0.0845).
    CHECK(resolved_gamma("choco", "topk:0.01") == doctest::Approx(0.127).epsilon(0.05));
    CHECK(resolved_gamma("choco", "randk:0.001") < resolved_gamma("choco", "randk:0.01"));
    CHECK(resolved_gamma("choco", "randk:0.01") < resolved_gamma("choco", "topk:0.01"));
    CHECK(resolved_gamma("choco", "randk:1", {}, 100000) == kAutoGammaMin);
    // squarm shares the option and the rule, with its own largest step; "auto" given
    // explicitly is the default.
    CHECK(resolved_gamma("squarm", "randk:0.01") == resolved_gamma("choco", "randk:0.01"));
    CHECK(resolved_gamma("squarm", "topk:0.1|sign") == 0.25);
    CHECK(resolved_gamma("choco", "randk:0.01", {{"gamma", "auto"}}) ==
          resolved_gamma("choco", "randk:0.01"));
    // A number is used as given, whatever the codec.
    CHECK(resolved_gamma("choco", "randk:0.01", {{"gamma", 0.3}}) == 0.3);
    CHECK(resolved_gamma("squarm", "fp32", {{"gamma", 0.05}}) == 0.05);
    CHECK_THROWS_WITH_AS(resolved_gamma("choco", "fp32", {{"gamma", "fast"}}),
                         doctest::Contains("\"auto\""), ConfigError);
    CHECK_THROWS_WITH_AS(resolved_gamma("choco", "fp32", {{"gamma", 1.5}}),
                         doctest::Contains("method.gamma"), ConfigError);
    // The rule itself: monotone, clamped.
    CHECK(auto_gamma(0.0) == kAutoGammaMin);
    CHECK(auto_gamma(0.01) == doctest::Approx(0.015));
    CHECK(auto_gamma(-0.5) == kAutoGammaMin);  // a codec that adds error (unbiased qsgd)
    CHECK(auto_gamma(1.0) == kAutoGammaMax);
    CHECK(auto_gamma(0.001) < auto_gamma(0.002));
  }

  // Sends skipped by squarm on a ring of 4 over 20 rounds of a quadratic whose models and
  // targets are all multiplied by `scale` (a power of two: the runs are exact multiples).
  std::uint64_t squarm_skips(float scale, const std::string& units, double c0) {
    constexpr std::size_t d = 500;
    Sim sim(gen("ring", 4), "squarm", "topk:0.5|sign", d,
            {{"c0", c0}, {"c_units", units}, {"c_growth", 0.0}}, true);
    for (std::size_t i = 0; i < sim.models.size(); ++i) {
      for (auto& v : sim.models[i]) v *= scale;
      sim.methods[i]->init(sim.models[i]);
      std::vector<float> b(d);
      Rng rng = Rng::derive(3, i);
      for (auto& v : b) v = scale * static_cast<float>(rng.uniform());
      sim.work[i] = std::make_unique<Quadratic>(sim.models[i], b, 0.1);
    }
    for (int r = 0; r < 20; ++r) sim.round(r);
    std::uint64_t skipped = 0;
    for (auto& m : sim.methods) skipped += m->stats().skipped;
    return skipped;
  }

  TEST_CASE("squarm: c0 in update units does not depend on the scale of the model") {
    const auto at_1 = squarm_skips(1, "update", 3.0);
    CHECK(at_1 > 0);   // the trigger bites...
    CHECK(at_1 < 80);  // ...but some sends go out
    CHECK(squarm_skips(64, "update", 3.0) == at_1);
    CHECK(squarm_skips(1, "update", 0.0) == 0);  // c0 = 0: every round sends
    // The paper's units (lr^2) do: the same c0 skips differently at another scale.
    CHECK(squarm_skips(1, "lr2", 1e5) == 80);  // c_t lr^2 = 1000: never reached here
    CHECK(squarm_skips(64, "lr2", 1e5) < 80);  // ...and passed 64 times larger
  }

  TEST_CASE("squarm trigger suppresses sends when the threshold is high") {
    constexpr std::size_t d = 2000;
    Sim low(gen("ring", 4), "squarm", "topk:0.5|sign", d, {{"c0", 0.0}}, true);
    Sim high(gen("ring", 4), "squarm", "topk:0.5|sign", d, {{"c0", 1e9}}, true);
    for (auto* sim : {&low, &high}) {
      for (std::size_t i = 0; i < sim->models.size(); ++i) {
        std::vector<float> b(d);
        Rng rng = Rng::derive(3, i);
        for (auto& v : b) v = static_cast<float>(rng.uniform());
        sim->work[i] = std::make_unique<Quadratic>(sim->models[i], b, 0.1);
      }
      for (int r = 0; r < 10; ++r) sim->round(r);
    }
    std::uint64_t skipped_low = 0, skipped_high = 0, sent_high = 0;
    for (auto& m : low.methods) skipped_low += m->stats().skipped;
    for (auto& m : high.methods) {
      skipped_high += m->stats().skipped;
      sent_high += m->stats().triggered;
    }
    CHECK(skipped_high == 40);
    CHECK(sent_high == 0);
    CHECK(skipped_low < skipped_high);
    // Skipped rounds still send a tiny notice, so traffic is far smaller but not zero.
    CHECK(high.traffic[0].bytes_sent > 0);
    CHECK(high.traffic[0].bytes_sent * 4 < low.traffic[0].bytes_sent);
  }

  TEST_CASE("training on quadratics: dpsgd and qgm approach the global optimum") {
    for (const std::string method : {"dpsgd", "qgm", "sgp"}) {
      CAPTURE(method);
      Topology t = method == "sgp" ? gen("exponential", 8) : gen("ring", 8);
      Sim sim(t, method, "fp32", 8, nlohmann::json::object(), true);
      std::vector<double> target(8, 0.0);
      for (std::size_t i = 0; i < 8; ++i) {
        std::vector<float> b(8);
        Rng rng = Rng::derive(11, i);
        for (auto& v : b) v = static_cast<float>(rng.uniform() * 4 - 2);
        for (std::size_t k = 0; k < 8; ++k) target[k] += b[k] / 8.0;
        sim.work[i] = std::make_unique<Quadratic>(sim.models[i], b, 0.05);
      }
      for (int r = 0; r < 400; ++r) sim.round(r);
      const auto m = sim.mean();
      for (std::size_t k = 0; k < 8; ++k) CHECK(m[k] == doctest::Approx(target[k]).epsilon(0.02));
    }
  }

  TEST_CASE("gt: the trackers' mean is the mean gradient, and every node reaches the optimum") {
    const int n = 8;
    const std::size_t d = 6;
    std::vector<std::vector<float>> b(n, std::vector<float>(d));
    std::vector<double> target(d, 0.0);
    for (int i = 0; i < n; ++i) {
      Rng rng = Rng::derive(5, static_cast<std::uint64_t>(i));
      for (std::size_t k = 0; k < d; ++k) {
        b[i][k] = static_cast<float>(rng.uniform() * 8 - 4);  // far apart: non-IID
        target[k] += b[i][k] / n;
      }
    }
    auto quadratics = [&](Sim& sim) {
      for (int i = 0; i < n; ++i)
        sim.work[i] = std::make_unique<Quadratic>(sim.models[i], b[i], 0.1);
    };
    Sim gt(gen("ring", n), "gt", "fp32", d, nlohmann::json::object(), true);
    Sim dpsgd(gen("ring", n), "dpsgd", "fp32", d, nlohmann::json::object(), true);
    quadratics(gt);
    quadratics(dpsgd);
    for (int r = 0; r < 300; ++r) {
      gt.round(r);
      dpsgd.round(r);
      std::vector<double> y_mean(d, 0.0), g_mean(d, 0.0);
      for (int i = 0; i < n; ++i) {
        const auto y = gt.methods[i]->state_buffers()[0].data;  // the tracker
        const auto g = gt.work[i]->grads();
        for (std::size_t k = 0; k < d; ++k) {
          y_mean[k] += y[k] / n;
          g_mean[k] += g[k] / n;
        }
      }
      for (std::size_t k = 0; k < d; ++k)
        REQUIRE(y_mean[k] == doctest::Approx(g_mean[k]).epsilon(1e-5).scale(1.0));
    }
    // With a constant step, D-PSGD's nodes stay off the optimum by the data's heterogeneity;
    // gradient tracking's converge to it.
    double gt_err = 0, dpsgd_err = 0;
    for (int i = 0; i < n; ++i)
      for (std::size_t k = 0; k < d; ++k) {
        gt_err = std::max(gt_err, std::abs(gt.models[i][k] - target[k]));
        dpsgd_err = std::max(dpsgd_err, std::abs(dpsgd.models[i][k] - target[k]));
      }
    CHECK(gt_err < 1e-3);
    CHECK(dpsgd_err > 10 * gt_err);
    // A lossy codec would break the invariant: refused.
    MethodContext ctx;
    const Topology ring = gen("ring", 4);
    ctx.topology = &ring;
    ctx.codec = codec::make_codec("fp16");
    CHECK_THROWS_WITH_AS(make_method("gt", ctx), doctest::Contains("fp32"), ConfigError);
  }

  TEST_CASE(
      "diloco: H=1, outer_lr 1, no momentum, all-reduce is parallel SGD with exact averaging") {
    const int n = 6;
    const std::size_t d = 5;
    auto with_quadratics = [&](Sim& sim) {
      for (int i = 0; i < n; ++i) {
        std::vector<float> b(d);
        Rng rng = Rng::derive(9, static_cast<std::uint64_t>(i));
        for (auto& v : b) v = static_cast<float>(rng.uniform() * 4 - 2);
        sim.work[i] = std::make_unique<Quadratic>(sim.models[i], b, 0.2);
      }
    };
    // The inner steps are plain SGD (Quadratic::step: no momentum, no weight decay), whatever
    // a config's optimizer.name would give DiLoCo by default.
    const nlohmann::json exact = {
        {"outer_mix", "allreduce"}, {"outer_lr", 1.0}, {"outer_momentum", 0.0}};
    Sim diloco(gen("ring", n), "diloco", "fp32", d, exact, true);
    Sim sgd(gen("ring", n), "allreduce", "fp32", d, nlohmann::json::object(), true);
    with_quadratics(diloco);
    with_quadratics(sgd);
    for (int r = 0; r < 30; ++r) {
      diloco.round(r);
      sgd.round(r);
      for (int i = 0; i < n; ++i)
        for (std::size_t k = 0; k < d; ++k)
          REQUIRE(diloco.models[i][k] == doctest::Approx(sgd.models[i][k]).epsilon(1e-5));
    }
  }

  TEST_CASE("diloco: every outer mix moves the network's mean by the same first outer step") {
    const int n = 8;
    const std::size_t d = 4;
    std::vector<std::vector<double>> means;
    for (const std::string mix : {"allreduce", "gossip", "one-peer"}) {
      CAPTURE(mix);
      const nlohmann::json params = {{"outer_mix", mix}, {"gossip_steps", 2}};
      Sim sim(gen("ring", n), "diloco", "fp32", d, params, true, 3);
      for (int i = 0; i < n; ++i) {
        std::vector<float> b(d, static_cast<float>(i));
        sim.work[i] = std::make_unique<Quadratic>(sim.models[i], b, 0.1);
      }
      sim.round(0);
      means.push_back(sim.mean());
      if (mix == "one-peer") {
        // Matched pairs hold the same theta; a ring of 8 has a matching of at least 3 pairs.
        int equal_pairs = 0;
        for (int i = 0; i < n; ++i) equal_pairs += sim.models[i] == sim.models[(i + 1) % n] ? 1 : 0;
        CHECK(equal_pairs >= 3);
      }
    }
    for (std::size_t k = 0; k < d; ++k) {
      CHECK(means[1][k] == doctest::Approx(means[0][k]).epsilon(1e-5));
      CHECK(means[2][k] == doctest::Approx(means[0][k]).epsilon(1e-5));
    }
  }

  TEST_CASE("methods refuse topologies and codecs they cannot use") {
    const Topology expo = gen("exponential", 8);
    MethodContext ctx;
    ctx.topology = &expo;
    ctx.codec = codec::make_codec("fp32");
    try {
      make_method("dpsgd", ctx);
      FAIL("expected ConfigError");
    } catch (const ConfigError& e) {
      CHECK(std::string(e.what()).find("directed") != std::string::npos);
      CHECK(std::string(e.what()).find("sgp") != std::string::npos);
    }
    const Topology ring = gen("ring", 4);
    ctx.topology = &ring;
    ctx.codec = codec::make_codec("qsgd:4");
    CHECK_THROWS_WITH_AS(make_method("choco", ctx), doctest::Contains("contractive"), ConfigError);
    ctx.params = {{"allow_noncontractive", true}};
    CHECK_NOTHROW(make_method("choco", ctx));
    CHECK_THROWS_WITH_AS(make_method("dpgsd", ctx), doctest::Contains("did you mean \"dpsgd\""),
                         ConfigError);
  }

  TEST_CASE("ring all-reduce sums exactly for any n and dimension") {
    for (int n : {1, 2, 3, 7}) {
      for (std::size_t d : {1u, 5u, 64u}) {
        CAPTURE(n);
        CAPTURE(d);
        Topology t = n == 1 ? gen("ring", 2) : gen("ring", std::max(n, 2));
        if (n == 1) continue;  // a single node needs no exchange
        net::InProcNetwork network;
        std::vector<std::unique_ptr<net::Transport>> tr;
        for (int i = 0; i < n; ++i) tr.push_back(network.make_transport());
        for (int i = 0; i < n; ++i) tr[i]->start(t, i);
        std::vector<std::vector<float>> data(n, std::vector<float>(d));
        std::vector<float> expected(d, 0.0f);
        std::vector<std::unique_ptr<RingAllreduce>> rings;
        std::vector<Traffic> traffic(n);
        std::vector<PeerIo> io;
        for (int i = 0; i < n; ++i) {
          for (std::size_t k = 0; k < d; ++k) data[i][k] = static_cast<float>(i * 100 + k);
          rings.push_back(std::make_unique<RingAllreduce>(i, n));
          rings[i]->begin(data[i]);
        }
        for (std::size_t k = 0; k < d; ++k)
          for (int i = 0; i < n; ++i) expected[k] += data[i][k];
        for (int i = 0; i < n; ++i) io.push_back({rings[i].get(), tr[i].get(), &traffic[i]});
        ThreadPool pool(2);
        run_phased(io, 0, pool, std::chrono::milliseconds(1000));
        for (int i = 0; i < n; ++i) CHECK(data[i] == expected);
        for (auto& x : tr) x->stop();
      }
    }
  }

  TEST_CASE("ring all-reduce summed in place gives the ring's floats and counts its traffic") {
    for (int n : {2, 3, 7, 10}) {
      for (std::size_t d : {1u, 3u, 5u, 64u}) {
        CAPTURE(n);
        CAPTURE(d);
        const Topology t = gen("ring", n);
        net::InProcNetwork network;
        std::vector<std::unique_ptr<net::Transport>> tr;
        for (int i = 0; i < n; ++i) tr.push_back(network.make_transport());
        for (int i = 0; i < n; ++i) tr[i]->start(t, i);
        // Magnitudes far apart, so that the order of the additions shows in the floats.
        std::vector<std::vector<float>> ring(n, std::vector<float>(d));
        for (int i = 0; i < n; ++i)
          for (std::size_t k = 0; k < d; ++k)
            ring[i][k] = std::ldexp(1.0f + 0.1f * static_cast<float>(k), (i * 7 + 3) % 23) * 1e-3f;
        auto direct = ring;
        std::vector<std::unique_ptr<RingAllreduce>> rings;
        std::vector<Traffic> traffic(n), counted(n);
        std::vector<PeerIo> io;
        for (int i = 0; i < n; ++i) {
          rings.push_back(std::make_unique<RingAllreduce>(i, n));
          rings[i]->begin(ring[i]);
        }
        for (int i = 0; i < n; ++i) io.push_back({rings[i].get(), tr[i].get(), &traffic[i]});
        ThreadPool pool(2);
        run_phased(io, 7, pool, std::chrono::milliseconds(1000));
        std::vector<std::span<float>> spans(direct.begin(), direct.end());
        RingAllreduce::sum_in_place(spans, pool);
        for (int i = 0; i < n; ++i) {
          CHECK(std::memcmp(direct[i].data(), ring[i].data(), d * sizeof(float)) == 0);
          RingAllreduce::count_traffic(i, n, d, 7, net::MessageKind::kAllreduce,
                                       net::LinkKind::kControl, counted[i]);
          CHECK(counted[i].bytes_sent == traffic[i].bytes_sent);
          CHECK(counted[i].bytes_recv == traffic[i].bytes_recv);
          CHECK(counted[i].msgs_sent == traffic[i].msgs_sent);
          CHECK(counted[i].msgs_recv == traffic[i].msgs_recv);
        }
        for (auto& x : tr) x->stop();
      }
    }
  }

  TEST_CASE("the gate refuses non-finite and out-of-range values wherever they lie") {
    // fp32 values are checked in place, or by the peak a receiving transport took of the
    // payload's words; randk:1.0 (every value, in order, fp32) is decoded first: every path
    // must give the same verdicts, details included.
    const Topology ring = gen("ring", 4);
    const std::size_t d = 37;  // not a multiple of any vector width
    std::vector<float> model(d, 0.0f);
    auto context = [&](const char* spec) {
      MethodContext ctx;
      ctx.topology = &ring;
      ctx.codec = codec::make_codec(spec);
      ctx.max_abs_value = 1e6;
      return ctx;
    };
    const MethodContext fp32 = context("fp32"), randk = context("randk:1.0");
    auto in_place = make_method("dpsgd", fp32), decoded = make_method("dpsgd", randk);
    in_place->init(model);
    decoded->init(model);
    auto message = [&](const MethodContext& ctx, const std::vector<float>& x) {
      codec::Bytes bytes;
      ctx.codec->make_encoder(d)->encode(x, codec::CodecContext{ctx.seed, 0, 1}, bytes);
      net::Message msg;
      msg.sender = 1;
      msg.codec = ctx.codec_id;
      msg.payload = net::Payload::take(std::move(bytes));
      return msg;
    };
    auto check = [&](Method& m, const MethodContext& ctx, std::size_t at, float v,
                     bool peak = false) {
      std::vector<float> x(d, 0.25f);
      x[0] = -0.0f;
      x[1] = 1e6f;
      x[2] = -1e6f;
      if (at < d) x[at] = v;
      net::Message msg = message(ctx, x);
      if (peak) {  // as the transports take it: words counted back from the payload's end
        const std::size_t skip = msg.payload.size() % 4;
        msg.payload.set_fp32_peak(
            net::fp32_peak(msg.payload.data() + skip, (msg.payload.size() - skip) / 4));
      }
      return m.check(msg);
    };
    auto both = [&](std::size_t at, float v) {
      const Refusal a = check(*in_place, fp32, at, v), b = check(*decoded, randk, at, v),
                    c = check(*in_place, fp32, at, v, true);
      CHECK(a.reason == b.reason);
      CHECK(a.detail == b.detail);
      CHECK(a.reason == c.reason);
      CHECK(a.detail == c.detail);
      return a.reason;
    };
    CHECK(both(d, 0.0f).empty());
    const float above = std::nextafter(1e6f, 2e6f);
    for (std::size_t at : {3u, 20u, 36u}) {
      CAPTURE(at);
      CHECK(both(at, std::nanf("")) == "non-finite values");
      CHECK(both(at, -std::nanf("")) == "non-finite values");  // the sign bit set
      CHECK(both(at, INFINITY) == "non-finite values");
      CHECK(both(at, -INFINITY) == "non-finite values");
      CHECK(both(at, above) == "value out of range");
      CHECK(both(at, -above) == "value out of range");
    }
    // The peak is what the check reads when there is one (it never comes from the wire: only
    // this process's transport sets it): a peak within range passes without the values.
    net::Message msg = message(fp32, std::vector<float>(d, std::nanf("")));
    CHECK(in_place->check(msg).reason == "non-finite values");
    msg.payload.set_fp32_peak(0);
    CHECK(in_place->check(msg).reason.empty());
  }
}
