#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>

#include "rumor/common/error.hpp"
#include "rumor/config/config.hpp"

using namespace rumor;
using nlohmann::json;

namespace {
config::Config from(const json& j, std::vector<std::string> overrides = {}) {
  return config::Config::from_json(j, "test.json", RUMOR_SOURCE_DIR, overrides);
}
}  // namespace

TEST_SUITE("config") {
  TEST_CASE("every key has a default and the resolved config holds them all") {
    const auto c = from(json::object());
    for (const auto& k : config::keys()) {
      CAPTURE(k.path);
      if (k.path == "topology") continue;  // resolved to the topology itself
      CHECK(c.at(k.path) == k.default_value);
    }
    CHECK(c.at("topology")["nodes"].size() == 8);
    CHECK(config::keys_help().find("optimizer.lr") != std::string::npos);
  }

  TEST_CASE("unknown keys are refused with the nearest valid name") {
    CHECK_THROWS_WITH_AS(from({{"optimiser", {{"lr", 0.1}}}}),
                         doctest::Contains("did you mean \"optimizer"), ConfigError);
    CHECK_THROWS_WITH_AS(from({{"optimizer", {{"lr_", 0.1}}}}),
                         doctest::Contains("\"optimizer.lr\""), ConfigError);
    CHECK_THROWS_WITH_AS(from({{"rounds", "ten"}}), doctest::Contains("must be int"), ConfigError);
    CHECK_THROWS_WITH_AS(from({{"modle", {{"name", "mlp"}}}}), doctest::Contains("\"model\""),
                         ConfigError);
    CHECK_THROWS_WITH_AS(from({{"task", "dance"}}), doctest::Contains("train, average"),
                         ConfigError);
  }

  TEST_CASE("--set overrides any key, parsed as JSON or else as a string") {
    const auto c = from({{"optimizer", {{"lr", 0.1}}}},
                        {"optimizer.lr=0.05", "method.name=sgp", "model.hidden=[64,32]",
                         "topology={\"gen\":\"ring\",\"nodes\":4}"});
    CHECK(c.get<double>("optimizer.lr") == 0.05);
    CHECK(c.get<std::string>("method.name") == "sgp");
    CHECK(c.at("model.hidden") == json::array({64, 32}));
    CHECK(c.at("topology")["nodes"].size() == 4);
    CHECK_THROWS_AS(from({}, {"no-equals-sign"}), ConfigError);
    CHECK_THROWS_WITH_AS(from({}, {"optimizer.lrr=1"}), doctest::Contains("optimizer.lr"),
                         ConfigError);
  }

  TEST_CASE("the run id is the same for the same config and changes with it") {
    const json base = {{"name", "exp"}, {"seed", 3}, {"rounds", 10}};
    const auto a = from(base);
    const auto b = from(base);
    CHECK(a.run_id() == b.run_id());
    CHECK(a.run_id().rfind("exp-s3-", 0) == 0);
    CHECK(a.run_id().size() == std::string("exp-s3-").size() + 8);
    CHECK(from(base, {"rounds=11"}).run_id() != a.run_id());
    // The topology is part of the hash, not just its file name.
    CHECK(from(base, {"topology=topologies/ring16.json"}).run_id() != a.run_id());
    CHECK(a.run_dir() == "runs/" + a.run_id());
  }

  TEST_CASE("config files: syntax errors give line and column, missing files say so") {
    const auto dir = std::filesystem::temp_directory_path() / "rumor_config_test";
    std::filesystem::create_directories(dir);
    std::ofstream(dir / "bad.json") << "{\n  \"rounds\": 10,\n  \"seed\" 2\n}\n";
    CHECK_THROWS_WITH_AS(config::Config::load((dir / "bad.json").string()),
                         doctest::Contains("bad.json:3:"), ConfigError);
    CHECK_THROWS_WITH_AS(config::Config::load((dir / "none.json").string()),
                         doctest::Contains("no such file"), ConfigError);
    // Relative topology paths resolve against the config's folder too.
    std::ofstream(dir / "t.json") << R"({"nodes": [0, 1, 2], "edges": [[0, 1], [1, 2], [2, 0]]})";
    std::ofstream(dir / "ok.json") << R"({"topology": "t.json"})";
    CHECK(config::Config::load((dir / "ok.json").string()).at("topology")["nodes"].size() == 3);
  }

  TEST_CASE("network.base_port moves nodes without explicit ports") {
    const auto c = from({}, {"network.base_port=31000"});
    CHECK(c.at("topology")["nodes"][3]["port"] == 31003);
    // A launcher's choice of ports does not make it another run.
    CHECK(c.run_id() == from({}).run_id());
    CHECK(from({}, {"seed=2"}).run_id() != from({}).run_id());
  }
}
