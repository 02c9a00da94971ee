// Elastic membership over TCP on loopback: standby peers join a running run, a peer leaves
// gracefully, and no push-sum weight is lost on the way. Scripted rounds: the join and leave
// rounds are fixed whatever the machine's speed (neighbours hold for a joiner at its round, a
// leaver announces its leave a round ahead).
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>

#include <nlohmann/json.hpp>

#include "cli/cli_run.hpp"

namespace {

using cli_test::rumor;
using cli_test::scratch;
using nlohmann::json;

// A ring of 4 running peers; standby 4 between 0 and 2, standby 5 between 1 and 3.
std::string membership_config(const std::filesystem::path& dir, const std::string& method) {
  json nodes = json::array();
  for (int i = 0; i < 6; ++i) nodes.push_back({{"id", i}});
  nodes[4]["standby"] = true;
  nodes[5]["standby"] = true;
  const json topology = {
      {"name", "ring4-standby2"},
      {"nodes", nodes},
      {"edges", json::array({{0, 1}, {1, 2}, {2, 3}, {3, 0}, {4, 0}, {4, 2}, {5, 1}, {5, 3}})}};
  std::ofstream(dir / "ring4-standby2.json") << topology.dump(2);
  const json cfg = {
      {"name", "membership"},
      {"topology", (dir / "ring4-standby2.json").string()},
      {"method", {{"name", method}}},
      {"model", {{"name", "logreg"}}},
      {"data", {{"dataset", "blobs"}, {"train_size", 800}, {"test_size", 200}}},
      {"rounds", 60},
      {"eval", {{"every", 20}}},
      {"on_peer_failure", "continue"},
      {"network", {{"connect_timeout_s", 30}, {"round_timeout_s", 30}}},
      {"faults",
       {{"join", json::array({{{"node", 4}, {"round", 15}}, {{"node", 5}, {"round", 25}}})},
        {"leave", json::array({{{"node", 1}, {"round", 40}}})}}},
      {"output", {{"dir", (dir / "runs").string()}}}};
  const auto path = dir / "membership.json";
  std::ofstream(path) << cfg.dump(2);
  return path.string();
}

}  // namespace

TEST_SUITE("cli") {
  TEST_CASE("launch: standby peers join, a peer leaves gracefully, no push-sum weight is lost") {
    const auto dir = scratch("membership");
    const auto r = rumor("launch " + membership_config(dir, "sgp") + " --no-progress");
    INFO(r.out);
    REQUIRE(r.code == 0);
    CHECK(r.out.find("started standby peer 4") != std::string::npos);
    const auto run = cli_test::only_run(dir / "runs");
    const auto lines = cli_test::node_lines(run, 6);
    // Who ran which rounds: the joiners from their round, the leaver up to its round.
    CHECK(lines[4].front()["round"] == 15);
    CHECK(lines[5].front()["round"] == 25);
    CHECK(lines[1].back()["round"] == 39);
    for (int i : {0, 2, 3, 4, 5}) CHECK(lines[i].back()["round"] == 59);
    // Every round, the weights of the nodes that ran it sum to the 4 nodes started.
    cli_test::check_weight_kept(lines, 60, 4.0);
    // A graceful leave is planned: the run is complete, and the summary says who left.
    const json summary = json::parse(std::ifstream(run / "summary.json"));
    CHECK(summary["complete"] == true);
    CHECK(summary["nodes_left"] == 1);
    bool left = false;
    for (const auto& m : summary["membership"])
      left = left || (m["node"] == 1 && m["out"] == "left" && m["from_round"] == 40);
    CHECK(left);
  }
}
