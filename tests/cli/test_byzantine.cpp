// Byzantine attackers over both transports (faults.byzantine): the attack is a well-formed
// model, so the gate lets it through and only the aggregation rule can limit it; the
// summary reports the honest nodes apart; --dry-run refuses robust mixing where it does
// not fit.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "cli/cli_run.hpp"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Torus of 9 on loopback, logistic regression on blobs; node 4 attacks.
std::string byzantine_config(const fs::path& dir) {
  const auto path = dir / "byzantine.json";
  std::ofstream(path) << json{{"name", "byzantine"},
                              {"seed", 2},
                              {"topology", {{"gen", "torus"}, {"nodes", 9}}},
                              {"method", {{"name", "dpsgd"}}},
                              {"model", {{"name", "logreg"}}},
                              {"data",
                               {{"dataset", "blobs"},
                                {"train_size", 1800},
                                {"test_size", 600},
                                {"partition", {{"kind", "iid"}}}}},
                              {"rounds", 40},
                              {"eval", {{"every", 20}}},
                              {"network", {{"connect_timeout_s", 20}, {"round_timeout_s", 20}}},
                              {"output", {{"dir", (dir / "runs").string()}}}}
                             .dump();
  return path.string();
}

json run_summary(const std::string& config, const std::string& sets, bool inprocess) {
  const auto r = cli_test::rumor("launch " + config + (inprocess ? " --inprocess" : "") +
                                 " --log-level warn " + sets);
  INFO(r.out);
  REQUIRE(r.code == 0);
  fs::path newest;
  for (const auto& e : fs::directory_iterator(fs::path(config).parent_path() / "runs"))
    if (fs::exists(e.path() / "summary.json") &&
        (newest.empty() || fs::last_write_time(e.path() / "summary.json") >
                               fs::last_write_time(newest / "summary.json")))
      newest = e.path();
  REQUIRE(!newest.empty());
  std::ifstream in(newest / "summary.json");
  return json::parse(in);
}

void check_attack_goes_through(bool inprocess) {
  const auto dir = cli_test::scratch(inprocess ? "byzantine-inproc" : "byzantine-tcp");
  const auto config = byzantine_config(dir);
  const json clean = run_summary(config, "", inprocess);
  CHECK_FALSE(clean.contains("honest_mean_acc"));
  const json attacked = run_summary(
      config, "--set 'faults.byzantine={\"nodes\": [4], \"attack\": \"sign-flip\"}'", inprocess);
  CHECK(attacked["byzantine_nodes"] == json({4}));
  CHECK(attacked["honest_nodes"] == 8);
  // A well-formed model: nothing refused, every node finished, and the result moved.
  CHECK(attacked["msgs_rejected"] == 0);
  CHECK(attacked["nodes_finished"] == 9);
  CHECK(attacked["honest_mean_acc"] != clean["final"]["test_acc_mean"]);
}

}  // namespace

TEST_SUITE("cli") {
  TEST_CASE("byzantine attacker, in-process: its attack passes the gate and is reported apart") {
    check_attack_goes_through(true);
  }

  TEST_CASE("byzantine attacker, TCP: its attack passes the gate and is reported apart") {
    check_attack_goes_through(false);
  }

  TEST_CASE("--dry-run refuses robust mixing and attackers where they do not fit") {
    const auto dir = cli_test::scratch("byzantine-dry");
    const auto config = byzantine_config(dir);
    auto r = cli_test::rumor("launch " + config +
                             " --dry-run --set method.name=sgp --set method.aggregation=clip");
    CHECK(r.code != 0);
    CHECK(r.out.find("push-sum") != std::string::npos);
    r = cli_test::rumor("launch " + config +
                        " --dry-run --set method.name=choco --set codec=topk:0.5 "
                        "--set method.aggregation=median");
    CHECK(r.code != 0);
    CHECK(r.out.find("public copies") != std::string::npos);
    r = cli_test::rumor("launch " + config + " --dry-run --set method.aggregation=clip");
    CHECK(r.code == 0);
    r = cli_test::rumor("launch " + config +
                        " --dry-run --set 'faults.byzantine={\"nodes\": [9], \"attack\": "
                        "\"zero\"}'");
    CHECK(r.code != 0);
    CHECK(r.out.find("not a node id") != std::string::npos);
  }
}
