// Asynchronous gossip (adpsgd) end to end: over TCP (no deadlock, every exchange served),
// in-process (deterministic in simulated time), and resumed from checkpoints.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/cli_run.hpp"

namespace {

namespace fs = std::filesystem;
using cli_test::node_lines;
using cli_test::only_run;
using cli_test::rumor;
using cli_test::scratch;
using cli_test::small_config;
using nlohmann::json;

const std::string kAsync =
    " --no-progress --set method.name=adpsgd --set topology.gen=ring --set topology.nodes=8";

// Every node wrote one line per step, in order; the last one has the exact average; every
// exchange a node made was served by a neighbour (over TCP: none lost or doubled). Not after
// a resume: nodes restart from checkpoints taken at different times, with their counters.
void check_complete(const fs::path& run_dir, int n, int steps, bool resumed = false) {
  const auto lines = node_lines(run_dir, n);
  std::uint64_t made = 0, served = 0;
  for (int i = 0; i < n; ++i) {
    CAPTURE(i);
    REQUIRE(lines[i].size() == static_cast<std::size_t>(steps));
    for (int k = 0; k < steps; ++k) CHECK(lines[i][k]["round"] == k);
    CHECK(lines[i].back().contains("consensus_dist"));
    made += lines[i].back()["pair_exchanges"].get<std::uint64_t>();
    served += lines[i].back()["pair_served"].get<std::uint64_t>();
  }
  // Not per node: over TCP a node whose neighbours are always mid-exchange when it asks gets
  // "busy" every time, which asynchrony allows.
  CHECK(made > 0);
  if (!resumed) CHECK(made == served);
  json s;
  std::ifstream(run_dir / "summary.json") >> s;
  CHECK(s["complete"] == true);
  CHECK(s["final"]["test_acc_mean"].get<double>() > 0.5);  // nodes alone (local): 0.39
}

}  // namespace

TEST_SUITE("cli") {
  TEST_CASE("adpsgd over TCP: three 8-node runs end without deadlock, every exchange served") {
    for (int run = 0; run < 3; ++run) {
      CAPTURE(run);
      const auto dir = scratch("adpsgd-tcp-" + std::to_string(run));
      // A straggler in one run: its neighbours ask it while it computes.
      const std::string slow = run == 2 ? " --set 'faults.slow_nodes=[3]'" : "";
      const auto r = rumor("launch " + small_config(dir) + kAsync + slow);
      INFO(r.out);
      REQUIRE(r.code == 0);
      check_complete(only_run(dir / "runs"), 8, 40);
    }
  }

  TEST_CASE("adpsgd in-process: simulated time, deterministic for a seed") {
    std::vector<std::vector<std::vector<json>>> runs;
    for (const char* name : {"adpsgd-sim-a", "adpsgd-sim-b"}) {
      const auto dir = scratch(name);
      const auto r = rumor("launch " + small_config(dir) + kAsync +
                           " --inprocess --set 'faults.slow_nodes=[0]' --set links.latency_s=0.01");
      INFO(r.out);
      REQUIRE(r.code == 0);
      const auto run_dir = only_run(dir / "runs");
      check_complete(run_dir, 8, 40);
      runs.push_back(node_lines(run_dir, 8));
    }
    CHECK(runs[0] == runs[1]);
    // The straggler (4x) finishes its 40 steps last; the others are not held to its pace.
    const auto& last = runs[0];
    const double slow = last[0].back()["sim_time_s"].get<double>();
    for (int i = 1; i < 8; ++i) CHECK(last[i].back()["sim_time_s"].get<double>() < slow);
  }

  TEST_CASE("adpsgd resumes each node from its own checkpoint (in-process and over TCP)") {
    for (const std::string flags : {" --inprocess", ""}) {
      CAPTURE(flags);
      const auto dir = scratch("adpsgd-resume" + std::string(flags.empty() ? "-tcp" : "-sim"));
      const std::string sets = kAsync + flags + " --set checkpoint.every=10";
      REQUIRE(rumor("launch " + small_config(dir) + sets).code == 0);
      const auto run_dir = only_run(dir / "runs");
      for (const char* f : {"summary.json", "summary.csv", "model.pt"}) fs::remove(run_dir / f);
      // Node 5 lost its newest checkpoint, node 2 its older one: no round is common to all
      // nodes, and each resumes from its own newest.
      REQUIRE(fs::remove(run_dir / "checkpoints" / "node-5-r29.ckpt"));
      REQUIRE(fs::remove(run_dir / "checkpoints" / "node-2-r19.ckpt"));
      const auto again = rumor("launch --resume " + run_dir.string() + " --no-progress" + flags);
      INFO(again.out);
      REQUIRE(again.code == 0);
      check_complete(run_dir, 8, 40, true);
      for (const auto& [node, from] : {std::pair{5, 20}, std::pair{2, 30}}) {
        std::ifstream log(run_dir / ("node-" + std::to_string(node) + ".log"));
        const std::string text((std::istreambuf_iterator<char>(log)), {});
        CHECK(text.find("resumed from the checkpoint of round " + std::to_string(from)) !=
              std::string::npos);
      }
    }
  }

  TEST_CASE("adpsgd refuses what it cannot do, before it starts") {
    const auto dir = scratch("adpsgd-refuse");
    const auto lossy =
        rumor("launch " + small_config(dir) + kAsync + " --inprocess --set links.loss=0.1");
    CHECK(lossy.code != 0);
    CHECK(lossy.out.find("links.loss") != std::string::npos);
    const auto codec =
        rumor("launch " + small_config(dir) + kAsync + " --set codec=fp16 --dry-run");
    CHECK(codec.code != 0);
    CHECK(codec.out.find("set codec to fp32") != std::string::npos);
  }
}
