// Peer sampling (random peers every round) and periodic schedules of explicit rounds, with the
// Base-(k+1) graph: what each round's matrix is, what the product over a period is, and how
// files with them are read, written and refused.
#include <doctest/doctest.h>

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <set>

#include "rumor/common/error.hpp"
#include "rumor/topology/generators.hpp"
#include "rumor/topology/topology.hpp"

using namespace rumor;

namespace {

std::vector<NodeInfo> nodes(int n) {
  std::vector<NodeInfo> v;
  for (int i = 0; i < n; ++i) v.push_back({i, "127.0.0.1", 0});
  return v;
}

Topology peer_sampling(int n, int fanout, std::uint64_t seed = 1) {
  ScheduleParams p;
  p.fanout = fanout;
  p.seed = seed;
  return Topology("ps", true, Schedule::kPeerSampling, MixingKind::kUniform, p, nodes(n), {});
}

Topology base(int n, int k) {
  GenOptions o;
  o.nodes = n;
  o.k = k;
  return generate_topology("base", o);
}

Eigen::MatrixXd dense(const MixingMatrix& w) {
  const int n = w.size();
  Eigen::MatrixXd m(n, n);
  for (int j = 0; j < n; ++j)
    for (int i = 0; i < n; ++i) m(j, i) = w(j, i);
  return m;
}

}  // namespace

TEST_SUITE("topology") {
  TEST_CASE("peer-sampling rounds are column-stochastic for sgp") {
    for (int fanout : {1, 2, 4, 9}) {
      const Topology t = peer_sampling(10, fanout);
      CAPTURE(fanout);
      for (std::int64_t r = 0; r < 40; ++r) {
        CAPTURE(r);
        const Eigen::MatrixXd w = dense(t.mixing(r));
        for (int i = 0; i < 10; ++i) {
          const auto outs = t.out_neighbors(i, r);
          // s distinct peers, never itself
          REQUIRE(static_cast<int>(outs.size()) == fanout);
          CHECK(std::set<int>(outs.begin(), outs.end()).size() == outs.size());
          CHECK(std::find(outs.begin(), outs.end(), i) == outs.end());
          // each column: what node i keeps and pushes, 1/(s+1) each, sums to one
          CHECK(std::abs(w.col(i).sum() - 1.0) < 1e-12);
          CHECK(w(i, i) == doctest::Approx(1.0 / (fanout + 1)));
          for (int j : outs) CHECK(w(j, i) == doctest::Approx(1.0 / (fanout + 1)));
          CHECK((w.col(i).array() >= 0).all());
          // in-neighbours are exactly the nodes that drew i
          for (int j : t.in_neighbors(i, r)) {
            const auto theirs = t.out_neighbors(j, r);
            CHECK(std::binary_search(theirs.begin(), theirs.end(), i));
          }
        }
        int links = 0;
        for (int i = 0; i < 10; ++i) links += static_cast<int>(t.in_neighbors(i, r).size());
        CHECK(links == 10 * fanout);
      }
    }
  }

  TEST_CASE("peer-sampling draws are a function of the seed, the round and the node") {
    const Topology a = peer_sampling(32, 2, 5), b = peer_sampling(32, 2, 5);
    const Topology c = peer_sampling(32, 2, 6);
    int differ_by_seed = 0, differ_by_round = 0;
    for (int r = 0; r < 20; ++r)
      for (int i = 0; i < 32; ++i) {
        CHECK(a.out_neighbors(i, r) == b.out_neighbors(i, r));
        differ_by_seed += a.out_neighbors(i, r) != c.out_neighbors(i, r);
        differ_by_round += a.out_neighbors(i, r) != a.out_neighbors(i, r + 1);
      }
    CHECK(differ_by_seed > 500);
    CHECK(differ_by_round > 500);
    // Over many rounds every other node is drawn about equally often.
    std::vector<int> drawn(32, 0);
    for (int r = 0; r < 3100; ++r)
      for (int j : a.out_neighbors(0, r)) ++drawn[j];
    CHECK(drawn[0] == 0);
    for (int j = 1; j < 32; ++j) CHECK(std::abs(drawn[j] - 200) < 60);
  }

  TEST_CASE("peer sampling is refused with what to change") {
    CHECK_THROWS_WITH_AS(peer_sampling(5, 0), doctest::Contains("\"fanout\" 0 is out of range"),
                         TopologyError);
    CHECK_THROWS_WITH_AS(peer_sampling(5, 5), doctest::Contains("1..4"), TopologyError);
    ScheduleParams p;
    p.fanout = 1;
    CHECK_THROWS_WITH_AS(
        Topology("x", false, Schedule::kPeerSampling, MixingKind::kUniform, p, nodes(4), {}),
        doctest::Contains("\"directed\": true"), TopologyError);
    CHECK_THROWS_WITH_AS(Topology("x", true, Schedule::kPeerSampling, MixingKind::kUniform, p,
                                  nodes(4), {{0, 1, std::nullopt}}),
                         doctest::Contains("remove its 1 \"edges\""), TopologyError);
    CHECK_THROWS_WITH_AS(
        parse_topology_json(
            std::string(
                R"({"schedule": "static", "fanout": 2, "nodes": [0, 1], "edges": [[0, 1]]})"),
            "f.json"),
        doctest::Contains("peer-sampling only"), TopologyError);
  }

  TEST_CASE("a peer-sampling file round-trips and its summary says there is no fixed matrix") {
    const Topology t = parse_topology_json(
        std::string(
            R"({"schedule": "peer-sampling", "fanout": 3, "seed": 9, "nodes": [0, 1, 2, 3, 4, 5]})"),
        "ps.json");
    CHECK(t.directed());
    CHECK(t.fanout() == 3);
    CHECK(t.sample_seed() == 9);
    CHECK(t.peers(2) == std::vector<int>{0, 1, 3, 4, 5});
    const Topology again = parse_topology_json(t.to_json(), "again");
    for (int r = 0; r < 10; ++r) CHECK(again.out_neighbors(4, r) == t.out_neighbors(4, r));
    const auto s = t.summary();
    CHECK(s.connected);
    CHECK(s.slem_method == "skipped");
    CHECK(std::isnan(s.slem));
    CHECK(std::isnan(s.spectral_gap));
  }

  TEST_CASE(
      "Base-(k+1): every round has degree <= k and the product over its period is exact "
      "averaging") {
    for (int k : {1, 2, 3}) {
      for (int n : {2, 3, 5, 6, 7, 10, 11, 12, 13, 17, 22, 25, 31, 48}) {
        CAPTURE(k);
        CAPTURE(n);
        const Topology t = base(n, k);
        REQUIRE(t.schedule() == Schedule::kPeriodic);
        Eigen::MatrixXd product = Eigen::MatrixXd::Identity(n, n);
        for (int r = 0; r < t.period(); ++r) {
          for (int i = 0; i < n; ++i) CHECK(static_cast<int>(t.out_neighbors(i, r).size()) <= k);
          const Eigen::MatrixXd w = dense(t.mixing(r));
          CHECK((w - w.transpose()).cwiseAbs().maxCoeff() < 1e-15);  // symmetric
          CHECK((w.array() >= -1e-15).all());
          CHECK((w.colwise().sum().array() - 1.0).abs().maxCoeff() < 1e-12);
          product = w * product;
        }
        CHECK((product.array() - 1.0 / n).abs().maxCoeff() < 1e-12);
        const auto s = t.summary();
        CHECK(s.slem == 0.0);
        CHECK(s.slem_method == "exact");
        CHECK(s.rounds_to_exact_average > 0);
        CHECK(s.rounds_to_exact_average <= t.period());
      }
    }
  }

  TEST_CASE("Base-(k+1) at a power of k+1 is the hyper-hypercube: log_(k+1) n rounds") {
    CHECK(base(8, 1).period() == 3);
    CHECK(base(16, 1).summary().rounds_to_exact_average == 4);
    CHECK(base(9, 2).period() == 2);
    CHECK(base(27, 2).summary().rounds_to_exact_average == 3);
    // A ring is not finite-time: its figures stay those of a contraction.
    GenOptions o;
    o.nodes = 6;
    CHECK(generate_topology("ring", o).summary().rounds_to_exact_average == 0);
  }

  TEST_CASE("a periodic file round-trips, and its rounds are checked like edges") {
    const Topology t = base(7, 2);
    const nlohmann::json j = t.to_json();
    REQUIRE(j.contains("rounds"));
    const Topology again = parse_topology_json(j, "again");
    CHECK(again.period() == t.period());
    for (int r = 0; r < t.period(); ++r)
      CHECK((dense(again.mixing(r)) - dense(t.mixing(r))).cwiseAbs().maxCoeff() == 0.0);
    CHECK(again.summary().slem == 0.0);

    nlohmann::json bad = j;
    bad["rounds"][0].push_back({{"from", 0}, {"to", 0}, {"weight", 0.5}});
    CHECK_THROWS_WITH_AS(parse_topology_json(bad, "b.json"),
                         doctest::Contains("round 0: edge [0, 0]"), TopologyError);
    bad = j;
    bad["rounds"][1][0]["weight"] = 1.5;
    CHECK_THROWS_WITH_AS(parse_topology_json(bad, "b.json"), doctest::Contains("round 1: edge"),
                         TopologyError);
    bad = j;
    bad["edges"] = nlohmann::json::array({{0, 1}});
    CHECK_THROWS_WITH_AS(parse_topology_json(bad, "b.json"),
                         doctest::Contains("must be the union of its rounds"), TopologyError);
    bad = j;
    bad["mixing"] = "metropolis";
    CHECK_THROWS_AS(parse_topology_json(bad, "b.json"), TopologyError);
    bad = j;
    bad.erase("rounds");
    CHECK_THROWS_WITH_AS(parse_topology_json(bad, "b.json"), doctest::Contains("needs \"rounds\""),
                         TopologyError);
  }
}
