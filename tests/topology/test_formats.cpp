// Plain topology files: the format named, taken from the extension or guessed (with a
// warning), and what decentralizepy accepts (repeated edges, one-sided neighbours) read with
// warnings rather than refused.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>

#include "rumor/common/error.hpp"
#include "rumor/topology/topology.hpp"

using namespace rumor;

namespace {

struct Read {
  Topology topology;
  std::vector<std::string> warnings;
};

Read read(const std::string& text, const std::string& source, const std::string& format = "auto") {
  std::vector<std::string> warnings;
  TopologyReadOptions o;
  o.format = format;
  o.warnings = &warnings;
  Topology t = parse_topology_plain(text, source, o);
  return {std::move(t), std::move(warnings)};
}

bool any_has(const std::vector<std::string>& lines, const std::string& part) {
  for (const auto& l : lines)
    if (l.find(part) != std::string::npos) return true;
  return false;
}

std::string error_of(const std::string& text, const std::string& source,
                     const std::string& format = "auto") {
  try {
    read(text, source, format);
  } catch (const TopologyError& e) {
    return e.what();
  }
  FAIL("no TopologyError for " << source);
  return {};
}

// A 4-node ring as an edge list whose lines could also be read as an adjacency list (n lines
// of two ids, no line i naming i): as adjacency it is the complete graph.
const char* kRingEdges = "4\n1 2\n2 3\n3 0\n0 1\n";

}  // namespace

TEST_SUITE("topology") {
  TEST_CASE("a plain edge list without the .edges extension is read as edges, with a warning") {
    const auto r = read(kRingEdges, "ring.txt");
    CHECK(r.topology.summary().edges == 4);
    CHECK(r.topology.summary().degree_max == 2);
    REQUIRE(r.warnings.size() == 1);
    CHECK(any_has(r.warnings, "ring.txt: format guessed: read as an edge list"));
    CHECK(any_has(r.warnings, "--format edges|adj"));
  }

  TEST_CASE("the same ring read as an adjacency list is the complete graph, and says so") {
    const auto r = read(kRingEdges, "ring.txt", "adj");
    CHECK(r.topology.summary().edges == 6);
    CHECK_FALSE(any_has(r.warnings, "format guessed"));
    // Node 1 names 2, but node 2 names 3 and 0.
    CHECK(any_has(r.warnings, "ring.txt:3: node 1 names neighbour 2 but the line of node 2"));
  }

  TEST_CASE("a named format or a known extension is not guessed") {
    CHECK(read(kRingEdges, "ring.txt", "edges").warnings.empty());
    CHECK(read(kRingEdges, "ring.edges").warnings.empty());
    const auto adj = read("4\n1 3\n0 2\n1 3\n2 0\n", "ring.adj");
    CHECK(adj.warnings.empty());
    CHECK(adj.topology.summary().edges == 4);
  }

  TEST_CASE("a symmetric adjacency list is guessed as one, with a warning") {
    const auto r = read("4\n1 3\n0 2\n1 3\n2 0\n", "ring.txt");
    CHECK(r.topology.summary().edges == 4);
    CHECK(r.topology.out_neighbors(0) == std::vector<int>{1, 3});
    REQUIRE(r.warnings.size() == 1);
    CHECK(any_has(r.warnings, "format guessed: read as an adjacency list"));
    // Lines of other lengths cannot be an edge list.
    CHECK(any_has(read("3\n1 2\n0\n0\n", "star.txt").warnings, "format guessed"));
  }

  TEST_CASE("a repeated edge is a warning with both lines, and kept once") {
    const auto r = read("3\n0 1\n1 2\n0 1\n2 1\n", "dup.edges");
    CHECK(r.topology.summary().edges == 2);
    REQUIRE(r.warnings.size() == 2);
    CHECK(any_has(r.warnings, "dup.edges:4: repeated edge 0 1 (first at line 2)"));
    CHECK(any_has(r.warnings, "dup.edges:5: repeated edge 2 1 (first at line 3)"));
    const auto a = read("3\n1 1 2\n0\n0\n", "dup.adj");
    CHECK(a.topology.summary().edges == 2);
    CHECK(any_has(a.warnings, "dup.adj:2: neighbour 1 repeated on the line of node 0"));
  }

  TEST_CASE("warnings of one kind are capped, with a count of the rest") {
    std::string text = "100\n";
    for (int i = 0; i < 100; ++i) text += std::to_string((i + 1) % 100) + "\n";  // one-sided
    const auto r = read(text, "cycle.adj");
    CHECK(r.topology.summary().edges == 100);
    CHECK(r.warnings.size() == 6);
    CHECK(any_has(r.warnings, "cycle.adj: 95 more one-sided warnings"));
  }

  TEST_CASE("bad formats and bad lines name the file and the line") {
    CHECK(error_of(kRingEdges, "r.txt", "json").find("--format edges") != std::string::npos);
    CHECK(error_of(kRingEdges, "r.txt", "csv").find("unknown topology format \"csv\"") !=
          std::string::npos);
    CHECK(error_of("3\n1 2\n0 7\n", "bad.adj").find("bad.adj:3: unknown node id 7") !=
          std::string::npos);
    CHECK(error_of("3\n0 1 2\n", "bad.edges", "edges").find("bad.edges:2: expected an edge") !=
          std::string::npos);
    CHECK(error_of("2\n1\n0\n0\n", "long.adj").find("long.adj:4: adjacency list has more lines") !=
          std::string::npos);
  }

  TEST_CASE("load_topology takes the format from its options") {
    const auto path = std::filesystem::temp_directory_path() / "rumor_topo_format_ring.txt";
    std::ofstream(path) << kRingEdges;
    std::vector<std::string> warnings;
    TopologyReadOptions o;
    o.warnings = &warnings;
    o.format = "adj";
    CHECK(load_topology(path.string(), o).summary().edges == 6);
    o.format = "edges";
    CHECK(load_topology(path.string(), o).summary().edges == 4);
    o.format = "json";
    CHECK_THROWS_AS(load_topology(path.string(), o), TopologyError);
  }
}
