#include "rumor/run/compare.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <sstream>

#include "rumor/common/error.hpp"
#include "rumor/common/log.hpp"
#include "rumor/config/config.hpp"
#include "rumor/data/partition.hpp"
#include "rumor/run/run.hpp"
#include "rumor/run/setup.hpp"

namespace rumor::run {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string value_text(const json& v) {
  return v.is_string() ? v.get<std::string>() : v.dump();
}

// The --set assignments and the label of one axis value.
std::pair<std::vector<std::string>, std::string> axis_value(const std::string& axis,
                                                            const json& v) {
  auto assign = [](const std::string& key, const json& value) {
    // "method": "sgp" names the method; any other key takes the value as it is.
    if (key == "method" && value.is_string()) return "method.name=" + value.get<std::string>();
    return key + "=" + (value.is_string() ? value.get<std::string>() : value.dump());
  };
  // An object sets several keys at once; for "topology" and "codec", whose values may be
  // objects themselves, only when it has a "label" or names the axis key.
  const bool several = v.is_object() && ((axis != "topology" && axis != "codec") ||
                                         v.contains("label") || v.contains(axis));
  if (several) {
    std::vector<std::string> sets;
    std::string label = v.value("label", "");
    std::string auto_label;
    for (const auto& [k, x] : v.items()) {
      if (k == "label") continue;
      sets.push_back(assign(k, x));
      auto_label += (auto_label.empty() ? "" : ",") + value_text(x);
    }
    return {sets, label.empty() ? auto_label : label};
  }
  std::string label = value_text(v);
  if (axis == "topology" && v.is_string()) label = fs::path(label).stem().string();
  if (axis == "topology" && v.is_object())
    label = v.value("gen", "topology") + std::to_string(v.value("nodes", 0));
  return {{assign(axis, v)}, label};
}

double mean_of(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? NAN : s / static_cast<double>(v.size());
}

double std_of(const std::vector<double>& v) {
  if (v.size() < 2) return 0.0;
  const double m = mean_of(v);
  double s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return std::sqrt(s / static_cast<double>(v.size() - 1));  // sample std over seeds
}

json num(double v) {
  return std::isfinite(v) ? json(v) : json(nullptr);
}

// Finished: a complete summary, or a recorded failure (rerun it by deleting failed.txt).
bool cell_done(const std::string& run_dir) {
  if (fs::exists(fs::path(run_dir) / "failed.txt")) return true;
  const auto p = fs::path(run_dir) / "summary.json";
  if (!fs::exists(p)) return false;
  json s;
  std::ifstream(p) >> s;
  return s.value("complete", false);
}

}  // namespace

Grid parse_grid(const json& j, const std::string& origin, const std::string& base_dir,
                const std::vector<std::string>& axis_order) {
  if (!j.is_object()) throw ConfigError(origin + ": a grid must be a JSON object");
  for (const auto& [k, v] : j.items())
    if (k != "base" && k != "axes" && k != "target_acc" && k != "name" && k != "description" &&
        k != "full")
      throw ConfigError(origin + ": unknown grid key \"" + k +
                        "\"; valid: base, axes, target_acc, name, description, full");
  Grid g;
  g.base_dir = base_dir;
  g.name = j.value("name", fs::path(origin).stem().string());
  g.target_acc = j.value("target_acc", 0.0);
  if (j.contains("full")) {
    if (!j["full"].is_object())
      throw ConfigError(origin + ": \"full\" must be an object of config keys to values");
    for (const auto& [k, v] : j["full"].items())
      g.full_overrides.push_back(k + "=" + (v.is_string() ? v.get<std::string>() : v.dump()));
    // Paths in the grid file are relative to its folder, wherever compare runs.
    g.full_overrides = config::anchor_overrides(g.full_overrides, base_dir);
  }
  if (!j.contains("base"))
    throw ConfigError(origin + ": missing \"base\" (a config path or object)");
  if (j["base"].is_string()) {
    fs::path p = j["base"].get<std::string>();
    if (!fs::exists(p) && fs::exists(fs::path(base_dir) / p)) p = fs::path(base_dir) / p;
    std::ifstream in(p);
    if (!in) throw ConfigError(origin + ": base config " + p.string() + " cannot be read");
    try {
      in >> g.base;
    } catch (const json::parse_error& e) {
      throw ConfigError(p.string() + ": JSON syntax error: " + e.what());
    }
    g.base_dir = p.parent_path().string().empty() ? "." : p.parent_path().string();
  } else {
    g.base = j["base"];
  }
  if (!j.contains("axes") || !j["axes"].is_object() || j["axes"].empty())
    throw ConfigError(origin + ": \"axes\" must be an object of key paths to value lists");
  // Expand the product; the seed axis (if any) is separated out for grouping.
  std::vector<std::pair<std::string, json>> axes;
  std::vector<std::string> names = axis_order;
  if (names.empty())
    for (const auto& [k, v] : j["axes"].items()) names.push_back(k);
  for (const auto& k : names) {
    const json& v = j["axes"].at(k);
    if (!v.is_array() || v.empty())
      throw ConfigError(origin + ": axis \"" + k + "\" must be a non-empty list of values");
    axes.push_back({k, v});
    g.axes.push_back(k);
  }
  std::vector<GridCell> cells{GridCell{}};
  for (const auto& [axis, values] : axes) {
    std::vector<GridCell> next;
    for (const auto& c : cells) {
      for (const auto& v : values) {
        GridCell d = c;
        auto [sets, label] = axis_value(axis, v);
        sets = config::anchor_overrides(sets, base_dir);
        d.overrides.insert(d.overrides.end(), sets.begin(), sets.end());
        d.label += (d.label.empty() ? "" : " ") + axis + "=" + label;
        if (axis == "seed") {
          if (!v.is_number_integer())
            throw ConfigError(origin + ": seed values must be integers, got " + v.dump());
          d.seed = v.get<std::int64_t>();
        } else {
          d.group += (d.group.empty() ? "" : " ") + axis + "=" + label;
        }
        next.push_back(d);
      }
    }
    cells = std::move(next);
  }
  for (auto& c : cells) {
    if (c.group.empty()) c.group = "all";
    if (std::find(g.axes.begin(), g.axes.end(), "seed") == g.axes.end())
      c.seed = g.base.value("seed", std::int64_t{1});
  }
  g.cells = std::move(cells);
  return g;
}

Grid load_grid(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw ConfigError(path + ": cannot open the grid file");
  nlohmann::ordered_json ordered;
  try {
    in >> ordered;
  } catch (const json::parse_error& e) {
    throw ConfigError(path + ": JSON syntax error: " + e.what());
  }
  // Cells are listed in the order the axes are written.
  std::vector<std::string> order;
  if (ordered.is_object() && ordered.contains("axes") && ordered["axes"].is_object())
    for (const auto& [k, v] : ordered["axes"].items()) order.push_back(k);
  const std::string dir = fs::path(path).parent_path().string();
  return parse_grid(json::parse(ordered.dump()), path, dir.empty() ? "." : dir, order);
}

json aggregate(const std::vector<json>& cells, double target_acc) {
  // A grid with attackers in some cells reports honest accuracy for every cell.
  const bool has_attackers = std::any_of(
      cells.begin(), cells.end(), [](const json& c) { return c.contains("honest_mean_acc"); });
  std::map<std::string, std::vector<const json*>> groups;
  std::vector<std::string> order;
  for (const auto& c : cells) {
    const std::string g = c.value("group", "all");
    if (!groups.count(g)) order.push_back(g);
    groups[g].push_back(&c);
  }
  json rows = json::array();
  for (const auto& g : order) {
    std::vector<double> final_acc, best_acc, avg_acc, mb, trigger, consensus, rounds_t, time_t,
        mb_t, sim_t, honest;
    int reached = 0;
    for (const json* c : groups[g]) {
      const auto& f = (*c)["final"];
      if (f.contains("test_acc_mean") && f["test_acc_mean"].is_number())
        final_acc.push_back(f["test_acc_mean"]);
      if ((*c)["best_test_acc_mean"].is_number()) best_acc.push_back((*c)["best_test_acc_mean"]);
      if (f.contains("avg_model_acc")) avg_acc.push_back(f["avg_model_acc"]);
      if (f.contains("consensus_dist") && f["consensus_dist"].is_number())
        consensus.push_back(f["consensus_dist"]);
      if (c->contains("honest_mean_acc") && (*c)["honest_mean_acc"].is_number())
        honest.push_back((*c)["honest_mean_acc"]);
      mb.push_back(c->value("mb_sent", 0.0));
      trigger.push_back(c->value("trigger_rate", 1.0));
      if (target_acc > 0 && c->contains("curve")) {
        for (const auto& p : (*c)["curve"]) {
          if (p.contains("test_acc") && p["test_acc"].get<double>() >= target_acc) {
            rounds_t.push_back(p["round"].get<double>() + 1);
            time_t.push_back(p.value("time_s", NAN));
            mb_t.push_back(p.value("mb_sent", NAN));
            if (p.contains("sim_time_s")) sim_t.push_back(p["sim_time_s"].get<double>());
            ++reached;
            break;
          }
        }
      }
    }
    json row = {{"group", g},
                {"seeds", groups[g].size()},
                {"final_acc_mean", num(mean_of(final_acc))},
                {"final_acc_std", num(std_of(final_acc))},
                {"best_acc_mean", num(mean_of(best_acc))},
                {"best_acc_std", num(std_of(best_acc))},
                {"avg_model_acc_mean", num(mean_of(avg_acc))},
                {"mb_sent_mean", num(mean_of(mb))},
                {"trigger_rate_mean", num(mean_of(trigger))},
                {"consensus_dist_mean", num(mean_of(consensus))}};
    // faults.byzantine: the honest nodes' final accuracy (cells without attackers: all nodes).
    if (!honest.empty() || has_attackers) {
      if (honest.empty()) honest = final_acc;
      row["honest_acc_mean"] = num(mean_of(honest));
      row["honest_acc_std"] = num(std_of(honest));
    }
    if (target_acc > 0) {
      row["target_acc"] = target_acc;
      row["reached_target"] = reached;
      // Means over the seeds that reached the target (how many did is in reached_target).
      row["rounds_to_target"] = num(mean_of(rounds_t));
      row["time_to_target_s"] = num(mean_of(time_t));
      row["mb_to_target"] = num(mean_of(mb_t));
      // In-process runs: simulated seconds (independent of the machine's load).
      if (!sim_t.empty()) row["sim_time_to_target_s"] = num(mean_of(sim_t));
    }
    rows.push_back(row);
  }
  return rows;
}

std::string compare_table(const json& compare) {
  std::ostringstream out;
  const bool target = compare.value("target_acc", 0.0) > 0;
  std::size_t w = 5;
  for (const auto& r : compare["rows"]) w = std::max(w, r["group"].get<std::string>().size());
  out << std::left << std::setw(static_cast<int>(w)) << "cell" << std::right
      << "  seeds  final acc (std)  best acc  avg model    MB sent  trigger  consensus";
  bool sim = false;
  for (const auto& r : compare["rows"]) sim = sim || r.contains("sim_time_to_target_s");
  bool honest = false;
  for (const auto& r : compare["rows"]) honest = honest || r.contains("honest_acc_mean");
  if (honest) out << "  honest acc (std)";
  if (target) out << "  rounds>=" << compare["target_acc"].get<double>() << "  MB to target";
  if (target && sim) out << "  sim s to target";
  out << "\n";
  auto f = [](const json& v, int prec, int width) {
    std::ostringstream s;
    if (v.is_number())
      s << std::fixed << std::setprecision(prec) << v.get<double>();
    else
      s << "-";
    std::string t = s.str();
    return std::string(
               static_cast<std::size_t>(std::max<int>(0, width - static_cast<int>(t.size()))),
               ' ') +
           t;
  };
  for (const auto& r : compare["rows"]) {
    std::ostringstream cons;
    if (r["consensus_dist_mean"].is_number())
      cons << std::scientific << std::setprecision(2) << r["consensus_dist_mean"].get<double>();
    else
      cons << "-";
    out << std::left << std::setw(static_cast<int>(w)) << r["group"].get<std::string>()
        << std::right << std::setw(7) << r["seeds"].get<int>() << "  "
        << f(r["final_acc_mean"], 4, 8) << " (" << f(r["final_acc_std"], 4, 6) << ")"
        << f(r["best_acc_mean"], 4, 10) << f(r["avg_model_acc_mean"], 4, 11)
        << f(r["mb_sent_mean"], 1, 11) << f(r["trigger_rate_mean"], 3, 9) << std::setw(11)
        << cons.str();
    if (honest)
      out << "  " << f(r.value("honest_acc_mean", json()), 4, 10) << " ("
          << f(r.value("honest_acc_std", json()), 4, 6) << ")";
    if (target)
      out << f(r["rounds_to_target"], 0, 11) << f(r["mb_to_target"], 1, 14)
          << (sim ? f(r.value("sim_time_to_target_s", json()), 3, 17) : std::string()) << "  ("
          << r["reached_target"].get<int>() << "/" << r["seeds"].get<int>() << " reached)";
    out << "\n";
  }
  return out.str();
}

namespace {

// --full: the grid's paper-sized overrides go first, so a cell's own settings win.
void apply_full_overrides(Grid& grid, const std::string& grid_path) {
  if (grid.full_overrides.empty())
    throw ConfigError(grid_path + ": --full, but the grid has no \"full\" overrides");
  for (auto& cell : grid.cells)
    cell.overrides.insert(cell.overrides.begin(), grid.full_overrides.begin(),
                          grid.full_overrides.end());
}

// A cell's --set assignments: its overrides, with its run written below the comparison folder.
std::vector<std::string> cell_sets(const GridCell& cell, const fs::path& out_dir) {
  std::vector<std::string> sets = cell.overrides;
  sets.push_back("output.dir=" + (out_dir / "runs").string());
  return sets;
}

config::Config cell_config(const Grid& grid, const std::string& grid_path,
                           const std::vector<std::string>& sets) {
  return config::Config::from_json(grid.base, grid_path, grid.base_dir, sets);
}

// Runs one cell: over TCP as `rumor launch` would, or in this process.
void run_cell(const Grid& grid, const GridCell& cell, const config::Config& cfg,
              const std::vector<std::string>& sets, const fs::path& base_path,
              const CompareOptions& options) {
  const std::string run_dir = cfg.run_dir();
  if (options.tcp) {
    // Cells over TCP: the base config file (with paths already resolved) plus the cell's
    // overrides, exactly as `rumor launch` would run them.
    json resolved_base = grid.base;
    if (resolved_base.contains("topology")) resolved_base["topology"] = cfg.at("topology");
    for (const auto& key : config::path_keys()) {
      std::string ptr = "/" + key;
      std::replace(ptr.begin(), ptr.end(), '.', '/');
      if (resolved_base.contains(json::json_pointer(ptr)))
        resolved_base[json::json_pointer(ptr)] = cfg.at(key);
    }
    resolved_base["rumor"]["paths_as_written"] = cfg.paths_as_written();
    std::ofstream(base_path) << resolved_base.dump(2) << "\n";
    LaunchOptions lo;
    lo.config_path = base_path.string();
    lo.overrides = sets;
    lo.progress = options.progress;
    if (launch(lo) != 0) throw Error("compare: cell '" + cell.label + "' failed; see " + run_dir);
    return;
  }
  RunOptions ro;
  ro.progress = options.progress;
  try {
    run_inprocess(cfg, ro);
  } catch (const Error& e) {
    // A cell that fails (diverges, say) is a result too: recorded, the grid goes on.
    std::cerr << "compare: cell '" << cell.label << "' failed: " << e.what() << "\n";
    fs::create_directories(run_dir);
    std::ofstream(fs::path(run_dir) / "failed.txt") << e.what() << "\n";
  }
}

struct CellResults {
  std::vector<json> summaries;
  json failed = json::array();
};

// Runs every unfinished cell, then collects each cell's summary (or why it failed).
CellResults run_cells(const Grid& grid, const std::string& grid_path, const fs::path& out_dir,
                      const fs::path& base_path, const CompareOptions& options) {
  CellResults out;
  std::size_t index = 0, ran = 0;
  for (const auto& cell : grid.cells) {
    ++index;
    const std::vector<std::string> sets = cell_sets(cell, out_dir);
    const auto cfg = cell_config(grid, grid_path, sets);
    const std::string run_dir = cfg.run_dir();
    if (!cell_done(run_dir)) {
      std::cerr << "compare: cell " << index << "/" << grid.cells.size() << ": " << cell.label
                << "\n";
      run_cell(grid, cell, cfg, sets, base_path, options);
      ++ran;
    }
    if (fs::exists(fs::path(run_dir) / "failed.txt")) {
      std::ifstream in(fs::path(run_dir) / "failed.txt");
      std::string why((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      while (!why.empty() && why.back() == '\n') why.pop_back();
      out.failed.push_back({{"cell", cell.label}, {"group", cell.group}, {"error", why}});
      continue;
    }
    json s = summarize(run_dir);
    s["cell"] = cell.label;
    s["group"] = cell.group;
    s["seed"] = cell.seed;
    out.summaries.push_back(s);
  }
  if (ran == 0) std::cerr << "compare: all " << grid.cells.size() << " cells already done\n";
  return out;
}

constexpr std::size_t kMaxPartitionPanels = 12;

// The partitions the cells trained on, once per distinct data setting (for the histogram).

json cell_partitions(const Grid& grid, const std::string& grid_path, const fs::path& out_dir) {
  json partitions = json::array();
  std::map<std::string, bool> seen;
  for (const auto& cell : grid.cells) {
    const auto cfg = cell_config(grid, grid_path, cell_sets(cell, out_dir));
    if (cfg.get<std::string>("task") != "train") break;
    const std::string key = cfg.at("data").dump() + "/" +
                            std::to_string(cfg.get<std::int64_t>("seed")) + "/" +
                            std::to_string(cfg.at("topology")["nodes"].size());
    if (seen[key]) continue;
    seen[key] = true;
    const auto data = load_data(cfg);
    const auto part =
        partition_of(cfg, *data, static_cast<int>(cfg.at("topology")["nodes"].size()));
    const auto st = data::partition_stats(part, data->train.labels, data->num_classes);
    partitions.push_back({{"cell", cell.label},
                          {"seed", cfg.get<std::int64_t>("seed")},
                          {"partition", cfg.at("data")["partition"]},
                          {"label_skew", st.label_skew},
                          {"counts", st.counts}});
    // A bound on the picture, not on the grid: beyond it panels become unreadable.
    if (partitions.size() >= kMaxPartitionPanels) break;
  }
  return partitions;
}

void write_compare_csv(const fs::path& path, const json& rows) {
  std::ofstream csv(path);
  const std::vector<std::string> cols = {"group",
                                         "seeds",
                                         "final_acc_mean",
                                         "final_acc_std",
                                         "best_acc_mean",
                                         "best_acc_std",
                                         "avg_model_acc_mean",
                                         "mb_sent_mean",
                                         "trigger_rate_mean",
                                         "consensus_dist_mean",
                                         "reached_target",
                                         "rounds_to_target",
                                         "time_to_target_s",
                                         "mb_to_target",
                                         "sim_time_to_target_s"};
  for (std::size_t i = 0; i < cols.size(); ++i) csv << (i ? "," : "") << cols[i];
  csv << "\n";
  for (const auto& r : rows) {
    for (std::size_t i = 0; i < cols.size(); ++i) {
      csv << (i ? "," : "");
      if (!r.contains(cols[i]) || r[cols[i]].is_null()) continue;
      csv << (r[cols[i]].is_string() ? r[cols[i]].get<std::string>() : r[cols[i]].dump());
    }
    csv << "\n";
  }
}

// Plots need Python and matplotlib (Debian's python3-matplotlib); skip quietly otherwise.
void draw_plots(const fs::path& compare_json) {
  const fs::path script = fs::path(RUMOR_TOOLS_DIR) / "plot_compare.py";
  if (!fs::exists(script) || !fs::exists("/usr/bin/python3")) return;
  const std::string cmd =
      "/usr/bin/python3 '" + script.string() + "' '" + compare_json.string() + "' 1>&2";
  if (std::system(cmd.c_str()) != 0)
    log::warn(
        "compare: plotting failed (is python3-matplotlib installed?); the tables "
        "are written");
}

}  // namespace

json run_compare(const std::string& grid_path, const CompareOptions& options) {
  Grid grid = load_grid(grid_path);
  if (options.full) apply_full_overrides(grid, grid_path);
  const fs::path out_dir = options.output_dir.empty()
                               ? fs::path("compare") / (grid.name + (options.full ? "-full" : ""))
                               : fs::path(options.output_dir);
  fs::create_directories(out_dir);
  // Cells write their runs below the comparison folder; the base config is kept there too
  // so that TCP cells (separate processes) read the same document.
  const fs::path base_path = out_dir / "base.json";
  std::ofstream(base_path) << grid.base.dump(2) << "\n";
  const CellResults results = run_cells(grid, grid_path, out_dir, base_path, options);
  const json partitions = cell_partitions(grid, grid_path, out_dir);
  json doc = {
      {"grid", grid.name},          {"grid_file", grid_path},
      {"axes", grid.axes},          {"target_acc", grid.target_acc},
      {"cells", results.summaries}, {"failed", results.failed},
      {"partitions", partitions},   {"rows", aggregate(results.summaries, grid.target_acc)}};
  std::ofstream(out_dir / "compare.json") << doc.dump(2) << "\n";
  write_compare_csv(out_dir / "compare.csv", doc["rows"]);
  std::cout << compare_table(doc);
  for (const auto& f : results.failed)
    std::cout << "failed: " << f["cell"].get<std::string>() << ": " << f["error"].get<std::string>()
              << "\n";
  if (options.plots) draw_plots(out_dir / "compare.json");
  std::cerr << "compare: results in " << out_dir.string() << "\n";
  return doc;
}

}  // namespace rumor::run
