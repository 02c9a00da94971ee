#pragma once
// Comparing consensus methods: a grid of configs (the product of axes over a base config)
// run cell by cell, aggregated over seeds. Every cell with a given seed has the same
// partition, initial model and data order (all derive from the seed alone), so differences
// come from what the axes change.
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace rumor::run {

struct GridCell {
  std::string label;                   // "method=sgp codec=fp32 seed=1"
  std::string group;                   // the label without the seed: cells averaged together
  std::vector<std::string> overrides;  // --set assignments applied to the base config
  std::int64_t seed = 1;
};

struct Grid {
  std::string name;
  nlohmann::json base;  // the base config (a path is read and resolved against the grid file)
  std::string base_dir;
  std::vector<std::string> axes;  // axis names, in file order
  std::vector<GridCell> cells;
  double target_acc = 0.0;  // 0: no time-to-target
  // "full": {"key": value, ...}: overrides for the paper-sized run (`rumor compare --full`).
  std::vector<std::string> full_overrides;
};

// Reads GRID.json: {"base": CONFIG path or object, "axes": {"key.path": [values...]},
// "target_acc": 0.8, "name": "..."}. An axis value is a JSON value for that key; an object
// value sets several keys at once ({"method": "choco", "method.gamma": 0.4, "codec": ...},
// with an optional "label"); for "method", a string means method.name. Throws ConfigError.
Grid load_grid(const std::string& path);
// `axis_order`: the axes in file order (JSON objects here are sorted by key); empty: sorted.
Grid parse_grid(const nlohmann::json& j, const std::string& origin, const std::string& base_dir,
                const std::vector<std::string>& axis_order = {});

// Aggregates cell summaries (summary.json documents with a "cell" label and "group") into
// one row per group: mean and std over seeds and the time-to-target figures.
nlohmann::json aggregate(const std::vector<nlohmann::json>& cell_summaries, double target_acc);

struct CompareOptions {
  bool tcp = false;  // run cells over TCP (rumor launch) instead of in-process
  bool progress = true;
  std::string output_dir;  // default: compare/<grid name>
  bool plots = true;
  bool full = false;  // apply the grid's "full" overrides (bigger budget)
};

// Runs every unfinished cell, writes compare.json and compare.csv (and plots, when Python
// with matplotlib is there), prints the table; returns the compare.json document.
nlohmann::json run_compare(const std::string& grid_path, const CompareOptions& options);

// The table printed by run_compare.
std::string compare_table(const nlohmann::json& compare);

}  // namespace rumor::run
