// Elastic membership in-process: standby nodes join, a node leaves gracefully, a node pauses
// and comes back. Scripted rounds and simulated time: nothing here depends on timing.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>

#include <doctest/doctest.h>
#include <unistd.h>

#include "rumor/common/error.hpp"
#include "rumor/run/run.hpp"
#include "run_harness.hpp"

using namespace rumor;
using namespace rumor::run_test;
using nlohmann::json;

namespace {

// A ring of 8 running nodes, and standby nodes 8 (between 0 and 4) and 9 (between 2 and 6).
json ring_with_standby() {
  json nodes = json::array();
  for (int i = 0; i < 10; ++i) nodes.push_back({{"id", i}});
  nodes[8]["standby"] = true;
  nodes[9]["standby"] = true;
  json edges = json::array();
  for (int i = 0; i < 8; ++i) edges.push_back({i, (i + 1) % 8});
  for (const auto& e : {json{8, 0}, json{8, 4}, json{9, 2}, json{9, 6}}) edges.push_back(e);
  return {{"name", "ring8-standby2"}, {"nodes", nodes}, {"edges", edges}};
}

std::vector<std::string> churn(std::vector<std::string> more = {}) {
  std::vector<std::string> s = {
      "on_peer_failure=continue",
      "rounds=60",
      "eval.every=10",
      R"(faults.join=[{"node": 8, "round": 10}, {"node": 9, "round": 20}])",
      R"(faults.leave=[{"node": 3, "round": 30}])",
      R"(faults.pause=[{"node": 5, "round": 40, "seconds": 0.05}])"};
  s.insert(s.end(), more.begin(), more.end());
  return s;
}

struct Rounds {
  std::vector<json> means;
};

Rounds scripted_run(const config::Config& cfg) {
  Rounds out;
  auto o = quiet();
  o.on_round = [&out](std::int64_t, const json& mean) { out.means.push_back(mean); };
  run::run_inprocess(cfg, o);
  return out;
}

}  // namespace

TEST_SUITE("run") {
  TEST_CASE("membership, sgp: no push-sum weight is lost through joins and a graceful leave") {
    // max_lag_rounds 0: back from its pause "too far behind", push-sum still keeps its mass.
    for (const char* lossy : {"links.loss=0", "faults.max_lag_rounds=0", "links.loss=0.2"}) {
      CAPTURE(lossy);
      const auto cfg = small("sgp", ring_with_standby(), churn({lossy}));
      const auto r = scripted_run(cfg);
      REQUIRE(r.means.size() == 60);
      for (std::size_t k = 0; k < r.means.size(); ++k) {
        CAPTURE(k);
        const auto& m = r.means[k];
        // While paused (from round 40, 8 live), node 5 holds its own weight out of the sum.
        const bool paused = k >= 40 && m["live"].get<int>() == 8;
        if (!paused) {
          if (std::string(lossy) != "links.loss=0.2") {
            CHECK(std::abs(m["ps_weight_sum"].get<double>() - 8.0) < 1e-9);
          } else {
            // Lossy links: what is in flight is not counted here, never more than there was.
            CHECK(m["ps_weight_sum"].get<double>() <= 8.0 + 1e-9);
          }
        }
      }
      CHECK(r.means[5]["live"] == 8);
      CHECK(r.means[15]["live"] == 9);
      CHECK(r.means[25]["live"] == 10);
      CHECK(r.means[35]["live"] == 9);
      CHECK(r.means[40]["live"] == 8);
      CHECK(r.means.back()["live"] == 9);
    }
  }

  TEST_CASE("membership: the same scenario gives the same metrics twice") {
    for (const char* method : {"sgp", "dpsgd"}) {
      CAPTURE(method);
      const auto cfg = small(method, ring_with_standby(), churn());
      const auto a = scripted_run(cfg), b = scripted_run(cfg);
      REQUIRE(a.means.size() == b.means.size());
      for (std::size_t k = 0; k < a.means.size(); ++k) CHECK(a.means[k] == b.means[k]);
      CHECK(a.means.back().contains("test_acc"));
    }
  }

  TEST_CASE("membership: a joiner and a returning node take the run's learning rate") {
    // Cosine over the run's 60 rounds: a joiner at round 10 (and node 5, back from its
    // pause) would otherwise run at the rate of its own few steps, behind everyone else's.
    for (const char* method : {"sgp", "dpsgd"}) {
      CAPTURE(method);
      const auto cfg =
          small(method, ring_with_standby(), churn({"optimizer.schedule.kind=cosine"}));
      run::run_inprocess(cfg, quiet());
      const auto dir = std::filesystem::path(cfg.run_dir());
      const auto ref = read_lines((dir / "node-0.jsonl").string());
      REQUIRE(ref.size() == 60);
      for (int node : {8, 9, 5}) {
        CAPTURE(node);
        const auto lines = read_lines((dir / ("node-" + std::to_string(node) + ".jsonl")).string());
        REQUIRE(!lines.empty());
        for (const auto& l : lines) {
          const auto r = l["round"].get<std::size_t>();
          CAPTURE(r);
          CHECK(l["lr"].get<double>() == doctest::Approx(ref[r]["lr"].get<double>()));
        }
      }
    }
  }

  TEST_CASE("membership: the run directory says who was out and for how long") {
    const auto cfg = small("dpsgd", ring_with_standby(), churn());
    run::run_inprocess(cfg, quiet());
    std::ifstream in(std::filesystem::path(cfg.run_dir()) / "membership.json");
    REQUIRE(in);
    const json m = json::parse(in);
    std::map<int, json> by_node;
    for (const auto& e : m["events"]) by_node[e["node"].get<int>()] = e;
    CHECK(by_node.at(8)["event"] == "joined");
    CHECK(by_node.at(8)["back_at_round"] == 10);
    CHECK(by_node.at(3)["event"] == "left");
    CHECK(by_node.at(3)["rounds_out"] == 30);
    CHECK(by_node.at(5)["out_from_round"] == 40);
    CHECK(by_node.at(5)["back_at_round"].get<int>() > 40);
    CHECK(by_node.at(5)["seconds_out"].get<double>() >= 0.05);
    // The summary counts the graceful leave as planned: complete, node 3 "left".
    const json summary =
        json::parse(std::ifstream(std::filesystem::path(cfg.run_dir()) / "summary.json"));
    CHECK(summary["complete"] == true);
    CHECK(summary["nodes_left"] == 1);
    std::map<int, std::string> out;
    for (const auto& e : summary["membership"]) out[e["node"].get<int>()] = e["out"];
    CHECK(out.at(3) == "left");
    CHECK(out.at(5) == "in between");
    CHECK(summary["exact_averages"] == "over the nodes running at each evaluation");
  }

  TEST_CASE("summary: a TCP node stopped within a round (a pause) is named with its time") {
    const auto dir =
        std::filesystem::temp_directory_path() / ("rumor-stopped-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    std::ofstream(dir / "config.json") << json{{"rounds", 40}}.dump();
    for (int id = 0; id < 2; ++id) {
      std::ofstream f(dir / ("node-" + std::to_string(id) + ".jsonl"));
      for (int r = 0; r < 40; ++r) f << json{{"round", r}, {"loss", 1.0}}.dump() << "\n";
    }
    // What node 1 wrote when it finished: it was stopped for 10 s in round 21 (1-based).
    std::ofstream(dir / "node-1.end.json") << json{
        {"node", 1},
        {"peak_rss_mb", 1.0},
        {"stopped",
         {{{"round", 21}, {"seconds", 10.0}}}}}.dump();
    const json s = run::summarize(dir.string());
    REQUIRE(s.contains("membership"));
    REQUIRE(s["membership"].size() == 1);
    const json& m = s["membership"][0];
    CHECK(m["node"] == 1);
    CHECK(m["from_round"] == 20);
    CHECK(m["seconds_out"].get<double>() == 10.0);
    CHECK(s["complete"] == true);
    CHECK(run::summary_text(s).find("node 1 in round 21 (stopped (paused), 10.") !=
          std::string::npos);
    std::filesystem::remove_all(dir);
  }

  TEST_CASE("membership keys are checked against the topology") {
    auto bad = [](std::vector<std::string> sets) {
      sets.push_back("on_peer_failure=continue");
      return small("sgp", ring_with_standby(), sets);
    };
    // node 1 is not standby: it cannot join
    CHECK_THROWS_AS(run::run_inprocess(bad({R"(faults.join=[{"node": 1, "round": 5}])"}), quiet()),
                    ConfigError);
    CHECK_THROWS_AS(
        run::run_inprocess(bad({R"(faults.leave=[{"node": 12, "round": 5}])"}), quiet()),
        ConfigError);
    // a standby node that never joins cannot leave
    CHECK_THROWS_AS(run::run_inprocess(bad({R"(faults.leave=[{"node": 8, "round": 5}])"}), quiet()),
                    ConfigError);
    CHECK_THROWS_AS(run::run_inprocess(bad({R"(faults.pause=[{"node": 2, "round": 5}])"}), quiet()),
                    ConfigError);
    CHECK_THROWS_AS(run::run_inprocess(small("sgp", ring_with_standby()), quiet()), ConfigError);
  }
}
