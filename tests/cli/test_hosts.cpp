// Peers started one by one, as mpirun or srun start them on several hosts: on distinct
// loopback addresses (tools/run-hosts.sh), and in network namespaces of their own joined
// by veth pairs (tools/run-netns.sh, skipped where the machine cannot create them).
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cli/cli_run.hpp"

namespace {

namespace fs = std::filesystem;
using namespace cli_test;
using nlohmann::json;

std::string write_config(const fs::path& dir, const std::string& topology) {
  const auto path = dir / "hosts.json";
  std::ofstream(path) << R"({"name": "hosts", "topology": )" << topology << R"(,
    "method": {"name": "dpsgd"}, "model": {"name": "logreg"},
    "data": {"dataset": "blobs", "train_size": 800, "test_size": 200},
    "rounds": 20, "eval": {"every": 10}, "network": {"connect_timeout_s": 30, "round_timeout_s": 20},
    "output": {"dir": ")"
                      << (dir / "runs").string() << R"("}})";
  return path.string();
}

json read_json(const fs::path& p) {
  json j;
  std::ifstream(p) >> j;
  return j;
}

// A summary without what depends on where it was written and on wall-clock time.
json figures(json s) {
  for (const char* k :
       {"run_dir", "wall_time_s", "round_ms_median", "round_ms_mean", "peak_rss_mb_by_node"})
    s.erase(k);
  for (auto& point : s["curve"]) point.erase("time_s");
  return s;
}

std::string file_text(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

TEST_SUITE("cli") {
  TEST_CASE("nodes started one by one on 127.0.0.1 to 127.0.0.8 give the figures launch gives") {
    const auto dir = scratch("hosts");
    const auto cfg = write_config(dir, "\"" + src("topologies/ring8-hosts.json") + "\"");
    const int base = free_base_port(8, true);
    const auto r =
        shell("bash " + src("tools/run-hosts.sh") + " " + cfg + " --rumor " + rumor_path() +
              " --timeout 120 --set network.base_port=" + std::to_string(base));
    INFO(r.out);
    REQUIRE(r.code == 0);
    const auto independent = only_run(dir / "runs");
    CHECK(fs::exists(independent / "config.json"));
    for (int i = 0; i < 8; ++i) {
      // Each node listened on its own address.
      const std::string log = file_text(independent / ("node-" + std::to_string(i) + ".log"));
      CHECK(log.find(" on 127.0.0." + std::to_string(i + 1) + ":" + std::to_string(base + i)) !=
            std::string::npos);
    }
    const auto s = read_json(independent / "summary.json");
    CHECK(s["complete"] == true);
    CHECK(s["nodes_reporting"] == 8);

    // The same config through `rumor launch`, results elsewhere: same run id, same figures.
    const auto launched =
        rumor("launch " + cfg + " --no-progress --set output.dir=" + (dir / "launched").string());
    INFO(launched.out);
    REQUIRE(launched.code == 0);
    const auto other = only_run(dir / "launched");
    CHECK(other.filename() == independent.filename());
    CHECK(figures(read_json(other / "summary.json")) == figures(s));
  }

  TEST_CASE("nodes in network namespaces of their own, joined by veth pairs, complete a run") {
    const auto dir = scratch("netns");
    const json topology = {{"name", "ring4-netns"},
                           {"nodes",
                            {{{"id", 0}, {"host", "10.77.0.1"}},
                             {{"id", 1}, {"host", "10.77.0.2"}},
                             {{"id", 2}, {"host", "10.77.0.3"}},
                             {{"id", 3}, {"host", "10.77.0.4"}}}},
                           {"edges", {{0, 1}, {1, 2}, {2, 3}, {3, 0}}}};
    const auto cfg = write_config(dir, topology.dump());
    const auto r = shell("bash " + src("tools/run-netns.sh") + " " + cfg + " --rumor " +
                         rumor_path() + " --timeout 120");
    if (r.code == 77) {
      MESSAGE("skipped, this machine cannot create network namespaces: " << r.out);
      return;
    }
    INFO(r.out);
    REQUIRE(r.code == 0);
    const auto run = only_run(dir / "runs");
    for (int i = 0; i < 4; ++i) {
      const std::string log = file_text(run / ("node-" + std::to_string(i) + ".log"));
      CHECK(log.find(" on 10.77.0." + std::to_string(i + 1) + ":") != std::string::npos);
    }
    const auto s = read_json(run / "summary.json");
    CHECK(s["complete"] == true);
    CHECK(s["nodes_reporting"] == 4);
    // Where the peers run does not change what they compute: the in-process run agrees.
    const auto inproc = rumor("launch " + cfg + " --inprocess --no-progress --set output.dir=" +
                              (dir / "inprocess").string());
    INFO(inproc.out);
    REQUIRE(inproc.code == 0);
    CHECK(read_json(only_run(dir / "inprocess") / "summary.json")["final"] == s["final"]);
  }
}
