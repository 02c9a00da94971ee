// Golden outputs: the runs listed in tests/golden/runs.json must give the same metrics as
// when they were recorded. Every key a recorded node line or summary.json has (wall-clock
// fields aside) must hold the same value; keys added since are allowed beside them.
// RUMOR_GOLDEN_RECORD=1 rewrites the recorded files instead (only for an intended change).
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cli/cli_run.hpp"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Fields that measure the machine (wall clock, memory) or name the run: where it was written, and
// its id (a hash of the resolved config, which changes whenever an option is added).
const std::set<std::string> kWallClock = {
    "time_s",  "wall_time_s", "round_ms_mean",      "round_ms_median",
    "run_dir", "run_id",      "peak_rss_mb_by_node"};

json without_wall_clock(const json& v) {
  if (v.is_object()) {
    json out = json::object();
    for (const auto& [k, x] : v.items())
      if (!kWallClock.count(k)) out[k] = without_wall_clock(x);
    return out;
  }
  if (v.is_array()) {
    json out = json::array();
    for (const auto& x : v) out.push_back(without_wall_clock(x));
    return out;
  }
  return v;
}

json read_json(const fs::path& p) {
  std::ifstream in(p);
  REQUIRE_MESSAGE(in.good(), "cannot read " << p);
  return json::parse(in);
}

// What a run left: node lines in node order, summary.json, in_flight.json when present.
json outputs_of(const fs::path& run_dir) {
  json out = {{"nodes", json::array()}};
  for (int i = 0;; ++i) {
    const auto path = run_dir / ("node-" + std::to_string(i) + ".jsonl");
    if (!fs::exists(path)) break;
    json lines = json::array();
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) lines.push_back(without_wall_clock(json::parse(line)));
    out["nodes"].push_back(lines);
  }
  out["summary"] = without_wall_clock(read_json(run_dir / "summary.json"));
  if (fs::exists(run_dir / "in_flight.json"))
    out["in_flight"] = read_json(run_dir / "in_flight.json");
  return out;
}

// One node line per text line, so a change shows as a readable diff.
void write_golden(const fs::path& path, const json& g) {
  std::ofstream out(path);
  out << "{\"summary\": " << g["summary"].dump() << ",\n";
  if (g.contains("in_flight")) out << " \"in_flight\": " << g["in_flight"].dump() << ",\n";
  out << " \"nodes\": [\n";
  for (std::size_t i = 0; i < g["nodes"].size(); ++i) {
    out << "  [\n";
    const auto& lines = g["nodes"][i];
    for (std::size_t k = 0; k < lines.size(); ++k)
      out << "   " << lines[k].dump() << (k + 1 < lines.size() ? ",\n" : "\n");
    out << "  ]" << (i + 1 < g["nodes"].size() ? ",\n" : "\n");
  }
  out << " ]}\n";
}

// Every key of `want` (recursively) has the same value in `got`; returns the differences.
void compare(const json& want, const json& got, const std::string& where,
             std::vector<std::string>& diffs) {
  if (diffs.size() >= 20) return;
  if (want.is_object()) {
    if (!got.is_object()) {
      diffs.push_back(where + ": expected an object, got " + got.dump());
      return;
    }
    for (const auto& [k, v] : want.items()) {
      if (!got.contains(k)) {
        diffs.push_back(where + "." + k + ": missing (was " + v.dump() + ")");
        continue;
      }
      compare(v, got[k], where + "." + k, diffs);
    }
    return;
  }
  if (want.is_array() && got.is_array() && want.size() == got.size()) {
    for (std::size_t i = 0; i < want.size(); ++i)
      compare(want[i], got[i], where + "[" + std::to_string(i) + "]", diffs);
    return;
  }
  if (want != got) diffs.push_back(where + ": was " + want.dump() + ", now " + got.dump());
}

fs::path only_subdir(const fs::path& dir) {
  std::vector<fs::path> subs;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_directory()) subs.push_back(e.path());
  REQUIRE_MESSAGE(subs.size() == 1, "expected one run directory in " << dir);
  return subs.front();
}

void check_golden(const json& run) {
  const std::string name = run.at("name");
  const fs::path golden = fs::path(RUMOR_SOURCE_DIR) / "tests" / "golden";
  const auto dir = cli_test::scratch("golden-" + name);
  std::string cmd = "cd " + std::string(RUMOR_SOURCE_DIR) + " && " + cli_test::rumor_path() +
                    " launch " + (golden / run.at("config").get<std::string>()).string() +
                    (run.at("inprocess").get<bool>() ? " --inprocess" : "") +
                    " --log-level warn --set output.dir=" + dir.string();
  for (const auto& s : run.at("set")) cmd += " --set '" + s.get<std::string>() + "'";
  const auto r = cli_test::shell(cmd);
  INFO(cmd);
  INFO(r.out);
  REQUIRE(r.code == 0);
  const json got = outputs_of(only_subdir(dir));
  const fs::path file = golden / (name + ".json");
  if (const char* rec = std::getenv("RUMOR_GOLDEN_RECORD"); rec && std::string(rec) == "1") {
    write_golden(file, got);
    MESSAGE("recorded " << file.string());
    return;
  }
  REQUIRE_MESSAGE(fs::exists(file), "no golden file " << file << " (record it first)");
  const json want = read_json(file);
  REQUIRE(want.at("nodes").size() == got.at("nodes").size());
  std::vector<std::string> diffs;
  compare(want, got, name, diffs);
  std::ostringstream all;
  for (const auto& d : diffs) all << d << "\n";
  CHECK_MESSAGE(diffs.empty(), "metrics moved against tests/golden/" << name << ".json:\n"
                                                                     << all.str());
}

json golden_runs() {
  return read_json(fs::path(RUMOR_SOURCE_DIR) / "tests" / "golden" / "runs.json").at("runs");
}

}  // namespace

TEST_SUITE("golden") {
  TEST_CASE("golden outputs: in-process runs of every method give the recorded metrics") {
    for (const auto& run : golden_runs()) {
      if (!run.at("inprocess").get<bool>()) continue;
      CAPTURE(run.at("name").get<std::string>());
      check_golden(run);
    }
  }

  TEST_CASE("golden outputs: TCP runs give the recorded metrics") {
    for (const auto& run : golden_runs()) {
      if (run.at("inprocess").get<bool>()) continue;
      CAPTURE(run.at("name").get<std::string>());
      check_golden(run);
    }
  }
}
