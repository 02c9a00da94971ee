// on_peer_failure continue over TCP: a killed peer, the survivors, and a restarted peer that
// rejoins (launch restarts it with `rumor node --rejoin`).
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "cli/cli_run.hpp"

namespace {

using cli_test::rumor;
using cli_test::scratch;

// Ring of 4 on loopback, logistic regression on blobs; node 2 dies after round 15 (and is
// restarted `restart` seconds later when >= 0; its neighbours wait for it after round
// rounds / 3, faults.restart_round, so it rejoins there however long its start takes).
std::string faults_config(const std::filesystem::path& dir, const std::string& extra,
                          double restart = -1, int rounds = 60) {
  const std::string restart_key = restart >= 0
                                      ? ", \"restart_after_s\": " + std::to_string(restart) +
                                            ", \"restart_round\": " + std::to_string(rounds / 3)
                                      : "";
  const auto path = dir / "faults.json";
  std::ofstream(path) << R"({"name": "faults", "topology": {"gen": "ring", "nodes": 4},
    "model": {"name": "logreg"},
    "data": {"dataset": "blobs", "train_size": 800, "test_size": 200},
    "rounds": )" + std::to_string(rounds) +
                             R"(, "eval": {"every": )" + std::to_string(rounds / 3) + R"(},
    "on_peer_failure": "continue",
    "network": {"connect_timeout_s": 20, "round_timeout_s": 2},
    "faults": {"kill_node": 2, "kill_round": 15)" +
                             restart_key + R"(},
    "output": {"dir": ")" + (dir / "runs").string() +
                             "\"}" + extra + "}";
  return path.string();
}

std::filesystem::path only_run(const std::filesystem::path& dir) {
  std::filesystem::path run;
  int count = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir / "runs")) {
    run = e.path();
    ++count;
  }
  REQUIRE(count == 1);
  return run;
}

nlohmann::json read_json(const std::filesystem::path& p) {
  nlohmann::json j;
  std::ifstream(p) >> j;
  return j;
}

std::int64_t last_round(const std::filesystem::path& jsonl) {
  std::ifstream in(jsonl);
  std::string line, last;
  while (std::getline(in, line))
    if (!line.empty()) last = line;
  return nlohmann::json::parse(last).value("round", std::int64_t{-1});
}

}  // namespace

TEST_SUITE("cli") {
  TEST_CASE("launch, on_peer_failure continue: a killed peer is reported, the others finish") {
    const auto dir = scratch("continue");
    const auto r =
        rumor("launch " + faults_config(dir, R"(, "method": {"name": "sgp"})") + " --no-progress");
    INFO(r.out);
    REQUIRE(r.code == 0);
    CHECK(r.out.find("peer 2") != std::string::npos);
    CHECK(r.out.find("killed by signal 9") != std::string::npos);
    CHECK(r.out.find("the others go on") != std::string::npos);
    CHECK(r.out.find("nodes finished       3 of 4") != std::string::npos);
    const auto run = only_run(dir);
    const auto s = read_json(run / "summary.json");
    CHECK(s["nodes_finished"] == 3);
    CHECK(s["complete"] == false);
    // The survivors' final accuracy is reported; blobs are easy.
    CHECK(s["final"]["round"] == 59);
    CHECK(s["final"]["test_acc_mean"].get<double>() > 0.6);
    CHECK(last_round(run / "node-2.jsonl") == 15);
    // Neighbours 1 and 3 left it out of the mixing; nobody waited for it after that.
    std::ifstream log1(run / "node-1.log");
    const std::string text((std::istreambuf_iterator<char>(log1)),
                           std::istreambuf_iterator<char>());
    CHECK(text.find("peer 2 is gone") != std::string::npos);
  }

  TEST_CASE("launch, on_peer_failure continue: a restarted peer rejoins and ends near the others") {
    // dpsgd without checkpoints (it takes its neighbours' models), sgp from its own checkpoint.
    for (const std::string& extra :
         {std::string(R"(, "method": {"name": "dpsgd"})"),
          std::string(R"(, "method": {"name": "sgp"}, "checkpoint": {"every": 10})")}) {
      CAPTURE(extra);
      const auto dir = scratch("rejoin");
      const auto r = rumor("launch " + faults_config(dir, extra, 0.2, 300) + " --no-progress");
      INFO(r.out);
      REQUIRE(r.code == 0);
      CHECK(r.out.find("restarted peer 2") != std::string::npos);
      const auto run = only_run(dir);
      const auto s = read_json(run / "summary.json");
      CHECK(s["nodes_finished"] == 4);
      CHECK(last_round(run / "node-2.jsonl") == 299);
      std::ifstream log2(run / "node-2.log");
      const std::string text((std::istreambuf_iterator<char>(log2)),
                             std::istreambuf_iterator<char>());
      CHECK(text.find("rejoined with 2 offer(s)") != std::string::npos);
      if (extra.find("checkpoint") != std::string::npos)
        CHECK(text.find("own checkpoint") != std::string::npos);
      const auto& acc = s["last_test_acc_by_node"];
      double others = 0;
      for (const char* i : {"0", "1", "3"}) others += acc[i].get<double>() / 3;
      CHECK(std::abs(acc["2"].get<double>() - others) < 0.05);
    }
  }

  TEST_CASE(
      "launch, on_peer_failure continue: two neighbours killed at once both rejoin, and "
      "the push-sum weight is still n") {
    const auto dir = scratch("rejoin-two");
    const auto config =
        faults_config(dir, R"(, "method": {"name": "sgp"}, "checkpoint": {"every": 10})", 0.2, 300);
    const auto r = rumor("launch " + config + " --set faults.kill_also=[1] --no-progress");
    INFO(r.out);
    REQUIRE(r.code == 0);
    CHECK(r.out.find("restarted peer 1") != std::string::npos);
    CHECK(r.out.find("restarted peer 2") != std::string::npos);
    const auto run = only_run(dir);
    const auto s = read_json(run / "summary.json");
    CHECK(s["nodes_finished"] == 4);
    double weight = 0;
    for (int i = 0; i < 4; ++i) {
      const auto path = run / ("node-" + std::to_string(i) + ".jsonl");
      CHECK(last_round(path) == 299);
      std::ifstream in(path);
      std::string line, last;
      while (std::getline(in, line))
        if (!line.empty()) last = line;
      weight += nlohmann::json::parse(last).value("ps_weight", 0.0);
    }
    CHECK(std::abs(weight - 4.0) < 1e-9);
    // Every node is back: exact averages resumed before the last round.
    CHECK(s["final"]["consensus_round"] == 299);
    CHECK(s["final"].contains("avg_model_acc"));
    for (int i : {1, 2}) {  // both came back from their own checkpoints
      std::ifstream log(run / ("node-" + std::to_string(i) + ".log"));
      const std::string text((std::istreambuf_iterator<char>(log)),
                             std::istreambuf_iterator<char>());
      CHECK(text.find("own checkpoint") != std::string::npos);
    }
  }

  TEST_CASE(
      "rumor node: --rejoin without on_peer_failure continue and a bad deadline are refused") {
    const auto dir = scratch("rejoin-stop");
    const auto r =
        rumor("node " + faults_config(dir, "") + " --id 1 --rejoin --set on_peer_failure=stop");
    CHECK(r.code != 0);
    CHECK(r.out.find("--rejoin needs on_peer_failure continue") != std::string::npos);
    const auto bad =
        rumor("node " + faults_config(dir, "") + " --id 1 --set network.round_deadline=sometimes");
    CHECK(bad.code != 0);
    CHECK(bad.out.find("network.round_deadline must be fixed or adaptive") != std::string::npos);
  }
}
