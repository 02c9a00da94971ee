// In-process runs in simulated time: stragglers, slow and lossy links, dead peers.
// Everything here is deterministic: clocks advance by modelled costs, never wall time.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "rumor/common/error.hpp"
#include "rumor/config/config.hpp"
#include "rumor/run/run.hpp"
#include "run_harness.hpp"

using namespace rumor;
using nlohmann::json;
using namespace rumor::run_test;

namespace {

config::Config sim_config(const std::string& name, const std::string& method, json topology,
                          std::vector<std::string> sets = {}) {
  const auto dir = std::filesystem::temp_directory_path() / "rumor_sim_tests";
  json c = {{"name", name},
            {"seed", 3},
            {"topology", topology},
            {"method", {{"name", method}}},
            {"data",
             {{"dataset", "blobs"},
              {"train_size", 1200},
              {"test_size", 300},
              {"partition", {{"kind", "iid"}}}}},
            {"model", {{"name", "logreg"}}},
            {"optimizer", {{"lr", 0.1}}},
            {"batch_size", 16},
            {"rounds", 40},
            {"eval", {{"every", 20}}},
            {"sim", {{"step_s", 0.01}}},
            {"output", {{"dir", dir.string()}}}};
  return config::Config::from_json(c, "test", RUMOR_SOURCE_DIR, sets);
}

// Every metrics line of a run without its wall-clock field.
std::vector<json> lines_without_time(const run::RunResult& r, int n) {
  std::vector<json> out;
  for (int i = 0; i < n; ++i)
    for (auto l : read_lines(r.run_dir + "/node-" + std::to_string(i) + ".jsonl")) {
      l.erase("time_s");
      out.push_back(l);
    }
  return out;
}

double final_sim_time(const run::RunResult& r) {
  double t = 0;
  for (const auto& l : r.last_lines) t = std::max(t, l.value("sim_time_s", 0.0));
  return t;
}

}  // namespace

TEST_SUITE("run") {
  TEST_CASE("simulated time: local steps cost sim.step_s, a straggler sets the pace of sync sgp") {
    const auto even = run::run_inprocess(sim_config("sim-even", "sgp", ring(6)), quiet());
    for (const auto& l : even.last_lines)
      CHECK(l["sim_time_s"].get<double>() == doctest::Approx(0.4));
    const auto slow = run::run_inprocess(
        sim_config("sim-slow", "sgp", ring(6), {"faults.slow_nodes=[2]", "faults.slowdown=4"}),
        quiet());
    // The straggler's own clock is its compute time; every other node waits for it,
    // directly or through neighbours: at distance d it is at most d of its rounds behind.
    CHECK(slow.last_lines[2]["sim_time_s"].get<double>() == doctest::Approx(40 * 0.04));
    for (const auto& l : slow.last_lines) {
      CHECK(l["sim_time_s"].get<double>() >= (40 - 3) * 0.04);
      CHECK(l["msgs_late"] == 0);
      CHECK(l["msgs_missed"] == 0);
    }
    CHECK(slow.summary["sim_time_s"].get<double>() == doctest::Approx(1.6));
  }

  TEST_CASE("simulated time: links add latency and serial transfer time") {
    // The payload size sets the transfer time: read it from the run's byte counts.
    const auto r =
        run::run_inprocess(sim_config("sim-links", "dpsgd", ring(4),
                                      {"links.latency_s=0.05", "links.bandwidth_MBps=1"}),
                           quiet());
    const double bytes = r.last_lines[0]["bytes_sent"].get<double>() / 40 / 2;  // per message
    // Each round: a step, then wait for both neighbours' messages (sent at the same time,
    // each on its own link): step + bytes / bandwidth + latency.
    const double round_s = 0.01 + bytes / 1e6 + 0.05;
    for (const auto& l : r.last_lines)
      CHECK(l["sim_time_s"].get<double>() == doctest::Approx(40 * round_s).epsilon(1e-9));
  }

  TEST_CASE("simulated time: runs are deterministic, with stragglers and lossy links") {
    const std::vector<std::string> sets = {"faults.slow_nodes=[1]", "links.latency_s=0.01",
                                           "links.loss=0.1", "network.round_timeout_s=0.05",
                                           "method.overlap=true"};
    const auto a = run::run_inprocess(sim_config("sim-det", "sgp", expo(8), sets), quiet());
    const auto la = lines_without_time(a, 8);
    const auto b = run::run_inprocess(sim_config("sim-det", "sgp", expo(8), sets), quiet());
    CHECK(la == lines_without_time(b, 8));
    CHECK(a.summary["msgs_missed"].get<double>() > 0);
  }

  TEST_CASE("overlap sgp hides slow links behind a straggler's compute") {
    const std::vector<std::string> base = {"faults.slow_nodes=[0]", "links.latency_s=0.04",
                                           "eval.target_acc=0.5"};
    auto with = [&](std::vector<std::string> extra) {
      auto s = base;
      s.insert(s.end(), extra.begin(), extra.end());
      return s;
    };
    const auto sync = run::run_inprocess(sim_config("sim-sync", "sgp", ring(6), base), quiet());
    const auto over = run::run_inprocess(
        sim_config("sim-over", "sgp", ring(6), with({"method.overlap=true", "method.tau=1"})),
        quiet());
    // Sync: every two of the straggler's rounds it waits for a round trip to a neighbour
    // (2 links + the neighbour's step: (0.04 + 0.05 + 0.04) / 2 per round); overlap: the
    // messages it waits for left a round earlier, so its pace is its step.
    CHECK(final_sim_time(sync) == doctest::Approx(40 * 0.065).epsilon(0.02));
    CHECK(final_sim_time(over) < 40 * 0.04 + 0.04 + 1e-9);
    CHECK(final_sim_time(over) < 0.7 * final_sim_time(sync));
    CHECK(over.summary["final"]["test_acc_mean"].get<double>() > 0.4);
    REQUIRE(sync.summary.contains("time_to_target"));
    const auto& ts = sync.summary["time_to_target"];
    const auto& to = over.summary["time_to_target"];
    REQUIRE(ts["round"].is_number());
    REQUIRE(to["round"].is_number());
    CHECK(to["sim_time_s"].get<double>() < ts["sim_time_s"].get<double>());
  }

  TEST_CASE("lossy links: robust sgp conserves the push-sum mass, plain sgp loses it") {
    for (const json& topo : {expo(8), ring(8)}) {
      CAPTURE(topo.dump());
      const std::vector<std::string> lossy = {"links.loss=0.1", "network.round_timeout_s=0.05"};
      const auto clean = run::run_inprocess(sim_config("loss-0", "sgp", topo), quiet());
      const auto robust = run::run_inprocess(sim_config("loss-r", "sgp", topo, lossy), quiet());
      auto plain_sets = lossy;
      plain_sets.push_back("method.robust=false");
      const auto plain = run::run_inprocess(sim_config("loss-p", "sgp", topo, plain_sets), quiet());
      CHECK(robust.summary["msgs_missed"].get<double>() > 0);
      // Mass is in flight at some rounds, and all of it is back once delivered.
      CHECK(robust.summary["ps_weight_sum_max_dev"].get<double>() > 1e-3);
      CHECK(robust.summary["ps_weight_sum_delivered_dev"].get<double>() < 1e-9);
      CHECK(plain.summary["ps_weight_sum_final_dev"].get<double>() > 0.05);
      CHECK_FALSE(clean.summary.contains("ps_weight_sum_delivered_dev"));
      const double acc0 = clean.summary["final"]["test_acc_mean"].get<double>();
      CHECK(std::abs(robust.summary["final"]["test_acc_mean"].get<double>() - acc0) < 0.03);
    }
  }

  TEST_CASE("late messages: dpsgd drops and counts them, push-sum absorbs them later") {
    // One slow link (0 <-> 1): its messages come after the deadline.
    const std::vector<std::string> sets = {
        R"(links.overrides=[{"from": 0, "to": 1, "latency_s": 0.5}])",
        "network.round_timeout_s=0.1"};
    const auto d = run::run_inprocess(sim_config("late-d", "dpsgd", ring(4), sets), quiet());
    CHECK(d.last_lines[0]["msgs_late"].get<int>() > 0);
    CHECK(d.last_lines[1]["msgs_late"].get<int>() > 0);
    CHECK(d.last_lines[2]["msgs_late"] == 0);
    CHECK(d.last_lines[0]["msgs_missed"] == 0);
    // A node that waited out the deadline spent it: round = step + deadline.
    CHECK(d.last_lines[0]["sim_time_s"].get<double>() >= 40 * 0.11 - 1e-9);
    const auto s = run::run_inprocess(sim_config("late-s", "sgp", ring(4), sets), quiet());
    CHECK(s.summary["msgs_late"].get<double>() > 0);
    CHECK(s.summary["ps_weight_sum_delivered_dev"].get<double>() < 1e-9);
  }

  TEST_CASE("bad link overrides are refused with the reason") {
    CHECK_THROWS_AS(run::run_inprocess(sim_config("bad-o", "sgp", ring(4),
                                                  {R"(links.overrides=[{"from": 0, "to": 2}])"}),
                                       quiet()),
                    ConfigError);
    CHECK_THROWS_AS(
        run::run_inprocess(sim_config("bad-o", "sgp", ring(4),
                                      {R"(links.overrides=[{"from": 0, "to": 1, "lag": 1}])"}),
                           quiet()),
        ConfigError);
    CHECK_THROWS_AS(
        run::run_inprocess(sim_config("bad-l", "sgp", ring(4), {"links.loss=1.5"}), quiet()),
        ConfigError);
  }

  TEST_CASE("in-process dead peer: the survivors finish, and a restarted peer catches up") {
    for (const std::string m : {"sgp", "dpsgd"}) {
      CAPTURE(m);
      const std::vector<std::string> kill = {"on_peer_failure=continue", "faults.kill_node=3",
                                             "faults.kill_round=9", "rounds=60"};
      const auto r = run::run_inprocess(sim_config("dead-" + m, m, ring(8), kill), quiet());
      const auto l3 = read_lines(r.run_dir + "/node-3.jsonl");
      CHECK(l3.back()["round"] == 9);
      for (int i = 0; i < 8; ++i) {
        if (i == 3) continue;
        CAPTURE(i);
        const auto& l = r.last_lines[i];
        CHECK(l["round"] == 59);
        CHECK(l["test_acc"].get<double>() > 0.4);
        CHECK(l["msgs_missed"] == 0);  // neighbours were told: nobody waits for node 3
      }
      CHECK(r.summary["nodes_reporting"] == 8);
      CHECK(r.summary["complete"] == false);
      CHECK(r.summary["final"]["test_acc_mean"].get<double>() > 0.4);
      // Deterministic.
      const auto again = run::run_inprocess(sim_config("dead-" + m, m, ring(8), kill), quiet());
      CHECK(lines_without_time(r, 8) == lines_without_time(again, 8));

      auto back = kill;
      back.push_back("faults.restart_round=29");
      const auto rr = run::run_inprocess(sim_config("back-" + m, m, ring(8), back), quiet());
      const auto b3 = read_lines(rr.run_dir + "/node-3.jsonl");
      CHECK(b3.back()["round"] == 59);
      CHECK(b3.size() == 10 + 30);  // rounds 0..9 and 30..59
      CHECK(rr.summary["complete"] == true);
      double others = 0;
      for (int i = 0; i < 8; ++i)
        if (i != 3) others += rr.last_lines[i]["test_acc"].get<double>() / 7;
      CHECK(std::abs(rr.last_lines[3]["test_acc"].get<double>() - others) < 0.02);
    }
  }

  TEST_CASE("in-process dead peer with on_peer_failure stop stops the run, naming the node") {
    const auto cfg = sim_config("dead-stop", "sgp", ring(4),
                                {"faults.kill_node=2", "faults.kill_round=3", "rounds=10"});
    try {
      run::run_inprocess(cfg, quiet());
      FAIL("expected an error");
    } catch (const Error& e) {
      CHECK(std::string(e.what()).find("node 2") != std::string::npos);
      CHECK(std::string(e.what()).find("on_peer_failure") != std::string::npos);
    }
  }
}
