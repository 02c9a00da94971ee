// Bounded inputs: node and edge limits checked before anything is built, and figures whose
// cost stays linear in the edges on graphs far above the dense-eigenvalue size.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <numbers>
#include <string>

#include <nlohmann/json.hpp>

#include "rumor/common/error.hpp"
#include "rumor/topology/generators.hpp"
#include "rumor/topology/topology.hpp"

using namespace rumor;

namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const TopologyError& e) {
    return e.what();
  }
  FAIL("no TopologyError");
  return {};
}

bool has(const std::string& message, const std::string& part) {
  return message.find(part) != std::string::npos;
}

std::string ring_edges(int n) {
  std::string text = std::to_string(n) + "\n";
  for (int i = 0; i < n; ++i) text += std::to_string(i) + " " + std::to_string((i + 1) % n) + "\n";
  return text;
}

}  // namespace

TEST_SUITE("topology") {
  TEST_CASE("every generator refuses a billion nodes before building anything") {
    for (const auto& g : topology_generators()) {
      if (g.default_nodes > 0) continue;  // fixed size
      CAPTURE(g.name);
      GenOptions o;
      o.nodes = 1000000000;
      const auto m = error_of([&] { g.make(o); });
      CHECK(has(m, "topology gen " + g.name + ": 1000000000 nodes, above the limit of 100000"));
      CHECK(has(m, "max_nodes"));
    }
  }

  TEST_CASE("max_nodes moves the limit, dense kinds are refused by their edge count") {
    GenOptions o;
    o.nodes = 11;
    o.max_nodes = 10;
    CHECK_THROWS_AS(generate_topology("ring", o), TopologyError);
    o.nodes = 10;
    CHECK(generate_topology("ring", o).size() == 10);
    nlohmann::json j = 12;
    set_generator_option(o, "max_nodes", j);
    CHECK(o.max_nodes == 12);
    o = GenOptions{};
    o.nodes = 20000;  // 2e8 edges, above 100 x 100,000
    CHECK(has(error_of([&] { generate_topology("complete", o); }), "199990000 edges"));
    o.p = 0.9;
    CHECK(has(error_of([&] { generate_topology("erdos-renyi", o); }), "edges, above the limit"));
  }

  TEST_CASE("files above the limit are refused from their first line or their node list") {
    CHECK(has(error_of([] { parse_topology_plain("1000000000\n0 1\n", "huge.edges"); }),
              "huge.edges: 1000000000 nodes, above the limit of 100000"));
    TopologyReadOptions o;
    o.max_nodes = 3;
    CHECK(has(error_of([&] {
                parse_topology_json(std::string(R"({"nodes": [0, 1, 2, 3], "edges": [[0, 1]]})"),
                                    "four.json", o);
              }),
              "four.json: 4 nodes, above the limit of 3"));
    CHECK(parse_topology_plain(ring_edges(3), "r3.edges", o).size() == 3);
    // A count where a list belongs (--set topology.nodes=N on a file topology) says what to do.
    CHECK(has(error_of([] {
                parse_topology_json(nlohmann::json{{"nodes", 1000000000}}, "cfg (topology)");
              }),
              "\"nodes\" is a count (1000000000), not a list"));
  }

  TEST_CASE("a 100,000-node ring is read and checked without dense matrices") {
    const Topology t = parse_topology_plain(ring_edges(100000), "ring100k.edges");
    const auto s = t.summary();
    CHECK(s.nodes == 100000);
    CHECK(s.edges == 100000);
    CHECK(s.connected);
    CHECK(s.diameter == -1);  // skipped, with a lower bound in the note
    bool diameter_note = false, slem_note = false;
    for (const auto& n : s.notes) {
      diameter_note |= has(n, "diameter skipped") && has(n, "at least 50000");
      slem_note |= has(n, "Lanczos");
    }
    CHECK(diameter_note);
    CHECK(slem_note);
    // The ring's gap (2/3)(1 - cos(2 pi / n)) ~ 1.3e-9 is far below what 600 Lanczos steps
    // resolve: the figure is skipped rather than reported wrong.
    CHECK(s.slem_method == "skipped");
    CHECK(std::isnan(s.slem));
  }

  TEST_CASE("Lanczos on a 1,600-node torus gives the closed-form SLEM") {
    GenOptions o;
    o.nodes = 1600;  // 40 x 40, every degree 4: Metropolis weights 1/5
    const auto f = spectral_figures(generate_topology("torus", o));
    CHECK(f.method == "lanczos");
    // Eigenvalues 1/5 + (2/5)(cos(2 pi a / 40) + cos(2 pi b / 40)): the SLEM is a = 1, b = 0
    // (the most negative, a = b = 20, is -3/5).
    const double expected = 0.2 + 0.4 * (std::cos(2 * std::numbers::pi / 40) + 1.0);
    CHECK(f.slem == doctest::Approx(expected).epsilon(1e-6));
  }

  TEST_CASE("component sizes and strong connectivity in linear time") {
    const Topology path = parse_topology_plain(ring_edges(50000), "big.edges");
    CHECK(path.component_sizes() == std::vector<int>{50000});
    // A directed cycle is strongly connected; a directed path is not.
    const auto msg = error_of([] {
      parse_topology_json(
          std::string(R"({"directed": true, "nodes": [0, 1, 2], "edges": [[0, 1], [1, 2]]})"),
          "path.json");
    });
    CHECK(has(msg, "not connected (strongly): 3 components of sizes 1, 1, 1"));
    CHECK(parse_topology_json(
              std::string(
                  R"({"directed": true, "nodes": [0, 1, 2], "edges": [[0, 1], [1, 2], [2, 0]]})"),
              "cycle.json")
              .summary()
              .connected);
  }

  TEST_CASE("a JSON number beyond a double is refused as a topology error naming the file") {
    // Found by fuzz_topology_read: nlohmann's out_of_range escaped the reader.
    const auto msg =
        error_of([] { parse_topology_json(std::string("{\"nodes\": [1e712]}"), "big.json"); });
    CHECK(has(msg, "big.json"));
    CHECK(has(msg, "1e712"));
  }
}
