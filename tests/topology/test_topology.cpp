#include <doctest/doctest.h>

#include <Eigen/Dense>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <numbers>

#include <nlohmann/json.hpp>

#include "rumor/topology/generators.hpp"
#include "rumor/topology/topology.hpp"

using namespace rumor;

namespace {

Topology gen(const std::string& kind, int n) {
  GenOptions o;
  o.nodes = n;
  return generate_topology(kind, o);
}

void check_stochastic(const Topology& t, std::int64_t round) {
  const auto w = t.mixing(round);
  const int n = t.size();
  for (int i = 0; i < n; ++i) {
    double col = 0, row = 0;
    for (int j = 0; j < n; ++j) {
      REQUIRE(w(j, i) >= 0.0);
      col += w(j, i);
      row += w(i, j);
      // Only links of this round carry weight.
      if (j != i && w(j, i) > 0) {
        const auto outs = t.out_neighbors(i, round);
        REQUIRE(std::find(outs.begin(), outs.end(), j) != outs.end());
      }
    }
    REQUIRE(col == doctest::Approx(1.0).epsilon(1e-12));
    for (int j = 0; j < n; ++j) REQUIRE(t.weight(j, i, round) == doctest::Approx(w(j, i)));
    if (!t.directed()) {
      REQUIRE(row == doctest::Approx(1.0).epsilon(1e-12));
      for (int j = 0; j < n; ++j) REQUIRE(w(i, j) == w(j, i));
    }
  }
}

}  // namespace

TEST_SUITE("topology") {
  TEST_CASE("mixing matrices are stochastic, non-negative, symmetric when undirected") {
    for (const auto& g : topology_generators()) {
      CAPTURE(g.name);
      GenOptions o;
      o.nodes = g.name == "social" ? 32 : 16;
      const Topology t = g.make(o);
      for (int r = 0; r < t.period() + 1; ++r) check_stochastic(t, r);
    }
  }

  TEST_CASE("metropolis weights: ring 1/3, torus 1/5, star 1/n") {
    const auto ring = gen("ring", 8).mixing();
    CHECK(ring(0, 1) == doctest::Approx(1.0 / 3));
    CHECK(ring(0, 0) == doctest::Approx(1.0 / 3));
    CHECK(ring(0, 2) == 0.0);
    const auto torus = gen("torus", 16).mixing();
    CHECK(torus(5, 5) == doctest::Approx(1.0 / 5));
    const auto star = gen("star", 5).mixing();
    CHECK(star(0, 1) == doctest::Approx(1.0 / 5));  // 1 / (1 + max(4, 1))
    CHECK(star(1, 1) == doctest::Approx(4.0 / 5));
  }

  TEST_CASE("uniform mixing for push-sum: keep half, send half in the one-peer graph") {
    const auto t = gen("exponential", 8);
    const auto w = t.mixing(1);  // hop 2
    CHECK(w(0, 0) == doctest::Approx(0.5));
    CHECK(w(2, 0) == doctest::Approx(0.5));
    CHECK(w(1, 0) == 0.0);
  }

  TEST_CASE("spectral gap of a ring matches the closed form") {
    for (int n : {5, 8, 16}) {
      const double expected = 1.0 - (1.0 + 2.0 * std::cos(2.0 * std::numbers::pi / n)) / 3.0;
      CHECK(gen("ring", n).summary().spectral_gap == doctest::Approx(expected).epsilon(1e-10));
    }
    CHECK(gen("complete", 8).summary().spectral_gap == doctest::Approx(1.0));
  }

  TEST_CASE("time-varying spectral gap comes from the product over one period") {
    // For n a power of two the one-peer exponential graph averages exactly in one period.
    CHECK(gen("exponential", 16).summary().slem < 1e-3);
    // Other n: compare with the product computed here.
    const auto t = gen("exponential", 12);
    Eigen::MatrixXd p = Eigen::MatrixXd::Identity(12, 12);
    for (int r = 0; r < t.period(); ++r) {
      Eigen::MatrixXd w(12, 12);
      const auto m = t.mixing(r);
      for (int j = 0; j < 12; ++j)
        for (int i = 0; i < 12; ++i) w(j, i) = m(j, i);
      p = w * p;
    }
    Eigen::EigenSolver<Eigen::MatrixXd> es(p, false);
    std::vector<double> mod;
    for (const auto& v : es.eigenvalues()) mod.push_back(std::abs(v));
    std::sort(mod.rbegin(), mod.rend());
    CHECK(mod[0] == doctest::Approx(1.0));
    CHECK(t.summary().slem == doctest::Approx(std::pow(mod[1], 1.0 / t.period())));
    CHECK(t.summary().slem > 0.01);
  }

  TEST_CASE("social32 file: figures and an independent Metropolis-Hastings spectral gap") {
    const std::string path = std::string(RUMOR_SOURCE_DIR) + "/topologies/social32.json";
    const Topology t = load_topology(path);
    const auto s = t.summary();
    CHECK(s.nodes == 32);
    CHECK(s.edges == 89);
    CHECK(s.connected);
    CHECK(s.diameter == 4);
    // Independent: build W from the edge list alone and solve with Eigen's symmetric solver.
    std::vector<std::pair<int, int>> edges;
    for (const auto& e : t.edges()) edges.push_back({e.from, e.to});
    REQUIRE(edges.size() == 89);
    std::vector<int> deg(32, 0);
    for (auto [u, v] : edges) ++deg[u], ++deg[v];
    Eigen::MatrixXd w = Eigen::MatrixXd::Zero(32, 32);
    for (auto [u, v] : edges) w(u, v) = w(v, u) = 1.0 / (1 + std::max(deg[u], deg[v]));
    for (int i = 0; i < 32; ++i) w(i, i) = 1.0 - w.row(i).sum();
    Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es(w);
    std::vector<double> mod;
    for (double v : es.eigenvalues()) mod.push_back(std::abs(v));
    std::sort(mod.rbegin(), mod.rend());
    CHECK(s.spectral_gap == doctest::Approx(1.0 - mod[1]).epsilon(1e-9));
  }

  TEST_CASE("every shipped topology passes check") {
    int count = 0;
    for (const auto& entry :
         std::filesystem::directory_iterator(std::string(RUMOR_SOURCE_DIR) + "/topologies")) {
      if (entry.path().extension() != ".json") continue;
      CAPTURE(entry.path().string());
      const Topology t = load_topology(entry.path().string());
      CHECK(t.summary().connected);
      ++count;
    }
    CHECK(count >= 6);
  }

  TEST_CASE("JSON round trip keeps nodes, edges, ports and schedule") {
    for (const auto& g : topology_generators()) {
      CAPTURE(g.name);
      GenOptions o;
      o.nodes = g.name == "social" ? 32 : 9;
      o.base_port = 31000;
      o.host = "127.0.0.2";
      const Topology a = g.make(o);
      const Topology b = parse_topology_json(a.to_json().dump(), "roundtrip.json");
      CHECK(a.to_json() == b.to_json());
      CHECK(b.node(3).port == 31003);
      CHECK(b.node(3).host == "127.0.0.2");
      CHECK(b.ports_explicit());
    }
    const auto dir = std::filesystem::temp_directory_path() / "rumor_topo_rt";
    std::filesystem::create_directories(dir);
    const auto path = (dir / "x.json").string();
    save_topology(gen("torus", 9), path);
    const Topology c = load_topology(path);
    CHECK(c.to_json() == gen("torus", 9).to_json());
    CHECK_FALSE(c.ports_explicit());
    CHECK(c.node(4).port == 29504);
  }

  TEST_CASE("explicit weights set W[to][from], self weight is the remainder") {
    const std::string text = R"({"directed": true, "mixing": "explicit",
      "nodes": [{"id": 0}, {"id": 1}, {"id": 2}],
      "edges": [{"from": 0, "to": 1, "weight": 0.25}, {"from": 1, "to": 2, "weight": 0.5},
                {"from": 2, "to": 0, "weight": 0.75}]})";
    const Topology t = parse_topology_json(text, "w.json");
    const auto w = t.mixing();
    CHECK(w(1, 0) == 0.25);
    CHECK(w(0, 0) == 0.75);
    CHECK(w(2, 2) == 0.25);
    check_stochastic(t, 0);
  }

  TEST_CASE("plain edge-list and adjacency-list formats") {
    const Topology e = parse_topology_plain("4\n0 1\n1 2\n2 3\n3 0\n", "ring.edges");
    CHECK(e.summary().edges == 4);
    CHECK(e.out_neighbors(0) == std::vector<int>{1, 3});
    // Adjacency lists name each edge from both ends.
    const Topology a = parse_topology_plain("4\n1 3\n0 2\n1 3\n2 0\n", "ring.txt");
    CHECK(a.summary().edges == 4);
    for (int i = 0; i < 4; ++i) CHECK(a.out_neighbors(i) == e.out_neighbors(i));
    // Auto-detection: an edge list whose i-th line names i.
    const Topology d = parse_topology_plain("3\n0 1\n1 2\n", "tri.txt");
    CHECK(d.summary().edges == 2);
    // The social graph written as decentralizepy's edge list reads back the same.
    std::string text = "32\n";
    const Topology social = gen("social", 32);
    for (const auto& edge : social.edges())
      text += std::to_string(edge.from) + " " + std::to_string(edge.to) + "\n";
    const Topology s = parse_topology_plain(text, "davis_southern_women.edges");
    CHECK(s.summary().edges == 89);
    CHECK(s.summary().diameter == 4);
  }

  TEST_CASE("control ring and data peers") {
    const auto t = gen("exponential", 8);
    CHECK(t.control_peers(0) == std::vector<int>{1, 7});
    // Peers over a period: out 1, 2, 4 and in 7, 6, 4.
    CHECK(t.peers(0) == std::vector<int>{1, 2, 4, 6, 7});
    CHECK(gen("ring", 2).control_peers(0) == std::vector<int>{1});
  }
}
