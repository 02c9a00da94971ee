#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "rumor/common/error.hpp"
#include "rumor/config/config.hpp"
#include "rumor/gossip/method.hpp"
#include "rumor/run/run.hpp"
#include "rumor/run/setup.hpp"
#include "rumor/train/optimizer.hpp"
#include "run_harness.hpp"

using namespace rumor;
using nlohmann::json;
using namespace rumor::run_test;

TEST_SUITE("run") {
  TEST_CASE("every method trains in-process and learns the blobs") {
    for (const std::string m : {"dpsgd", "sgp", "choco", "squarm", "qgm", "allreduce", "local"}) {
      CAPTURE(m);
      std::vector<std::string> sets;
      if (m == "choco" || m == "squarm") sets = {"codec=topk:0.25|sign", "method.gamma=0.3"};
      const auto cfg = small(m, m == "sgp" ? expo(6) : ring(6), sets);
      const auto r = run::run_inprocess(cfg, quiet());
      REQUIRE(r.last_lines.size() == 6);
      for (const auto& l : r.last_lines) {
        CHECK(l["round"] == 99);
        CHECK(l.contains("test_acc"));
        CHECK(l["test_acc"].get<double>() > 0.4);  // 10 classes: chance is 0.1
      }
      CHECK(r.summary["complete"] == true);
      if (m == "local")
        CHECK(r.summary["mb_sent"] == 0.0);
      else
        CHECK(r.summary["mb_sent"].get<double>() > 0.0);
    }
  }

  TEST_CASE("sgp: push-sum weights sum to n within 1e-9 at every logged round") {
    const auto cfg = small("sgp", expo(8), {"eval.every=1"});
    const auto r = run::run_inprocess(cfg, quiet());
    for (int round = 0; round < 100; ++round) {
      double sum = 0;
      for (int i = 0; i < 8; ++i) {
        const auto lines = read_lines(r.run_dir + "/node-" + std::to_string(i) + ".jsonl");
        REQUIRE(lines.size() == 100);
        sum += lines[round]["ps_weight"].get<double>();
      }
      CHECK(std::abs(sum - 8.0) < 1e-9);
    }
    CHECK(r.summary["ps_weight_sum_max_dev"].get<double>() < 1e-9);
  }

  TEST_CASE("allreduce: every node ends with the same model, the exact mean") {
    const auto cfg = small("allreduce", ring(5), {"rounds=3", "eval.every=3"});
    const auto r = run::run_inprocess(cfg, quiet());
    for (const auto& l : r.last_lines) CHECK(l["consensus_dist"].get<double>() < 1e-10);
  }

  TEST_CASE("in-process runs are deterministic for a seed") {
    const auto cfg = small("squarm", ring(4), {"codec=topk:0.1|sign", "rounds=20"});
    const auto a = run::run_inprocess(cfg, quiet());
    std::vector<std::vector<json>> first;
    for (int i = 0; i < 4; ++i)
      first.push_back(read_lines(a.run_dir + "/node-" + std::to_string(i) + ".jsonl"));
    const auto b = run::run_inprocess(cfg, quiet());
    for (int i = 0; i < 4; ++i) {
      auto second = read_lines(b.run_dir + "/node-" + std::to_string(i) + ".jsonl");
      REQUIRE(second.size() == first[i].size());
      for (std::size_t k = 0; k < second.size(); ++k) {
        auto x = first[i][k], y = second[k];
        x.erase("time_s");
        y.erase("time_s");
        CHECK(x == y);
      }
    }
  }

  TEST_CASE("task average: consensus distance decays and the run directory is complete") {
    const auto cfg =
        small("dpsgd", ring(8), {"task=average", "average.dim=100", "rounds=40", "eval.every=5"});
    const auto r = run::run_inprocess(cfg, quiet());
    const auto lines = read_lines(r.run_dir + "/node-0.jsonl");
    double prev = INFINITY;
    for (const auto& l : lines) {
      if (!l.contains("consensus_dist")) continue;
      CHECK(l["consensus_dist"].get<double>() < prev);
      prev = l["consensus_dist"].get<double>();
      CHECK_FALSE(l.contains("test_acc"));
    }
    for (const char* f :
         {"config.json", "summary.json", "summary.csv", "node-7.jsonl", "node-7.log"})
      CHECK(std::filesystem::exists(std::filesystem::path(r.run_dir) / f));
    json record;
    std::ifstream(std::filesystem::path(r.run_dir) / "config.json") >> record;
    CHECK(record["rumor"]["run_id"] == cfg.run_id());
    CHECK(record["rumor"].contains("git_revision"));
  }

  TEST_CASE("a method's requirements are checked against the config") {
    CHECK_THROWS_WITH_AS(run::run_inprocess(small("dpsgd", expo(4)), quiet()),
                         doctest::Contains("undirected"), ConfigError);
    CHECK_THROWS_WITH_AS(run::run_inprocess(small("choco", ring(4), {"codec=qsgd:4"}), quiet()),
                         doctest::Contains("contractive"), ConfigError);
  }

  TEST_CASE("squarm: the local learning rate decays by a cosine unless told otherwise") {
    const auto& info = gossip::method_info("squarm");
    const auto cfg = small("squarm", ring(4), {"codec=topk:0.25|sign", "local_steps=5"});
    const auto o = run::local_optimizer_options(cfg, info);
    CHECK(o.schedule.kind == "cosine");
    CHECK(o.schedule.total_steps == 500);  // rounds x local_steps: the whole run
    const train::LrSchedule s(o.lr, o.schedule);
    CHECK(s.at(0) == doctest::Approx(0.01));  // lr 0.1 x (1 - beta)
    CHECK(s.at(250) == doctest::Approx(0.005));
    CHECK(s.at(499) < 1e-6);
    // The run's metrics follow it: the last round steps at almost nothing.
    const auto r = run::run_inprocess(cfg, quiet());
    for (const auto& l : r.last_lines) CHECK(l["lr"].get<double>() < 1e-5);

    const auto plain = small("squarm", ring(4), {"method.lr_schedule=optimizer"});
    CHECK(run::local_optimizer_options(plain, info).schedule.kind == "constant");
    const auto step = small("squarm", ring(4), {"optimizer.schedule.kind=step"});
    CHECK_THROWS_WITH_AS(run::local_optimizer_options(step, info),
                         doctest::Contains("method.lr_schedule"), ConfigError);
    const auto bad = small("squarm", ring(4), {"method.lr_schedule=linear"});
    CHECK_THROWS_WITH_AS(run::check_run_config(bad), doctest::Contains("cosine"), ConfigError);
  }
}

TEST_SUITE("run") {
  TEST_CASE("a resumed run continues from its checkpoint and matches an uninterrupted run") {
    for (const std::string method : {"sgp", "squarm"}) {
      CAPTURE(method);
      const auto base = std::filesystem::temp_directory_path() / ("rumor_resume_" + method);
      std::filesystem::remove_all(base);
      std::vector<std::string> sets = {"rounds=30", "checkpoint.every=10", "eval.every=5",
                                       "optimizer.momentum=0.9", "codec=topk:0.2|sign"};
      if (method == "sgp") sets.back() = "codec=fp32";
      auto with_dir = [&](const std::string& d) {
        auto s = sets;
        s.push_back("output.dir=" + (base / d).string());
        return s;
      };
      const auto full_cfg = small(method, method == "sgp" ? expo(4) : ring(4), with_dir("full"));
      const auto full = run::run_inprocess(full_cfg, quiet());

      const auto cut_cfg = small(method, method == "sgp" ? expo(4) : ring(4), with_dir("cut"));
      CHECK(cut_cfg.run_id() == full_cfg.run_id());  // where results go is not part of the id
      auto crash = quiet();
      crash.stop_after = 24;  // dies between the checkpoints of rounds 20 and 30
      run::run_inprocess(cut_cfg, crash);
      CHECK(run::resume_point(cut_cfg.run_dir(), 4) == 19);

      auto again = quiet();
      again.resume = true;
      const auto resumed = run::run_inprocess(run::recorded_config(cut_cfg.run_dir()), again);
      CHECK(resumed.run_dir == cut_cfg.run_dir());
      for (int i = 0; i < 4; ++i) {
        const auto a = read_lines(full.run_dir + "/node-" + std::to_string(i) + ".jsonl");
        const auto b = read_lines(resumed.run_dir + "/node-" + std::to_string(i) + ".jsonl");
        REQUIRE(a.size() == 30);
        REQUIRE(b.size() == 30);
        for (std::size_t k = 0; k < a.size(); ++k) {
          auto x = a[k], y = b[k];
          x.erase("time_s");
          y.erase("time_s");
          CHECK(x == y);
        }
      }
    }
  }

  TEST_CASE("resuming without checkpoints says what is missing") {
    const auto cfg = small("dpsgd", ring(3), {"rounds=3"});
    run::run_inprocess(cfg, quiet());
    auto again = quiet();
    again.resume = true;
    CHECK_THROWS_WITH_AS(run::run_inprocess(cfg, again), doctest::Contains("checkpoint.every"),
                         Error);
  }
}
