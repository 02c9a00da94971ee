// A peer that completed the handshake sends bad payloads (faults.bad_node): its neighbours'
// gate refuses every one, counts it by reason, and the run finishes with the honest nodes'
// accuracy within half a point of an undisturbed run. Over both transports.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "cli/cli_run.hpp"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr int kNodes = 5;
constexpr int kBad = 2;

std::string hostile_config(const fs::path& dir) {
  const auto path = dir / "hostile.json";
  std::ofstream(path) << json{{"name", "hostile"},
                              {"seed", 4},
                              {"topology", {{"gen", "ring"}, {"nodes", kNodes}}},
                              {"method", {{"name", "dpsgd"}}},
                              {"model", {{"name", "logreg"}}},
                              {"data",
                               {{"dataset", "blobs"},
                                {"train_size", 2000},
                                {"test_size", 2000},
                                {"classes", 4},
                                {"separation", 6.0},
                                {"partition", {{"kind", "iid"}}}}},
                              {"rounds", 60},
                              {"eval", {{"every", 30}}},
                              {"network", {{"connect_timeout_s", 20}, {"round_timeout_s", 20}}},
                              {"output", {{"dir", (dir / "runs").string()}}}}
                             .dump();
  return path.string();
}

struct Outcome {
  double honest_acc = 0;       // mean final test accuracy of every node but kBad
  std::uint64_t rejected = 0;  // messages the neighbours refused
  json reasons;                // node 1's "rejected" field: {peer: {reason: count}}
};

Outcome run(const std::string& config, const std::string& sets, bool inprocess) {
  const auto r = cli_test::rumor("launch " + config + (inprocess ? " --inprocess" : "") +
                                 " --log-level warn " + sets);
  INFO(r.out);
  REQUIRE(r.code == 0);
  fs::path run_dir;
  const fs::path runs = fs::path(config).parent_path() / "runs";
  for (const auto& e : fs::directory_iterator(runs))
    if (fs::exists(e.path() / "summary.json") &&
        (run_dir.empty() || fs::last_write_time(e.path() / "summary.json") >
                                fs::last_write_time(run_dir / "summary.json")))
      run_dir = e.path();
  REQUIRE(!run_dir.empty());
  Outcome o;
  for (int i = 0; i < kNodes; ++i) {
    std::ifstream in(run_dir / ("node-" + std::to_string(i) + ".jsonl"));
    std::string line, last;
    while (std::getline(in, line)) last = line;
    const auto j = json::parse(last);
    REQUIRE(j["round"] == 59);
    if (i != kBad) o.honest_acc += j["test_acc"].get<double>() / (kNodes - 1);
    o.rejected += j.value("msgs_rejected", std::uint64_t{0});
    if (i == kBad - 1) o.reasons = j.value("rejected", json::object());
  }
  // summary.json adds them up and says who refused whom.
  std::ifstream in(run_dir / "summary.json");
  const auto summary = json::parse(in);
  CHECK(summary["msgs_rejected"].get<std::uint64_t>() == o.rejected);
  CHECK(summary.contains("rejected_by_node") == (o.rejected > 0));
  return o;
}

void check_every_bad_payload(bool inprocess) {
  const auto dir = cli_test::scratch(inprocess ? "hostile-inproc" : "hostile-tcp");
  const auto config = hostile_config(dir);
  // In-process the bad node sends bad payloads to the end and is left out after
  // network.max_rejects; over TCP for five rounds (fewer than max_rejects), so every node,
  // the bad one included, runs to the end.
  const std::string window = inprocess ? "[5,-1]" : "[5,9]";
  const Outcome clean = run(config, "", inprocess);
  CHECK(clean.rejected == 0);
  for (const std::string kind :
       {"nan", "huge", "truncate", "extend", "garbage", "codec_tag", "weight"}) {
    CAPTURE(kind);
    const Outcome bad =
        run(config,
            "--set faults.bad_node=" + std::to_string(kBad) + " --set faults.bad_payload=" + kind +
                " --set 'faults.bad_rounds=" + window + "'",
            inprocess);
    CHECK(bad.rejected > 0);
    // Node 1 is a neighbour of the bad node: it says why it refused.
    REQUIRE(bad.reasons.contains(std::to_string(kBad)));
    CHECK(bad.reasons[std::to_string(kBad)].size() >= 1);
    if (!inprocess) CHECK(bad.rejected == 2 * 5);  // two neighbours, five rounds
    CHECK(std::abs(bad.honest_acc - clean.honest_acc) <= 0.005);
  }
}

}  // namespace

TEST_SUITE("cli") {
  TEST_CASE("hostile peer, in-process: every kind of bad payload is refused and the run goes on") {
    check_every_bad_payload(true);
  }

  TEST_CASE("hostile peer, TCP: every kind of bad payload is refused and the run goes on") {
    check_every_bad_payload(false);
  }

  TEST_CASE("faults.bad_payload must be a known corruption") {
    const auto dir = cli_test::scratch("hostile-bad-name");
    const auto r =
        cli_test::rumor("launch " + hostile_config(dir) +
                        " --inprocess --set faults.bad_node=1 --set faults.bad_payload=x");
    CHECK(r.code != 0);
    CHECK(r.out.find("faults.bad_payload \"x\" is not one of nan, huge") != std::string::npos);
  }
}
