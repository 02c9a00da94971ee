// run_phased in simulated time: deadlines, late and missed messages, determinism.
#include <doctest/doctest.h>

#include <atomic>
#include <cmath>
#include <cstring>

#include "harness.hpp"

using namespace rumor;
using namespace rumor::gossip;
using namespace rumor::gossip::testing;

namespace {

// Peers of one method over simulated links, task average (no local work: clocks move only
// by waiting).
struct SimRun {
  Topology topology;
  net::InProcNetwork network;
  std::vector<std::unique_ptr<net::Transport>> transports;
  std::vector<std::vector<float>> models;
  std::vector<std::unique_ptr<Method>> methods;
  std::vector<Traffic> traffic;
  std::vector<SimClock> clocks;
  ThreadPool pool{2};

  SimRun(Topology t, const net::LinkModel& model, const std::string& method, nlohmann::json params,
         double deadline_s)
      : topology(std::move(t)), network(model) {
    const int n = topology.size();
    models.resize(n);
    traffic.resize(n);
    clocks.resize(n);
    for (int i = 0; i < n; ++i) {
      net::TransportOptions o;
      o.run_id = "sim-test";
      transports.push_back(network.make_transport(o));
    }
    for (int i = 0; i < n; ++i) transports[i]->start(topology, i);
    for (int i = 0; i < n; ++i) transports[i]->wait_connected();
    for (int i = 0; i < n; ++i) {
      Rng rng = Rng::derive(11, static_cast<std::uint64_t>(i));
      models[i].resize(64);
      for (auto& v : models[i]) v = static_cast<float>(rng.uniform() * 2 - 1);
      MethodContext ctx;
      ctx.self = i;
      ctx.topology = &topology;
      ctx.seed = 11;
      ctx.codec = codec::make_codec("fp32");
      ctx.params = params;
      ctx.identical_init = false;
      methods.push_back(make_method(method, ctx));
      methods[i]->init(models[i]);
      clocks[i].deadline_s = deadline_s;
    }
  }
  ~SimRun() {
    for (auto& t : transports) t->stop();
  }
  std::vector<PeerIo> io() {
    std::vector<PeerIo> out;
    for (std::size_t i = 0; i < methods.size(); ++i)
      out.push_back({methods[i].get(), transports[i].get(), &traffic[i], &clocks[i]});
    return out;
  }
  void rounds(int count, double step_s) {
    for (int r = 0; r < count; ++r) {
      for (auto& c : clocks) c.now_s += step_s;
      run_phased(io(), r, pool, std::chrono::milliseconds(1000));
    }
  }
  void flush(int round) {
    for (auto& p : io()) sim_flush(p, round, INFINITY);
  }
  double weight_sum() const {
    double s = 0;
    for (const auto& m : methods) s += m->weight();
    return s;
  }
};

}  // namespace

TEST_SUITE("gossip") {
  TEST_CASE(
      "run_phased: stage 0 sent beforehand and a step after each peer's exchange change nothing") {
    // The in-process driver sends each peer's first stage right after its local step and
    // writes its metrics line in the last pass: the models, clocks and counters must be those
    // of the plain phases, and the step must see the peer's exchange of the round done.
    net::LinkModel model;
    model.simulated = true;
    model.latency_s = 0.002;
    model.bandwidth_Bps = 1e6;
    for (const char* method : {"dpsgd", "sgp", "allreduce", "local"}) {
      CAPTURE(std::string(method));
      SimRun plain(gen("ring", 6), model, method, nlohmann::json::object(), 1.0);
      SimRun fused(gen("ring", 6), model, method, nlohmann::json::object(), 1.0);
      std::vector<std::vector<float>> seen(6);
      std::atomic<int> calls{0};
      for (int r = 0; r < 6; ++r) {
        for (auto* s : {&plain, &fused})
          for (auto& c : s->clocks) c.now_s += 0.01;
        run_phased(plain.io(), r, plain.pool, std::chrono::milliseconds(1000));
        const auto io = fused.io();
        if (phased_stages(io, r) > 0)
          fused.pool.parallel_for(io.size(), [&](std::size_t i) { send_first_stage(io[i], r); });
        run_phased(io, r, fused.pool, std::chrono::milliseconds(1000), true, [&](std::size_t i) {
          seen[i] = fused.models[i];
          ++calls;
        });
        for (std::size_t i = 0; i < 6; ++i) {
          CAPTURE(i);
          REQUIRE(std::memcmp(plain.models[i].data(), fused.models[i].data(), 64 * 4) == 0);
          CHECK(seen[i] == fused.models[i]);
          CHECK(plain.clocks[i].now_s == fused.clocks[i].now_s);
          CHECK(plain.traffic[i].bytes_recv == fused.traffic[i].bytes_recv);
        }
      }
      CHECK(calls == 36);
    }
  }

  TEST_CASE("simulated time: a slow link past the deadline is late, dpsgd drops it") {
    net::LinkModel model;
    model.simulated = true;
    model.latency_s = 0.001;
    model.overrides[{0, 1}] = net::LinkParams{1.0, 0.0, 0.0};  // 0 -> 1 only
    SimRun s(gen("ring", 4), model, "dpsgd", nlohmann::json::object(), 0.1);
    s.rounds(5, 0.01);
    CHECK(s.traffic[1].msgs_late == 5);
    CHECK(s.traffic[1].msgs_missed == 0);
    // Node 1's neighbours follow its pace and get its messages in time. (Node 3, two hops
    // away, lags a round behind them and eventually waits out deadlines too.)
    for (int i : {0, 2}) CHECK(s.traffic[i].msgs_late == 0);
    // Node 1 waits out its deadline every round; node 2 waits for node 1 as well.
    CHECK(s.clocks[1].now_s == doctest::Approx(5 * (0.01 + 0.1)));
    CHECK(s.clocks[3].now_s < s.clocks[1].now_s);
    // Dropped, not kept: nothing lingers for a method that cannot use it.
    CHECK(s.clocks[1].inbox.size() <= 1);
  }

  TEST_CASE("simulated time: a lost message is missed, the node goes on at its deadline") {
    net::LinkModel model;
    model.simulated = true;
    model.overrides[{2, 3}] = net::LinkParams{0.0, 0.0, 0.999999};
    SimRun s(gen("ring", 4), model, "dpsgd", nlohmann::json::object(), 0.2);
    s.rounds(3, 0.01);
    CHECK(s.traffic[3].msgs_missed == 3);
    CHECK(s.clocks[3].now_s == doctest::Approx(3 * 0.21));
    CHECK(s.clocks[2].now_s < s.clocks[3].now_s);
  }

  TEST_CASE("simulated time: push-sum absorbs late messages when they arrive") {
    net::LinkModel model;
    model.simulated = true;
    model.latency_s = 0.001;
    model.overrides[{0, 1}] = net::LinkParams{0.35, 0.0, 0.0};
    const auto params = nlohmann::json{{"overlap", true}, {"tau", 0}};
    SimRun s(gen("ring", 4), model, "sgp", params, 0.05);
    s.rounds(10, 0.01);
    CHECK(s.traffic[1].msgs_late > 0);
    // Late messages wait in the inbox for the clock, then go in: the mass is all there
    // once what is in flight has arrived.
    CHECK(std::abs(s.weight_sum() - 4.0) > 1e-6);
    s.flush(10);
    CHECK(s.weight_sum() == doctest::Approx(4.0).epsilon(1e-12));
    for (const auto& c : s.clocks) CHECK(c.inbox.empty());
  }

  TEST_CASE("simulated time: results do not depend on thread scheduling") {
    auto run = [] {
      net::LinkModel model;
      model.simulated = true;
      model.latency_s = 0.003;
      model.bandwidth_Bps = 1e5;
      model.loss = 0.2;
      model.seed = 4;
      SimRun s(gen("exponential", 8), model, "sgp", {{"overlap", true}, {"tau", 1}}, 0.02);
      s.rounds(20, 0.01);
      std::vector<double> out;
      for (std::size_t i = 0; i < s.models.size(); ++i) {
        out.push_back(s.clocks[i].now_s);
        out.push_back(s.methods[i]->weight());
        out.insert(out.end(), s.models[i].begin(), s.models[i].end());
      }
      return out;
    };
    const auto a = run();
    for (int k = 0; k < 3; ++k) CHECK(run() == a);
  }
}
