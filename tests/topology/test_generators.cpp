#include <doctest/doctest.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "rumor/common/error.hpp"
#include "rumor/topology/generators.hpp"

using namespace rumor;

namespace {
Topology gen(const std::string& kind, int n, std::uint64_t seed = 1) {
  GenOptions o;
  o.nodes = n;
  o.seed = seed;
  return generate_topology(kind, o);
}
}  // namespace

TEST_SUITE("topology") {
  TEST_CASE("ring: n edges, every degree 2, diameter n/2") {
    for (int n : {3, 8, 16, 33}) {
      const auto s = gen("ring", n).summary();
      CHECK(s.nodes == n);
      CHECK(s.edges == n);
      CHECK(s.degree_min == 2);
      CHECK(s.degree_max == 2);
      CHECK(s.connected);
      CHECK(s.diameter == n / 2);
    }
  }

  TEST_CASE("torus: 2n edges, degree 4, diameter rows/2 + cols/2") {
    const auto s = gen("torus", 16).summary();
    CHECK(s.edges == 32);
    CHECK(s.degree_min == 4);
    CHECK(s.degree_max == 4);
    CHECK(s.diameter == 4);
    GenOptions o;
    o.nodes = 12;
    const auto t = generate_topology("torus", o).summary();  // 3 x 4
    CHECK(t.edges == 24);
    CHECK(t.diameter == 1 + 2);
    o.nodes = 8;  // 2 x 4 is no 2-D torus
    CHECK_THROWS_AS(generate_topology("torus", o), TopologyError);
  }

  TEST_CASE("complete and star") {
    const auto c = gen("complete", 8).summary();
    CHECK(c.edges == 28);
    CHECK(c.degree_min == 7);
    CHECK(c.diameter == 1);
    const auto s = gen("star", 10).summary();
    CHECK(s.edges == 9);
    CHECK(s.degree_min == 1);
    CHECK(s.degree_max == 9);
    CHECK(s.diameter == 2);
  }

  TEST_CASE("exponential: one peer per round at hop 2^(t mod period)") {
    const auto t = gen("exponential", 16);
    CHECK(t.directed());
    CHECK(t.time_varying());
    CHECK(t.period() == 4);
    for (int r = 0; r < 8; ++r) {
      const int hop = 1 << (r % 4);
      for (int i = 0; i < 16; ++i) {
        REQUIRE(t.out_neighbors(i, r) == std::vector<int>{(i + hop) % 16});
        REQUIRE(t.in_neighbors(i, r) == std::vector<int>{(i - hop + 16) % 16});
      }
    }
    const auto s = t.summary();
    CHECK(s.edges == 64);  // union over the period: 4 out-edges per node
    CHECK(s.degree_min == 4);
    CHECK(s.connected);
    // A non power of two: n = 10 has hops 1, 2, 4, 8 (floor(log2 9) + 1 = 4).
    CHECK(gen("exponential", 10).period() == 4);
    CHECK(gen("exponential", 9).period() == 4);
    CHECK(gen("exponential", 5).period() == 3);
  }

  TEST_CASE("random generators: connected, right sizes, reproducible from the seed") {
    for (const std::string kind : {"erdos-renyi", "small-world", "barabasi-albert"}) {
      CAPTURE(kind);
      const auto a = gen(kind, 20, 5);
      const auto b = gen(kind, 20, 5);
      const auto c = gen(kind, 20, 6);
      CHECK(a.summary().connected);
      CHECK(a.size() == 20);
      CHECK(a.to_json() == b.to_json());
      CHECK(a.to_json() != c.to_json());
    }
    // Watts-Strogatz keeps the edge count n k / 2; Barabasi-Albert has m (n - m - 1) + m.
    CHECK(gen("small-world", 20).summary().edges == 40);
    CHECK(gen("small-world", 20).summary().degree_min >= 1);
    CHECK(gen("barabasi-albert", 20).summary().edges == 2 * (20 - 3) + 2);
    GenOptions o;
    o.nodes = 30;
    o.p = 0.5;
    const auto er = generate_topology("erdos-renyi", o).summary();
    // 435 possible edges at p = 0.5: mean 217.5, sd ~10.4; 6 sd bounds.
    CHECK(er.edges > 155);
    CHECK(er.edges < 280);
  }

  TEST_CASE("social: the Davis Southern Women graph") {
    GenOptions o;
    o.nodes = 32;
    const auto s = generate_topology("social", o).summary();
    CHECK(s.nodes == 32);
    CHECK(s.edges == 89);
    CHECK(s.connected);
    CHECK(s.diameter == 4);
    o.nodes = 10;
    CHECK_THROWS_AS(generate_topology("social", o), TopologyError);
  }

  TEST_CASE("unknown kinds are refused with the nearest name and the valid list") {
    try {
      gen("rign", 8);
      FAIL("expected TopologyError");
    } catch (const TopologyError& e) {
      const std::string m = e.what();
      CHECK(m.find("\"ring\"") != std::string::npos);
      CHECK(m.find("barabasi-albert") != std::string::npos);
    }
  }

  TEST_CASE("the registry: every generator's keys are known options, and options set fields") {
    std::vector<std::string> known;
    for (const auto& o : generator_options()) known.push_back(o.key);
    for (const auto& g : topology_generators()) {
      CAPTURE(g.name);
      CHECK(&find_generator(g.name) == &g);
      const auto keys = g.keys();
      CHECK(keys.at(0) == "nodes");
      for (const auto& k : keys) CHECK(std::find(known.begin(), known.end(), k) != known.end());
    }
    CHECK(find_generator("torus").options == std::vector<std::string>{"rows"});
    CHECK(find_generator("social").default_nodes == 32);
    GenOptions o;
    set_generator_option(o, "rows", 3);
    set_generator_option(o, "beta", 0.5);
    set_generator_option(o, "seed", 9);
    set_generator_option(o, "host", "10.0.0.1");
    set_generator_option(o, "base_port", 4000);
    CHECK(o.rows == 3);
    CHECK(o.beta == 0.5);
    CHECK(o.seed == 9u);
    CHECK(o.host == "10.0.0.1");
    CHECK(o.base_port == 4000);
    CHECK_THROWS_AS(set_generator_option(o, "rowz", 3), TopologyError);
    CHECK_THROWS_AS(set_generator_option(o, "rows", "three"), nlohmann::json::exception);
  }
}
