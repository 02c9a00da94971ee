// Methods on the schedules beyond static graphs: peer sampling (push-sum stays
// column-stochastic, D-PSGD averages what arrived) and the Base-(k+1) graph (D-PSGD averages
// exactly in one period).
#include <doctest/doctest.h>

#include <cmath>

#include "harness.hpp"
#include "rumor/common/error.hpp"

using namespace rumor;
using namespace rumor::gossip;
using namespace rumor::gossip::testing;

namespace {

Topology peer_sampling(int n, int fanout) {
  std::vector<NodeInfo> nodes;
  for (int i = 0; i < n; ++i) nodes.push_back({i, "127.0.0.1", 0});
  ScheduleParams p;
  p.fanout = fanout;
  p.seed = 3;
  return Topology("ps", true, Schedule::kPeerSampling, MixingKind::kUniform, p, nodes, {});
}

}  // namespace

TEST_SUITE("gossip") {
  TEST_CASE("sgp on peer sampling keeps its push-sum mass and reaches the average") {
    for (bool robust : {false, true}) {
      CAPTURE(robust);
      Sim sim(peer_sampling(12, 2), "sgp", "fp32", 30, {{"robust", robust}});
      const auto start = sim.mean();
      const double d0 = sim.consensus_distance();
      for (int r = 0; r < 60; ++r) {
        sim.round(r);
        double weights = 0;
        for (const auto& m : sim.methods) weights += m->weight();
        REQUIRE(std::abs(weights - 12.0) < 1e-9);
      }
      const auto end = sim.mean();
      for (std::size_t k = 0; k < end.size(); ++k)
        CHECK(end[k] == doctest::Approx(start[k]).epsilon(1e-4));
      CHECK(sim.consensus_distance() < 1e-8 * d0);
    }
  }

  TEST_CASE("dpsgd on peer sampling averages itself and the models that arrived, uniformly") {
    Sim sim(peer_sampling(9, 1), "dpsgd", "fp32", 5);
    const auto before = sim.models;
    sim.round(0);
    for (int i = 0; i < 9; ++i) {
      const auto in = sim.topology.in_neighbors(i, 0);
      CAPTURE(i);
      for (std::size_t k = 0; k < 5; ++k) {
        double expect = before[i][k];
        for (int j : in) expect += before[j][k];
        expect /= 1.0 + static_cast<double>(in.size());
        CHECK(sim.models[i][k] == doctest::Approx(expect).epsilon(1e-6));
      }
    }
    for (int r = 1; r < 80; ++r) sim.round(r);
    CHECK(sim.consensus_distance() < 1e-8);
  }

  TEST_CASE("dpsgd on the Base-(k+1) graph averages exactly in one period") {
    for (int n : {5, 6, 7, 10, 12}) {
      CAPTURE(n);
      GenOptions o;
      o.nodes = n;
      o.k = 1;
      const Topology t = generate_topology("base", o);
      Sim sim(t, "dpsgd", "fp32", 16);
      const auto start = sim.mean();
      const double d0 = sim.consensus_distance();
      for (int r = 0; r < t.period(); ++r) sim.round(r);
      CHECK(sim.consensus_distance() < 1e-10 * d0);  // fp32 rounding only
      const auto end = sim.mean();
      for (std::size_t k = 0; k < end.size(); ++k)
        CHECK(end[k] == doctest::Approx(start[k]).epsilon(1e-5));
    }
  }

  TEST_CASE(
      "methods that need a fixed undirected graph refuse peer sampling, naming the ones that "
      "run") {
    const Topology t = peer_sampling(6, 2);
    MethodContext ctx;
    ctx.topology = &t;
    ctx.codec = codec::make_codec("topk:0.5");
    for (const char* name : {"choco", "gt", "qgm"})
      CHECK_THROWS_WITH_AS(make_method(name, ctx), doctest::Contains("use sgp (push-sum) or dpsgd"),
                           ConfigError);
  }
}
