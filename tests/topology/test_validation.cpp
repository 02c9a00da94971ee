#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "rumor/common/error.hpp"
#include "rumor/topology/topology.hpp"

using namespace rumor;

namespace {

// Writes `text` to a fresh file and returns the message load_topology throws for it.
std::string error_for(const std::string& name, const std::string& text) {
  const auto dir = std::filesystem::temp_directory_path() / "rumor_topo_validation";
  std::filesystem::create_directories(dir);
  const std::string path = (dir / name).string();
  std::ofstream(path) << text;
  try {
    load_topology(path);
  } catch (const TopologyError& e) {
    return e.what();
  }
  FAIL("no TopologyError for " << name);
  return {};
}

bool has(const std::string& message, const std::string& part) {
  return message.find(part) != std::string::npos;
}

}  // namespace

TEST_SUITE("topology") {
  TEST_CASE("standby nodes: read, kept through the JSON form, and a bad value is refused") {
    const auto t = parse_topology_json(
        std::string(
            R"({"nodes": [{"id": 0}, {"id": 1, "standby": true}, {"id": 2, "standby": false}],
            "edges": [[0, 1], [1, 2], [2, 0]]})"),
        "standby.json");
    CHECK_FALSE(t.standby(0));
    CHECK(t.standby(1));
    CHECK_FALSE(t.standby(2));
    const auto again = parse_topology_json(t.to_json(), "again");
    CHECK(again.standby(1));
    CHECK_FALSE(again.standby(2));
    const auto m = error_for("standby-bad.json", R"({
  "nodes": [{"id": 0},
            {"id": 1, "standby": "yes"}],
  "edges": [[0, 1]]
})");
    CHECK(has(m, "standby-bad.json:3"));
    CHECK(has(m, "\"standby\" must be true or false"));
  }

  TEST_CASE("unknown node id in an edge") {
    const auto m = error_for("unknown.json", R"({
  "nodes": [{"id": 0}, {"id": 1}, {"id": 2}],
  "edges": [[0, 1],
            [1, 7],
            [2, 0]]
})");
    CHECK(has(m, "unknown.json:4"));
    CHECK(has(m, "unknown node id 7"));
  }

  TEST_CASE("duplicate node id") {
    const auto m = error_for("dupnode.json", R"({
  "nodes": [{"id": 0},
            {"id": 1},
            {"id": 1}],
  "edges": [[0, 1]]
})");
    CHECK(has(m, "dupnode.json:4"));
    CHECK(has(m, "duplicate node id 1"));
  }

  TEST_CASE("node ids must be 0..n-1") {
    const auto m = error_for("gap.json", R"({"nodes": [{"id": 0}, {"id": 5}], "edges": [[0, 5]]})");
    CHECK(has(m, "gap.json"));
    CHECK(has(m, "node id 5 is out of range"));
  }

  TEST_CASE("duplicate edge, also reversed in an undirected graph") {
    const auto m = error_for("dupedge.json", R"({
  "nodes": [{"id": 0}, {"id": 1}, {"id": 2}],
  "edges": [
    [0, 1],
    [1, 2],
    [1, 0]
  ]
})");
    CHECK(has(m, "dupedge.json:6"));
    CHECK(has(m, "duplicate edge [0, 1]"));
    CHECK(has(m, "first at"));
    // Plain files repeat edges with a warning instead (test_formats.cpp).
  }

  TEST_CASE("self-loop") {
    const auto m = error_for("loop.json", R"({"nodes": [{"id": 0}, {"id": 1}],
  "edges": [[0, 1], [1, 1]]})");
    CHECK(has(m, "loop.json:2"));
    CHECK(has(m, "self-loop"));
    const auto p = error_for("loop.edges", "2\n0 1\n1 1\n");
    CHECK(has(p, "loop.edges:3"));
    CHECK(has(p, "self-loop"));
  }

  TEST_CASE("weight out of range") {
    const auto m = error_for("range.json", R"({"directed": true, "mixing": "explicit",
  "nodes": [{"id": 0}, {"id": 1}],
  "edges": [{"from": 0, "to": 1, "weight": 0.5},
            {"from": 1, "to": 0, "weight": 1.5}]})");
    CHECK(has(m, "range.json:4"));
    CHECK(has(m, "weight 1.5 out of range"));
    const auto z = error_for("zero.json", R"({"directed": true, "mixing": "explicit",
  "nodes": [{"id": 0}, {"id": 1}],
  "edges": [{"from": 0, "to": 1, "weight": 0}, {"from": 1, "to": 0, "weight": 0.5}]})");
    CHECK(has(z, "out of range"));
  }

  TEST_CASE("weights of a node not summing to one") {
    const auto m = error_for("sum.json", R"({"directed": true, "mixing": "explicit",
  "nodes": [{"id": 0}, {"id": 1}, {"id": 2}],
  "edges": [{"from": 0, "to": 1, "weight": 0.7}, {"from": 0, "to": 2, "weight": 0.6},
            {"from": 1, "to": 2, "weight": 0.5}, {"from": 2, "to": 0, "weight": 0.5}]})");
    CHECK(has(m, "sum.json"));
    CHECK(has(m, "weights of node 0 do not sum to one"));
    CHECK(has(m, "1.3"));
  }

  TEST_CASE("graph not connected: components and their sizes") {
    const auto m = error_for("split.json", R"({"nodes": [0, 1, 2, 3, 4],
  "edges": [[0, 1], [1, 2], [3, 4]]})");
    CHECK(has(m, "split.json"));
    CHECK(has(m, "not connected"));
    CHECK(has(m, "2 components of sizes 3, 2"));
    // Directed graphs must be strongly connected.
    const auto d = error_for("oneway.json", R"({"directed": true, "nodes": [0, 1, 2],
  "edges": [[0, 1], [1, 2]]})");
    CHECK(has(d, "not connected (strongly)"));
    CHECK(has(d, "3 components"));
  }

  TEST_CASE("two nodes on the same host and port") {
    const auto m = error_for("clash.json", R"({"nodes": [
  {"id": 0, "host": "127.0.0.1", "port": 4000},
  {"id": 1, "host": "127.0.0.1", "port": 4000}],
  "edges": [[0, 1]]})");
    CHECK(has(m, "clash.json:3"));
    CHECK(has(m, "nodes 0 and 1 both use 127.0.0.1:4000"));
    // The same port on different hosts is fine.
    const auto dir = std::filesystem::temp_directory_path() / "rumor_topo_validation";
    std::ofstream(dir / "hosts.json") << R"({"nodes": [
  {"id": 0, "host": "127.0.0.1", "port": 4000}, {"id": 1, "host": "127.0.0.2", "port": 4000}],
  "edges": [[0, 1]]})";
    CHECK_NOTHROW(load_topology((dir / "hosts.json").string()));
  }

  TEST_CASE("JSON syntax errors name line and column") {
    const auto m = error_for("syntax.json", "{\n  \"nodes\": [{\"id\": 0},\n  {\"id\" 1}]\n}\n");
    CHECK(has(m, "syntax.json:3:"));
    CHECK(has(m, "JSON syntax error"));
  }

  TEST_CASE("unknown keys, wrong types, missing files and bad plain files") {
    CHECK(has(error_for("key.json", R"({"nodez": [0, 1], "nodes": [0, 1], "edges": [[0, 1]]})"),
              "did you mean \"nodes\""));
    CHECK(has(error_for("type.json", R"({"nodes": [{"id": "a"}], "edges": []})"),
              "must be an integer"));
    CHECK(has(error_for("metro.json", R"({"directed": true, "mixing": "metropolis",
      "nodes": [0, 1], "edges": [[0, 1], [1, 0]]})"),
              "metropolis' needs an undirected graph"));
    CHECK(has(error_for("big.edges", "3\n0 1\n1 9\n"), "big.edges:3: unknown node id 9"));
    CHECK(has(error_for("word.edges", "3\n0 x\n"), "word.edges:2: expected a node id"));
    CHECK(has(error_for("empty.edges", ""), "empty file"));
    try {
      load_topology("/nonexistent/t.json");
      FAIL("expected TopologyError");
    } catch (const TopologyError& e) {
      CHECK(has(e.what(), "/nonexistent/t.json"));
      CHECK(has(e.what(), "no such file"));
    }
  }
}
