// The rumor executable as a user runs it: exit codes, --json output, messages.
#include <doctest/doctest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <numbers>

#include <nlohmann/json.hpp>

#include "cli/cli_run.hpp"

namespace {

using cli_test::rumor;
using cli_test::scratch;
using cli_test::small_config;
using cli_test::src;

}  // namespace

TEST_SUITE("cli") {
  TEST_CASE("--help lists every subcommand, --version prints the version") {
    const auto r = rumor("--help");
    CHECK(r.code == 0);
    for (const char* sub : {"topology", "data", "train", "node", "launch", "summarize", "compare",
                            "config", "bench"}) {
      // One line each, with an example.
      CHECK(r.out.find("\n  " + std::string(sub) + " ") != std::string::npos);
      CHECK(r.out.find("e.g. rumor " + std::string(sub)) != std::string::npos);
    }
    const auto v = rumor("--version");
    CHECK(v.code == 0);
    CHECK(v.out.find("rumor 0.") != std::string::npos);
  }

  TEST_CASE("topology gen ring 16 and check --json give the closed-form spectral gap") {
    const auto dir = scratch("ring16");
    const auto file = (dir / "r.json").string();
    REQUIRE(rumor("topology gen ring --nodes 16 -o " + file).code == 0);
    const auto r = rumor("topology check " + file + " --json --log-level off");
    REQUIRE(r.code == 0);
    const auto j = nlohmann::json::parse(r.out);
    const double expected = 1.0 - (1.0 + 2.0 * std::cos(2.0 * std::numbers::pi / 16)) / 3.0;
    CHECK(j["spectral_gap"].get<double>() == doctest::Approx(expected).epsilon(1e-12));
    CHECK(j["nodes"] == 16);
    for (const char* key :
         {"nodes", "edges", "directed", "schedule", "period", "connected", "degree_min",
          "degree_max", "diameter", "mixing", "slem", "spectral_gap"})
      CHECK(j.contains(key));
  }

  TEST_CASE("topology check reports the Base-(k+1) graph's finite-time exact average") {
    const auto dir = scratch("base");
    for (const auto& [n, k] :
         {std::pair{5, 1}, std::pair{6, 1}, std::pair{7, 2}, std::pair{12, 2}}) {
      CAPTURE(n);
      CAPTURE(k);
      const auto file = (dir / ("b" + std::to_string(n) + ".json")).string();
      REQUIRE(rumor("topology gen base --nodes " + std::to_string(n) + " --k " + std::to_string(k) +
                    " -o " + file)
                  .code == 0);
      const auto r = rumor("topology check " + file + " --json --log-level off");
      REQUIRE(r.code == 0);
      const auto j = nlohmann::json::parse(r.out);
      CHECK(j["schedule"] == "periodic");
      CHECK(j["slem"] == 0.0);
      CHECK(j["slem_method"] == "exact");
      CHECK(j["rounds_to_exact_average"].get<int>() > 0);
      CHECK(j["rounds_to_exact_average"].get<int>() <= j["period"].get<int>());
      CHECK(j["degree_max"].get<int>() >= 1);
      const auto text = rumor("topology check " + file);
      CHECK(text.out.find("exact average after") != std::string::npos);
    }
  }

  TEST_CASE("topology gen takes each kind's own options, from the generator registry") {
    const auto t = rumor("topology gen torus --nodes 12 --rows 3 --base-port 7000");
    REQUIRE(t.code == 0);
    const auto j = nlohmann::json::parse(t.out);
    CHECK(j["nodes"].size() == 12);
    CHECK(j["nodes"][1]["port"] == 7001);
    CHECK(rumor("topology gen social").code == 0);  // fixed size: --nodes may be left out
    const auto no_nodes = rumor("topology gen ring");
    CHECK(no_nodes.code != 0);
    CHECK(no_nodes.out.find("--nodes N is required") != std::string::npos);
    const auto wrong = rumor("topology gen ring --nodes 8 --p 0.5");
    CHECK(wrong.code != 0);
    CHECK(wrong.out.find("--p does not apply") != std::string::npos);
    CHECK(wrong.out.find("it takes --nodes, --host, --base-port, --max-nodes\n") !=
          std::string::npos);
  }

  TEST_CASE("topology check of social32 reports the Davis graph") {
    const auto r = rumor("topology check " + src("topologies/social32.json") + " --json");
    REQUIRE(r.code == 0);
    const auto j = nlohmann::json::parse(r.out);
    CHECK(j["nodes"] == 32);
    CHECK(j["edges"] == 89);
    CHECK(j["connected"] == true);
    CHECK(j["diameter"] == 4);
  }

  TEST_CASE("a malformed topology exits non-zero and names the file and the problem") {
    const auto dir = scratch("bad");
    const auto file = (dir / "bad.json").string();
    std::ofstream(file) << R"({"nodes": [0, 1, 2], "edges": [[0, 1], [1, 5]]})";
    const auto r = rumor("topology check " + file);
    CHECK(r.code != 0);
    CHECK(r.out.find(file) != std::string::npos);
    CHECK(r.out.find("unknown node id 5") != std::string::npos);
  }

  TEST_CASE("topology: --format, a guessed format warns, and sizes are bounded at once") {
    const auto dir = scratch("topoformat");
    const auto ring = (dir / "ring.txt").string();
    std::ofstream(ring) << "4\n1 2\n2 3\n3 0\n0 1\n";  // a ring that could pass for adjacency
    const auto guessed = rumor("topology check " + ring + " --json");
    REQUIRE(guessed.code == 0);
    CHECK(guessed.out.find("format guessed") != std::string::npos);
    const auto as_adj = rumor("topology check " + ring + " --format adj --json --log-level off");
    REQUIRE(as_adj.code == 0);
    CHECK(nlohmann::json::parse(as_adj.out)["edges"] == 6);
    const auto as_edges = rumor("topology check " + ring + " --format edges --json");
    REQUIRE(as_edges.code == 0);
    CHECK(as_edges.out.find("format guessed") == std::string::npos);
    CHECK(nlohmann::json::parse(as_edges.out)["edges"] == 4);
    // The config key does the same for a run.
    const auto cfg = (dir / "c.json").string();
    std::ofstream(cfg)
        << R"({"topology": "ring.txt", "topology_format": "adj", "task": "average"})";
    const auto dry = rumor("launch " + cfg + " --dry-run --log-level off");
    REQUIRE(dry.code == 0);
    CHECK(dry.out.find("4 nodes, 6 edges") != std::string::npos);
    // A billion generated nodes are refused at once, naming the limit and how to raise it.
    const auto huge =
        rumor("launch " + small_config(dir) + " --dry-run --set topology.nodes=1000000000");
    CHECK(huge.code != 0);
    CHECK(huge.out.find("above the limit of 100000") != std::string::npos);
    CHECK(huge.out.find("max_nodes") != std::string::npos);
    const auto gen = rumor("topology gen complete --nodes 20000");
    CHECK(gen.code != 0);
    CHECK(gen.out.find("edges, above the limit") != std::string::npos);
  }

  TEST_CASE("config keys lists keys with defaults, unknown keys are refused") {
    const auto k = rumor("config keys");
    CHECK(k.code == 0);
    CHECK(k.out.find("optimizer.lr") != std::string::npos);
    const auto dir = scratch("keys");
    const auto cfg = small_config(dir);
    const auto r = rumor("launch " + cfg + " --inprocess --set optimizer.lrate=0.1");
    CHECK(r.code != 0);
    CHECK(r.out.find("did you mean \"optimizer.lr\"") != std::string::npos);
  }

  TEST_CASE("launch over TCP: peers as processes, a summary at the end") {
    const auto dir = scratch("launch");
    const auto r = rumor("launch " + small_config(dir) + " --no-progress");
    INFO(r.out);
    REQUIRE(r.code == 0);
    CHECK(r.out.find("final test accuracy") != std::string::npos);
    int runs = 0;
    for (const auto& e : std::filesystem::directory_iterator(dir / "runs")) {
      ++runs;
      for (const char* f :
           {"config.json", "summary.json", "summary.csv", "node-3.jsonl", "node-3.log", "model.pt"})
        CHECK(std::filesystem::exists(e.path() / f));
      nlohmann::json s;
      std::ifstream(e.path() / "summary.json") >> s;
      CHECK(s["complete"] == true);
      CHECK(s["nodes_reporting"] == 4);
      // summarize rebuilds the same figures from the files alone.
      const auto again = rumor("summarize " + e.path().string());
      CHECK(again.code == 0);
      nlohmann::json s2;
      std::ifstream(e.path() / "summary.json") >> s2;
      CHECK(s2 == s);
    }
    CHECK(runs == 1);
  }

  TEST_CASE("launch: synchronous sgp over TCP computes the same models in every run") {
    // Message timing must not change the arithmetic: two runs, identical metrics but time.
    std::vector<std::vector<nlohmann::json>> runs;
    for (const char* name : {"sgp-a", "sgp-b"}) {
      const auto dir = scratch(name);
      const auto r = rumor("launch " + small_config(dir) +
                           " --no-progress --set method.name=sgp --set topology.gen=exponential"
                           " --set topology.nodes=8");
      INFO(r.out);
      REQUIRE(r.code == 0);
      std::vector<nlohmann::json> lines;
      for (const auto& e : std::filesystem::directory_iterator(dir / "runs"))
        for (int i = 0; i < 8; ++i) {
          std::ifstream in(e.path() / ("node-" + std::to_string(i) + ".jsonl"));
          for (std::string line; std::getline(in, line);) {
            auto j = nlohmann::json::parse(line);
            j.erase("time_s");
            lines.push_back(j);
          }
        }
      REQUIRE(lines.size() == 8 * 40);
      runs.push_back(lines);
    }
    CHECK(runs[0] == runs[1]);
  }

  TEST_CASE("launch: peers forked from the launcher compute what exec-started peers do") {
    // Default: peers are forks of the launcher; RUMOR_LAUNCH_EXEC=1 asks for `rumor node`.
    std::vector<std::vector<std::vector<nlohmann::json>>> runs;
    for (const std::string mode : {"fork", "exec"}) {
      CAPTURE(mode);
      const auto dir = scratch("start-" + mode);
      const std::string env = mode == "exec" ? "RUMOR_LAUNCH_EXEC=1 " : "RUMOR_LAUNCH_EXEC= ";
      const auto r = cli_test::shell(env + cli_test::rumor_path() + " launch " + small_config(dir) +
                                     " --no-progress --log-level debug --set method.name=sgp");
      INFO(r.out);
      REQUIRE(r.code == 0);
      const std::string other = mode == "exec" ? "fork" : "exec";
      for (int i = 0; i < 4; ++i) {
        const std::string peer = "launch: peer " + std::to_string(i) + " (pid ";
        const auto at = r.out.find(peer);
        REQUIRE(at != std::string::npos);
        const auto line = r.out.substr(at, r.out.find('\n', at) - at);
        CHECK(line.find("started by " + mode) != std::string::npos);
      }
      CHECK(r.out.find("started by " + other) == std::string::npos);
      const auto run_dir = cli_test::only_run(dir / "runs");
      CHECK(std::filesystem::exists(run_dir / "model.pt"));
      runs.push_back(cli_test::node_lines(run_dir, 4));
      REQUIRE(runs.back()[3].size() == 40);
    }
    CHECK(runs[0] == runs[1]);
  }

  TEST_CASE("launch: a peer killed mid-run stops the run and is named") {
    const auto dir = scratch("kill");
    const auto cfg = small_config(dir, R"(, "faults": {"kill_node": 2, "kill_round": 15})");
    const auto r = rumor("launch " + cfg + " --no-progress");
    INFO(r.out);
    CHECK(r.code != 0);
    CHECK(r.out.find("peer 2") != std::string::npos);
    CHECK(r.out.find("killed by signal 9") != std::string::npos);
    CHECK(r.out.find("node-2.log") != std::string::npos);
  }

  TEST_CASE("launch --dry-run prints the resolved config and exits") {
    const auto dir = scratch("dry");
    const auto r = rumor("launch " + small_config(dir) + " --dry-run");
    CHECK(r.code == 0);
    CHECK(r.out.find("\"run_id\"") != std::string::npos);
    CHECK(r.out.find("spectral gap") != std::string::npos);
    CHECK_FALSE(std::filesystem::exists(dir / "runs"));
  }

  TEST_CASE("launch --dry-run refuses what a real run refuses") {
    const auto dir = scratch("dry-bad");
    const auto cfg = small_config(dir);
    for (const auto& [set, says] : std::vector<std::pair<std::string, std::string>>{
             {"method.name=dpsgdx", "unknown method \"dpsgdx\""},
             {"codec=fp33", "fp33"},
             {"method.variant=xyz", "method.variant must be atc or cta"},
             {"on_peer_failure=maybe", "on_peer_failure must be stop or continue"},
             {"faults.kill_node=99", "faults.kill_node 99 is not a node"},
             {"method.name=qgm --set optimizer.momentum=0.9", "carries its own momentum"}}) {
      CAPTURE(set);
      const auto r = rumor("launch " + cfg + " --dry-run --set " + set);
      CHECK(r.code != 0);
      CHECK(r.out.find(says) != std::string::npos);
    }
    CHECK_FALSE(std::filesystem::exists(dir / "runs"));
  }

  TEST_CASE("launch: Ctrl-C stops every peer and keeps what was written") {
    const auto dir = scratch("sigint");
    const auto cfg = small_config(dir, R"(, "rounds": 100000)");
    const std::string out = (dir / "launch.out").string();
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      const std::string bin = std::string(RUMOR_BINARY_DIR) + "/rumor";
      ::freopen(out.c_str(), "w", stderr);
      ::execl(bin.c_str(), "rumor", "launch", cfg.c_str(), "--no-progress",
              static_cast<char*>(nullptr));
      ::_exit(127);
    }
    // Wait (bounded) until the peers are writing metrics, then interrupt the launcher.
    bool running = false;
    for (int i = 0; i < 300 && !running; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      if (!std::filesystem::exists(dir / "runs")) continue;
      for (const auto& e : std::filesystem::directory_iterator(dir / "runs"))
        if (std::filesystem::exists(e.path() / "node-3.jsonl") &&
            std::filesystem::file_size(e.path() / "node-3.jsonl") > 1000)
          running = true;
    }
    CHECK(running);
    ::kill(pid, SIGINT);
    int status = 0;
    ::waitpid(pid, &status, 0);
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 130);
    std::ifstream in(out);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    CHECK(text.find("interrupted") != std::string::npos);
    for (const auto& e : std::filesystem::directory_iterator(dir / "runs")) {
      CHECK(std::filesystem::file_size(e.path() / "node-0.jsonl") > 0);
      CHECK(std::filesystem::exists(e.path() / "summary.json"));
    }
  }
}
