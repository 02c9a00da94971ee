// The golden comparison of run outputs: node lines and summary.json without wall-clock
// fields, and a key-by-key comparison that allows keys added since.
#pragma once

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace golden_compare {

namespace fs = std::filesystem;
using nlohmann::json;

// Fields that measure the machine (wall clock) or name the run: where it was written, and
// its id (a hash of the resolved config, which changes whenever an option is added).
// Fields that measure the machine (wall clock, memory) or name the run.
inline const std::set<std::string> kWallClock = {
    "time_s",  "wall_time_s", "round_ms_mean",      "round_ms_median",
    "run_dir", "run_id",      "peak_rss_mb_by_node"};

inline json without_wall_clock(const json& v) {
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

inline json read_json(const fs::path& p) {
  std::ifstream in(p);
  REQUIRE_MESSAGE(in.good(), "cannot read " << p);
  return json::parse(in);
}

// What a run left: node lines in node order, summary.json, in_flight.json when present.
inline json outputs_of(const fs::path& run_dir) {
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

// Every key of `want` (recursively) has the same value in `got`; returns the differences.
inline void compare(const json& want, const json& got, const std::string& where,
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

inline fs::path only_subdir(const fs::path& dir) {
  std::vector<fs::path> subs;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_directory()) subs.push_back(e.path());
  REQUIRE_MESSAGE(subs.size() == 1, "expected one run directory in " << dir);
  return subs.front();
}

}  // namespace golden_compare
