// Peer sampling over TCP: data links open when the schedule first pairs two nodes, not as a
// full mesh at start.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "cli/cli_run.hpp"
#include "rumor/topology/topology.hpp"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

json read_json(const fs::path& p) {
  std::ifstream in(p);
  REQUIRE_MESSAGE(in.good(), "cannot read " << p);
  return json::parse(in);
}

}  // namespace

TEST_SUITE("cli") {
  TEST_CASE("peer sampling over TCP opens the links the schedule draws, and only those") {
    const int n = 8, rounds = 2;
    const auto dir = cli_test::scratch("ps-links");
    const auto r = cli_test::rumor(
        "launch " + cli_test::small_config(dir) +
        " --no-progress --set method.name=sgp --set topology.nodes=8 --set rounds=2"
        " --set eval.every=2 --set topology.schedule=peer-sampling --set topology.fanout=1");
    INFO(r.out);
    REQUIRE(r.code == 0);
    const auto run_dir = cli_test::only_run(dir / "runs");
    const auto topo =
        rumor::parse_topology_json(read_json(run_dir / "config.json")["topology"], "config.json");
    REQUIRE(topo.size() == n);
    // The pairs the schedule uses in the run's rounds, whichever end draws the other.
    std::set<std::pair<int, int>> pairs;
    std::vector<std::set<int>> mine(n);
    for (int round = 0; round < rounds; ++round)
      for (int i = 0; i < n; ++i)
        for (int j : topo.out_neighbors(i, round)) {
          pairs.insert({std::min(i, j), std::max(i, j)});
          mine[i].insert(j);
          mine[j].insert(i);
        }
    // Two rounds of one draw per node cannot pair every node with every other.
    REQUIRE(pairs.size() < static_cast<std::size_t>(n * (n - 1) / 2));
    for (int i = 0; i < n; ++i) {
      CAPTURE(i);
      const auto end = read_json(run_dir / ("node-" + std::to_string(i) + ".end.json"));
      CHECK(end.at("data_links").get<std::size_t>() == mine[i].size());
    }
    CHECK(read_json(run_dir / "summary.json").at("data_links_opened").get<std::size_t>() ==
          pairs.size());
  }
}
