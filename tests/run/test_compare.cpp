#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "rumor/common/error.hpp"
#include "rumor/config/config.hpp"
#include "rumor/run/compare.hpp"
#include "rumor/run/run.hpp"
#include "rumor/run/setup.hpp"
#include "rumor/train/model.hpp"

using namespace rumor;
using nlohmann::json;

namespace {
json small_base() {
  return {{"name", "cmp"},
          {"topology", {{"gen", "ring"}, {"nodes", 4}}},
          {"data", {{"dataset", "blobs"}, {"train_size", 800}, {"test_size", 200}}},
          {"model", {{"name", "logreg"}}},
          {"rounds", 40},
          {"eval", {{"every", 10}}}};
}
}  // namespace

TEST_SUITE("run") {
  TEST_CASE("grid expansion: the product of the axes, seeds grouped, object values") {
    const json g = {{"base", small_base()},
                    {"axes",
                     {{"method",
                       {"dpsgd",
                        {{"method", "choco"},
                         {"codec", "topk:0.5|sign"},
                         {"method.gamma", 0.3},
                         {"label", "choco-topk"}}}},
                      {"data.partition.alpha", {0.1, 10}},
                      {"seed", {1, 2, 3}}}},
                    {"target_acc", 0.5}};
    const auto grid =
        run::parse_grid(g, "grid.json", ".", {"method", "data.partition.alpha", "seed"});
    REQUIRE(grid.cells.size() == 2 * 2 * 3);
    CHECK(grid.target_acc == 0.5);
    std::set<std::string> groups, labels;
    for (const auto& c : grid.cells) {
      groups.insert(c.group);
      labels.insert(c.label);
      CHECK(c.group.find("seed") == std::string::npos);
    }
    CHECK(groups.size() == 4);
    CHECK(labels.size() == 12);
    const auto& choco = grid.cells[6];  // second method value, first alpha, first seed
    CHECK(choco.label == "method=choco-topk data.partition.alpha=0.1 seed=1");
    CHECK(std::find(choco.overrides.begin(), choco.overrides.end(), "method.name=choco") !=
          choco.overrides.end());
    CHECK(std::find(choco.overrides.begin(), choco.overrides.end(), "method.gamma=0.3") !=
          choco.overrides.end());
    CHECK(choco.seed == 1);
    const auto full = run::parse_grid(
        {{"base", small_base()}, {"axes", {{"seed", {1}}}}, {"full", {{"rounds", 5000}}}}, "g",
        ".");
    CHECK(full.full_overrides == std::vector<std::string>{"rounds=5000"});
    // A codec axis takes codec objects as values, or labelled settings of several keys.
    const auto codecs = run::parse_grid(
        {{"base", small_base()},
         {"axes",
          {{"codec",
            {{{"chain", {"topk:0.1", "sign"}}},
             {{"label", "small"}, {"codec", "topk:0.01"}, {"method.gamma", 0.1}}}}}}},
        "g", ".");
    REQUIRE(codecs.cells.size() == 2);
    CHECK(codecs.cells[0].overrides[0].rfind("codec={", 0) == 0);
    CHECK(codecs.cells[1].label == "codec=small");
    CHECK(codecs.cells[1].overrides ==
          std::vector<std::string>{"codec=topk:0.01", "method.gamma=0.1"});
    CHECK_THROWS_AS(run::parse_grid({{"base", small_base()}, {"axes", json::object()}}, "g", "."),
                    ConfigError);
    CHECK_THROWS_WITH_AS(
        run::parse_grid({{"base", small_base()}, {"axis", {{"seed", {1}}}}}, "g", "."),
        doctest::Contains("unknown grid key"), ConfigError);
  }

  TEST_CASE("cells of one seed share partition and initial model whatever the method") {
    const json g = {{"base", small_base()},
                    {"axes", {{"method", {"dpsgd", "sgp", "local"}}, {"seed", {4, 5}}}}};
    const auto grid = run::parse_grid(g, "grid.json", ".");
    std::map<std::int64_t, std::pair<std::vector<std::vector<std::size_t>>, std::vector<float>>>
        first;
    for (const auto& cell : grid.cells) {
      const auto cfg =
          config::Config::from_json(grid.base, "grid", RUMOR_SOURCE_DIR, cell.overrides);
      const auto data = run::load_data(cfg);
      const auto part = run::partition_of(cfg, *data, 4);
      const auto model = train::Model::create(
          run::model_spec(cfg), {data->shape, data->num_classes}, cfg.get<std::uint64_t>("seed"));
      std::vector<float> init(model->params().begin(), model->params().end());
      auto [it, fresh] = first.try_emplace(cell.seed, part.nodes, init);
      if (!fresh) {
        CHECK(it->second.first == part.nodes);
        CHECK(it->second.second == init);
      }
    }
    REQUIRE(first.size() == 2);
    CHECK(first[4].first != first[5].first);
    CHECK(first[4].second != first[5].second);
  }

  TEST_CASE("aggregation: mean and std over seeds, time to target from the curve") {
    auto cell = [](const std::string& group, double acc, double mb, std::vector<double> curve_acc) {
      json c = {{"group", group},
                {"mb_sent", mb},
                {"trigger_rate", 1.0},
                {"best_test_acc_mean", acc},
                {"final", {{"test_acc_mean", acc}}}};
      json curve = json::array();
      for (std::size_t i = 0; i < curve_acc.size(); ++i)
        curve.push_back({{"round", 10 * (i + 1) - 1},
                         {"test_acc", curve_acc[i]},
                         {"mb_sent", 100.0 * (i + 1)},
                         {"time_s", 1.0 * (i + 1)}});
      c["curve"] = curve;
      return c;
    };
    const std::vector<json> cells = {cell("a", 0.80, 10, {0.5, 0.7, 0.8}),
                                     cell("a", 0.90, 30, {0.6, 0.75, 0.9}),
                                     cell("b", 0.60, 5, {0.4, 0.5, 0.6})};
    const auto rows = run::aggregate(cells, 0.75);
    REQUIRE(rows.size() == 2);
    CHECK(rows[0]["group"] == "a");
    CHECK(rows[0]["final_acc_mean"].get<double>() == doctest::Approx(0.85));
    CHECK(rows[0]["final_acc_std"].get<double>() == doctest::Approx(std::sqrt(0.005)));
    CHECK(rows[0]["mb_sent_mean"].get<double>() == doctest::Approx(20));
    CHECK(rows[0]["reached_target"] == 2);
    CHECK(rows[0]["rounds_to_target"].get<double>() == doctest::Approx(25));  // 30 and 20
    CHECK(rows[0]["mb_to_target"].get<double>() == doctest::Approx(250));
    CHECK(rows[1]["reached_target"] == 0);
    CHECK(rows[1]["rounds_to_target"].is_null());
  }

  TEST_CASE("aggregation: honest nodes' accuracy apart when some cells have attackers") {
    auto cell = [](const std::string& group, double acc, json honest) {
      json c = {{"group", group}, {"final", {{"test_acc_mean", acc}}}};
      if (!honest.is_null()) c["honest_mean_acc"] = honest;
      return c;
    };
    const auto rows = run::aggregate(
        {cell("clean", 0.8, nullptr), cell("attacked", 0.5, 0.4), cell("attacked", 0.7, 0.6)}, 0);
    REQUIRE(rows.size() == 2);
    CHECK(rows[0]["honest_acc_mean"].get<double>() == doctest::Approx(0.8));  // all nodes
    CHECK(rows[1]["honest_acc_mean"].get<double>() == doctest::Approx(0.5));
    CHECK(rows[1]["final_acc_mean"].get<double>() == doctest::Approx(0.6));
    CHECK(run::compare_table({{"rows", rows}}).find("honest acc") != std::string::npos);
    // No attackers anywhere: no honest column.
    const auto plain = run::aggregate({cell("clean", 0.8, nullptr)}, 0);
    CHECK_FALSE(plain[0].contains("honest_acc_mean"));
    CHECK(run::compare_table({{"rows", plain}}).find("honest acc") == std::string::npos);
  }

  TEST_CASE("compare runs a grid, a rerun does no work, an interrupted grid completes") {
    const auto dir = std::filesystem::temp_directory_path() / "rumor_compare_test";
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    json base = small_base();
    std::ofstream(dir / "base.json") << base.dump();
    std::ofstream(dir / "grid.json") << json{
        {"name", "g"},
        {"base", "base.json"},
        {"axes", {{"method", {"dpsgd", "local"}}, {"seed", {1, 2}}}},
        {"target_acc", 0.3}}.dump();
    run::CompareOptions o;
    o.output_dir = (dir / "out").string();
    o.progress = false;
    o.plots = false;
    const auto first = run::run_compare((dir / "grid.json").string(), o);
    REQUIRE(first["cells"].size() == 4);
    REQUIRE(first["rows"].size() == 2);
    // Rerun: every cell is found finished, so no metrics file is rewritten.
    std::map<std::string, std::filesystem::file_time_type> stamps;
    for (const auto& e : std::filesystem::recursive_directory_iterator(dir / "out" / "runs"))
      if (e.path().filename() == "node-0.jsonl") stamps[e.path().string()] = e.last_write_time();
    REQUIRE(stamps.size() == 4);
    const auto second = run::run_compare((dir / "grid.json").string(), o);
    for (const auto& [path, t] : stamps) CHECK(std::filesystem::last_write_time(path) == t);
    CHECK(second["rows"] == first["rows"]);
    // Interrupt: one cell's run loses its summary (as if it died); only that one reruns.
    const std::string victim = first["cells"][2]["run_dir"];
    std::filesystem::remove(std::filesystem::path(victim) / "summary.json");
    std::filesystem::remove(std::filesystem::path(victim) / "node-0.jsonl");
    run::run_compare((dir / "grid.json").string(), o);
    CHECK(std::filesystem::exists(std::filesystem::path(victim) / "node-0.jsonl"));
    for (const auto& [path, t] : stamps)
      if (path.rfind(victim, 0) != 0) CHECK(std::filesystem::last_write_time(path) == t);
  }
}
