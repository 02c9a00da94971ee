// summary.json and summary.csv from the per-node metrics files of a run directory.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include "node_files.hpp"
#include "rumor/common/error.hpp"
#include "rumor/run/peer.hpp"
#include "rumor/run/run.hpp"
#include "rumor/run/setup.hpp"

namespace rumor::run {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const char* const kColumns[] = {"loss",       "train_acc", "test_acc",     "consensus_dist",
                                "bytes_sent", "msgs_sent", "msgs_skipped", "ctrl_bytes",
                                "ps_weight",  "time_s",    "sim_time_s",   "msgs_late",
                                "msgs_missed"};

struct Agg {
  double sum = 0, min = INFINITY, max = -INFINITY;
  int count = 0;
  void add(double v) {
    sum += v;
    min = std::min(min, v);
    max = std::max(max, v);
    ++count;
  }
  double mean() const { return count ? sum / count : NAN; }
};

double median(std::vector<double> v) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  const std::size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

// The node id of a metrics file name "node-<id>.jsonl"; -1 for any other name.
int metrics_file_node(const std::string& name) {
  const std::string prefix = "node-", suffix = ".jsonl";
  if (name.size() <= prefix.size() + suffix.size() || name.rfind(prefix, 0) != 0 ||
      name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0)
    return -1;
  const std::string digits =
      name.substr(prefix.size(), name.size() - prefix.size() - suffix.size());
  if (digits.size() > 9 || digits.find_first_not_of("0123456789") != std::string::npos) return -1;
  return std::stoi(digits);
}

json number_or_null(double v) {
  return std::isfinite(v) ? json(v) : json(nullptr);
}

// Each node's evaluation lines (with test_acc) and its last line, in file order, by node id:
// what the summary reads beyond the per-round columns. Every line is not kept: 10,000 peers
// of 100 rounds would hold a million parsed lines (about 2 KB each) in memory.
using NodeLines = std::map<int, std::vector<json>>;
// Per round, per column: the figures over the nodes that logged it.
using RoundColumns = std::map<std::int64_t, std::map<std::string, Agg>>;

struct Columns {
  RoundColumns rounds;
  std::map<int, std::vector<double>> node_round_times;  // each node's round durations
};

// The rounds a node ran, for who was out and when: its first round, and every gap between
// two rounds it logged one after the other (with the clock, simulated in-process, at both).
struct Gap {
  std::int64_t after, before;
  double seconds;
};
struct Span {
  std::int64_t first = -1, last = -1;
  double clock = 0;
  bool simulated = false;
  std::vector<Gap> gaps;
  void add(const json& l) {
    const std::int64_t r = l.value("round", std::int64_t{-1});
    simulated = l.contains("sim_time_s");
    const double t = l.value("sim_time_s", l.value("time_s", 0.0));
    if (first < 0) first = r;
    if (last >= 0 && r > last + 1) gaps.push_back({last, r, t - clock});
    last = r;
    clock = t;
  }
};

struct Metrics {
  NodeLines nodes;
  Columns columns;
  std::map<int, Span> spans;
};

// One metrics line of node `id` into the columns; prev_t and first follow the node's lines.
void add_to_columns(Columns& out, int id, const json& l, double& prev_t, bool& first) {
  const std::int64_t r = l.value("round", std::int64_t{-1});
  for (const char* c : kColumns)
    if (l.contains(c) && l[c].is_number()) out.rounds[r][c].add(l[c].get<double>());
  const double t = l.value("time_s", 0.0);
  // Evaluation rounds are slower, and the first round includes start-up: left out.
  if (!first && !l.contains("test_acc") && !l.contains("consensus_dist"))
    out.node_round_times[id].push_back(t - prev_t);
  prev_t = t;
  first = false;
}

// One node's file: its lines into the columns, its evaluation lines and last line kept.
void read_node(const fs::path& path, int id, Metrics& out) {
  std::ifstream in(path);
  std::string line;
  int number = 0;
  auto& kept = out.nodes[id];
  std::optional<json> last;
  double prev_t = 0;
  bool first = true;
  while (std::getline(in, line)) {
    ++number;
    if (line.empty()) continue;
    try {
      json l = json::parse(line);
      add_to_columns(out.columns, id, l, prev_t, first);
      out.spans[id].add(l);
      if (last && last->contains("test_acc")) kept.push_back(std::move(*last));
      last = std::move(l);
    } catch (const json::parse_error&) {
      // A crash can cut the last line short; anything else is damage worth reporting.
      if (in.peek() != EOF)
        throw Error(path.string() + ":" + std::to_string(number) + ": not a JSON metrics line");
    }
  }
  if (last) kept.push_back(std::move(*last));
}

Metrics read_metrics(const std::string& run_dir) {
  if (!fs::is_directory(run_dir))
    throw Error(run_dir + ": not a run directory (it does not exist)");
  std::map<int, fs::path> files;  // read in id order: the columns add up in that order
  for (const auto& entry : fs::directory_iterator(run_dir))
    if (const int id = metrics_file_node(entry.path().filename().string()); id >= 0)
      files[id] = entry.path();
  Metrics out;
  for (const auto& [id, path] : files) read_node(path, id, out);
  if (out.nodes.empty()) throw Error(run_dir + ": no node-<i>.jsonl metrics files");
  return out;
}

// summary.csv: one row per round, mean/min/max over nodes.
void write_summary_csv(const fs::path& path, const RoundColumns& rounds) {
  std::ofstream csv(path);
  csv << "round,nodes";
  for (const char* c : kColumns) csv << "," << c << "_mean," << c << "_min," << c << "_max";
  csv << "\n";
  for (const auto& [r, cols] : rounds) {
    int reporting = 0;
    for (const auto& [c, a] : cols) reporting = std::max(reporting, a.count);
    csv << r << "," << reporting;
    for (const char* c : kColumns) {
      auto it = cols.find(c);
      if (it == cols.end()) {
        csv << ",,,";
      } else {
        csv << "," << it->second.mean() << "," << it->second.min << "," << it->second.max;
      }
    }
    csv << "\n";
  }
}

// Nodes that left the run gracefully, each with the first round it did not run: from
// node-<i>.end.json (a TCP node) or membership.json (an in-process run). A run is complete
// without the rounds a node left planned.
std::map<int, std::int64_t> graceful_leaves(const std::string& run_dir, const NodeLines& nodes) {
  std::map<int, std::int64_t> out;
  auto read = [](const fs::path& path) {
    std::ifstream in(path);
    if (!in) return json();
    try {
      return json::parse(in);
    } catch (const json::exception& e) {
      throw Error(path.string() + ": " + e.what());
    }
  };
  for (const auto& [id, lines] : nodes)
    if (const json end = read(node_end_path(run_dir, id)); end.contains("left_before_round"))
      out[id] = end["left_before_round"].get<std::int64_t>();
  const json m = read(fs::path(run_dir) / "membership.json");
  if (m.is_object() && m.contains("events"))
    for (const auto& e : m["events"])
      if (e.value("event", "") == "left")
        out[e.at("node").get<int>()] = e.at("out_from_round").get<std::int64_t>();
  return out;
}

// What ran and how far: method, topology, rounds, and which nodes finished (or left).
void add_run_facts(json& s, const std::string& run_dir, const json& cfg, const NodeLines& nodes,
                   int n, std::int64_t last_round, const std::map<int, std::int64_t>& left) {
  const std::int64_t planned = cfg.value("rounds", std::int64_t{0});
  s["run_dir"] = run_dir;
  s["run_id"] = cfg.contains("rumor") ? cfg["rumor"].value("run_id", "") : "";
  s["method"] = cfg.contains("method") ? cfg["method"].value("name", "") : "";
  s["codec"] = cfg.value("codec", json("fp32"));
  s["topology"] = cfg.contains("topology") ? cfg["topology"].value("name", "") : "";
  s["task"] = cfg.value("task", "train");
  s["nodes"] = n;
  s["nodes_reporting"] = nodes.size();
  s["rounds"] = last_round + 1;
  s["rounds_planned"] = planned;
  bool complete = static_cast<int>(nodes.size()) == n && planned > 0;
  for (const auto& [id, lines] : nodes) {
    const std::int64_t end = left.count(id) ? left.at(id) : planned;
    if (lines.empty() || lines.back().value("round", std::int64_t{-1}) + 1 != end) complete = false;
  }
  s["complete"] = complete;
  // on_peer_failure continue: who finished, and each node's own last test accuracy (a
  // node that died stops early; a rejoined one is compared with the others through this).
  int finished = 0;
  json by_node = json::object();
  for (const auto& [id, lines] : nodes) {
    if (!lines.empty() && lines.back().value("round", std::int64_t{-1}) + 1 == planned) ++finished;
    for (auto it = lines.rbegin(); it != lines.rend(); ++it)
      if (it->contains("test_acc") && (*it)["test_acc"].is_number()) {
        by_node[std::to_string(id)] = (*it)["test_acc"];
        break;
      }
  }
  s["nodes_finished"] = finished;
  s["nodes_left"] = static_cast<int>(left.size());
  if (!by_node.empty()) s["last_test_acc_by_node"] = by_node;
}

// "final" (the last evaluation, consensus and loss), best_test_acc_mean and best_round.
void add_final_figures(json& s, const RoundColumns& rounds, const NodeLines& nodes) {
  double best = NAN;
  std::int64_t best_round = -1, final_eval = -1;
  for (const auto& [r, cols] : rounds) {
    auto it = cols.find("test_acc");
    if (it == cols.end()) continue;
    final_eval = r;
    if (!(it->second.mean() <= best)) {
      best = it->second.mean();
      best_round = r;
    }
  }
  json fin;
  if (final_eval >= 0) {
    const auto& cols = rounds.at(final_eval);
    fin["round"] = final_eval;
    fin["test_acc_mean"] = number_or_null(cols.at("test_acc").mean());
    fin["test_acc_min"] = number_or_null(cols.at("test_acc").min);
    fin["test_acc_max"] = number_or_null(cols.at("test_acc").max);
  }
  // Consensus distance of the last round that measured it.
  for (auto it = rounds.rbegin(); it != rounds.rend(); ++it) {
    if (auto c = it->second.find("consensus_dist"); c != it->second.end()) {
      fin["consensus_dist"] = number_or_null(c->second.mean());
      fin["consensus_round"] = it->first;
      break;
    }
  }
  if (!rounds.empty()) {
    const auto& cols = rounds.rbegin()->second;
    if (auto it = cols.find("loss"); it != cols.end()) fin["loss_mean"] = it->second.mean();
  }
  if (auto it = nodes.find(0);
      it != nodes.end() && !it->second.empty() && it->second.back().contains("avg_model_acc"))
    fin["avg_model_acc"] = it->second.back()["avg_model_acc"];
  s["final"] = fin;
  s["best_test_acc_mean"] = number_or_null(best);
  s["best_round"] = best_round;
}

// The evaluation rounds as a curve: what plots and time-to-target need.
json eval_curve(const RoundColumns& rounds) {
  json curve = json::array();
  for (const auto& [r, cols] : rounds) {
    auto acc = cols.find("test_acc");
    auto cd = cols.find("consensus_dist");
    if (acc == cols.end() && cd == cols.end()) continue;
    json point = {{"round", r}};
    if (acc != cols.end()) point["test_acc"] = acc->second.mean();
    if (cd != cols.end()) point["consensus_dist"] = cd->second.mean();
    if (auto b = cols.find("bytes_sent"); b != cols.end()) point["mb_sent"] = b->second.sum / 1e6;
    if (auto t = cols.find("time_s"); t != cols.end()) point["time_s"] = t->second.max;
    if (auto t = cols.find("sim_time_s"); t != cols.end()) point["sim_time_s"] = t->second.max;
    if (auto l = cols.find("loss"); l != cols.end()) point["loss"] = l->second.mean();
    curve.push_back(point);
  }
  return curve;
}

// Time to the target accuracy: the first evaluation whose mean reaches it. The time is
// the slowest node's clock at that round (simulated in-process).
void add_time_to_target(json& s, const json& cfg, const json& curve) {
  if (!cfg.contains("eval") || !cfg["eval"].value("target_acc", json()).is_number()) return;
  const double target = cfg["eval"]["target_acc"].get<double>();
  json reached = {{"target_acc", target}, {"round", nullptr}, {"time_s", nullptr}};
  for (const auto& p : curve) {
    if (!p.contains("test_acc") || p["test_acc"].get<double>() < target) continue;
    reached["round"] = p["round"];
    if (p.contains("time_s")) reached["time_s"] = p["time_s"];
    if (p.contains("sim_time_s")) reached["sim_time_s"] = p["sim_time_s"];
    break;
  }
  s["time_to_target"] = reached;
}

// faults.byzantine: the honest nodes' test accuracy apart (attackers train honestly too, but
// an experiment asks what became of the others): honest_mean_acc and honest_min_acc at the
// last evaluation, and honest_test_acc on the curve.
void add_honest_figures(json& s, const json& cfg, const NodeLines& nodes) {
  const json byz = cfg.contains("faults") && cfg["faults"].is_object()
                       ? cfg["faults"].value("byzantine", json())
                       : json();
  if (!byz.is_object() || !byz.contains("nodes") || !byz["nodes"].is_array()) return;
  std::set<int> attackers;
  for (const auto& x : byz["nodes"])
    if (x.is_number_integer()) attackers.insert(x.get<int>());
  std::map<std::int64_t, Agg> by_round;
  for (const auto& [id, lines] : nodes) {
    if (attackers.count(id)) continue;
    for (const auto& l : lines)
      if (l.contains("test_acc") && l["test_acc"].is_number())
        by_round[l.value("round", std::int64_t{-1})].add(l["test_acc"].get<double>());
  }
  s["byzantine_nodes"] = byz["nodes"];
  s["byzantine_attack"] = byz.value("attack", json());
  if (by_round.empty()) return;
  const Agg& last = by_round.rbegin()->second;
  s["honest_nodes"] = last.count;
  s["honest_mean_acc"] = number_or_null(last.mean());
  s["honest_min_acc"] = number_or_null(last.min);
  for (auto& p : s["curve"])
    if (auto it = by_round.find(p.value("round", std::int64_t{-1})); it != by_round.end())
      p["honest_test_acc"] = number_or_null(it->second.mean());
}

// Traffic and clocks from each node's last line: its counters are cumulative.
void add_traffic(json& s, const NodeLines& nodes, std::int64_t last_round) {
  double bytes = 0, ctrl = 0, msgs = 0, skipped = 0, wall = 0, late = 0, missed = 0, sim = -1;
  for (const auto& [id, lines] : nodes) {
    if (lines.empty()) continue;
    const auto& l = lines.back();
    bytes += l.value("bytes_sent", 0.0);
    ctrl += l.value("ctrl_bytes", 0.0);
    msgs += l.value("msgs_sent", 0.0);
    skipped += l.value("msgs_skipped", 0.0);
    wall = std::max(wall, l.value("time_s", 0.0));
    late += l.value("msgs_late", 0.0);
    missed += l.value("msgs_missed", 0.0);
    if (l.contains("sim_time_s")) sim = std::max(sim, l["sim_time_s"].get<double>());
  }
  s["mb_sent"] = bytes / 1e6;
  // qdata: method bytes split into samples, refinement and model gossip.
  if (auto it = nodes.begin();
      it != nodes.end() && !it->second.empty() && it->second.back().contains("qd_bytes_samples")) {
    double split[3] = {0, 0, 0};
    for (const auto& [id, lines] : nodes) {
      if (lines.empty()) continue;
      split[0] += lines.back().value("qd_bytes_samples", 0.0);
      split[1] += lines.back().value("qd_bytes_refine", 0.0);
      split[2] += lines.back().value("qd_bytes_model", 0.0);
    }
    s["qdata_mb"] = {
        {"samples", split[0] / 1e6}, {"refine", split[1] / 1e6}, {"model", split[2] / 1e6}};
  }
  s["mb_sent_per_node"] = bytes / 1e6 / std::max<std::size_t>(1, nodes.size());
  s["ctrl_mb"] = ctrl / 1e6;
  s["msgs_sent"] = msgs;
  s["msgs_skipped"] = skipped;
  // Event-triggered methods: share of synchronizations that sent an update.
  const double syncs = static_cast<double>(nodes.size()) * static_cast<double>(last_round + 1);
  s["trigger_rate"] = syncs > 0 ? 1.0 - skipped / syncs : 1.0;
  s["wall_time_s"] = wall;
  if (sim >= 0) s["sim_time_s"] = sim;
  s["msgs_late"] = late;
  s["msgs_missed"] = missed;
}

// Messages the gate refused, from each node's last line: how many, and from whom and why
// (only when there were any).
void add_rejections(json& s, const NodeLines& nodes) {
  double total = 0;
  json by_node = json::object();
  for (const auto& [id, lines] : nodes) {
    if (lines.empty()) continue;
    total += lines.back().value("msgs_rejected", 0.0);
    if (lines.back().contains("rejected")) by_node[std::to_string(id)] = lines.back()["rejected"];
  }
  s["msgs_rejected"] = total;
  if (!by_node.empty()) s["rejected_by_node"] = by_node;
  // Connections refused in the handshake (wrong or missing secret, an id already connected,
  // too many at once, timed out) and closed for malformed frames, per node when any.
  for (const char* key : {"handshakes_refused", "frames_malformed"}) {
    double sum = 0;
    json per = json::object();
    for (const auto& [id, lines] : nodes) {
      const double v = lines.empty() ? 0.0 : lines.back().value(key, 0.0);
      sum += v;
      if (v > 0) per[std::to_string(id)] = v;
    }
    s[key] = sum;
    if (!per.empty()) s[std::string(key) + "_by_node"] = per;
  }
}

// Each node's peak resident memory (MB), and the data links the run opened (each counted
// by both its ends), from the node-<i>.end.json a TCP node writes when it finishes
// (in-process runs have none).
void add_node_ends(json& s, const std::string& run_dir, const NodeLines& nodes) {
  json by_node = json::object();
  std::int64_t link_ends = 0;
  for (const auto& [id, lines] : nodes) {
    std::ifstream in(node_end_path(run_dir, id));
    if (!in) continue;
    try {
      const json end = json::parse(in);
      by_node[std::to_string(id)] = end.at("peak_rss_mb").get<double>();
      link_ends += end.value("data_links", 0);
    } catch (const json::exception& e) {
      throw Error(node_end_path(run_dir, id) + ": " + e.what());
    }
  }
  if (by_node.empty()) return;
  s["peak_rss_mb_by_node"] = by_node;
  s["data_links_opened"] = link_ends / 2;
}

// Nodes run free (no barrier per round), so a node's round is the time between two of its
// metrics lines; the run's figure is the slowest node's median. (The maximum over nodes of
// each round's durations would count every node's jitter: their clocks are not aligned.)
void add_round_times(json& s, const std::map<int, std::vector<double>>& node_round_times) {
  double slowest = NAN, mean_sum = 0;
  int mean_count = 0;
  for (const auto& [id, v] : node_round_times) {
    if (v.empty()) continue;
    const double m = median(v);
    if (!(slowest >= m)) slowest = m;
    for (double x : v) mean_sum += x;
    mean_count += static_cast<int>(v.size());
  }
  s["round_ms_median"] = number_or_null(1000.0 * slowest);
  s["round_ms_mean"] = number_or_null(mean_count ? 1000.0 * mean_sum / mean_count : NAN);
}

// Push-sum: how far the total weight strayed from n over all logged rounds ...
void add_push_sum_weight(json& s, const std::string& run_dir, const RoundColumns& rounds, int n,
                         std::int64_t last_round) {
  double dev = 0;
  bool has_weight = false;
  for (const auto& [r, cols] : rounds) {
    if (auto it = cols.find("ps_weight"); it != cols.end() && it->second.count == n) {
      dev = std::max(dev, std::abs(it->second.sum - n));
      has_weight = true;
    }
  }
  if (has_weight) s["ps_weight_sum_max_dev"] = dev;
  // ... at the end, and once what was in flight is delivered (in-process runs with lost or
  // late messages write in_flight.json after their last round).
  if (auto it = rounds.find(last_round); it != rounds.end()) {
    if (auto w = it->second.find("ps_weight"); w != it->second.end() && w->second.count == n)
      s["ps_weight_sum_final_dev"] = std::abs(w->second.sum - n);
  }
  if (std::ifstream in(fs::path(run_dir) / "in_flight.json"); in) {
    try {
      const json f = json::parse(in);
      s["ps_weight_sum_delivered_dev"] =
          std::abs(f.at("ps_weight_sum").get<double>() - f.at("nodes").get<double>());
    } catch (const json::exception& e) {
      throw Error(run_dir + "/in_flight.json: " + e.what());
    }
  }
}

// The times a TCP node's process was stopped (SIGSTOP, then SIGCONT: a pause that skipped no
// round), from its node-<i>.end.json.
json stops(const std::string& run_dir, int id) {
  json out = json::array();
  std::ifstream in(node_end_path(run_dir, id));
  if (!in) return out;
  const json end = json::parse(in, nullptr, false);
  if (!end.is_object() || !end.contains("stopped") || !end["stopped"].is_array()) return out;
  for (const auto& e : end["stopped"]) {
    const std::int64_t r = e.value("round", std::int64_t{1}) - 1;  // 1-based in the file
    out.push_back({{"node", id},
                   {"out", "stopped (paused)"},
                   {"from_round", r},
                   {"back_at_round", r + 1},
                   {"rounds_out", 0},
                   {"seconds_out", e.value("seconds", 0.0)}});
  }
  return out;
}

// Who was out of the run, from which round to which, and for how long (joined late, left
// early, or out in between: paused, or died and came back), from the rounds each node logged.
// Time out: between the lines around a gap (simulated time in-process).
void add_membership(json& s, const std::string& run_dir, const std::map<int, Span>& spans,
                    std::int64_t planned, const std::map<int, std::int64_t>& left) {
  json out = json::array();
  for (const auto& [id, span] : spans) {
    if (span.first < 0) continue;
    if (span.first > 0)
      out.push_back({{"node", id},
                     {"out", "before it joined"},
                     {"from_round", 0},
                     {"back_at_round", span.first},
                     {"rounds_out", span.first}});
    for (const auto& g : span.gaps)
      out.push_back({{"node", id},
                     {"out", "in between"},
                     {"from_round", g.after + 1},
                     {"back_at_round", g.before},
                     {"rounds_out", g.before - g.after - 1},
                     {"seconds_out", g.seconds}});
    for (auto& e : stops(run_dir, id)) out.push_back(std::move(e));
    if (planned > 0 && span.last + 1 < planned)
      out.push_back({{"node", id},
                     {"out", left.count(id) ? "left" : "stopped early (died?)"},
                     {"from_round", span.last + 1},
                     {"back_at_round", nullptr},
                     {"rounds_out", planned - span.last - 1}});
  }
  if (out.empty()) return;
  s["membership"] = out;
  // Exact averages with someone out: in-process over the nodes running at that evaluation;
  // over TCP they need every node on the control ring (off while one is out).
  const bool simulated = !spans.empty() && spans.begin()->second.simulated;
  s["exact_averages"] =
      simulated ? "over the nodes running at each evaluation" : "off while a node was out";
}

}  // namespace

json summarize(const std::string& run_dir) {
  const Metrics metrics = read_metrics(run_dir);
  const NodeLines& nodes = metrics.nodes;
  // Node files gathered from several hosts may come without node 0's config.json.
  json cfg = json::object();
  if (std::ifstream in(fs::path(run_dir) / "config.json"); in) in >> cfg;
  const int n = cfg.contains("topology") ? static_cast<int>(cfg["topology"]["nodes"].size())
                                         : static_cast<int>(nodes.size());
  const Columns& columns = metrics.columns;
  const RoundColumns& rounds = columns.rounds;
  write_summary_csv(fs::path(run_dir) / "summary.csv", rounds);

  const std::int64_t last_round = rounds.empty() ? -1 : rounds.rbegin()->first;
  json s;
  const auto left = graceful_leaves(run_dir, nodes);
  add_run_facts(s, run_dir, cfg, nodes, n, last_round, left);
  add_final_figures(s, rounds, nodes);
  const json curve = eval_curve(rounds);
  s["curve"] = curve;
  add_honest_figures(s, cfg, nodes);
  add_time_to_target(s, cfg, curve);
  add_traffic(s, nodes, last_round);
  add_rejections(s, nodes);
  add_node_ends(s, run_dir, nodes);
  add_round_times(s, columns.node_round_times);
  add_push_sum_weight(s, run_dir, rounds, n, last_round);
  add_membership(s, run_dir, metrics.spans, cfg.value("rounds", std::int64_t{0}), left);

  std::ofstream(fs::path(run_dir) / "summary.json") << s.dump(2) << "\n";
  return s;
}

// The summary's "out of the run" line: who was out, which rounds, why, how long.
static void membership_text(std::ostream& out, const json& membership) {
  out << "\n  out of the run      ";
  for (const auto& m : membership) {
    out << " node " << m["node"].get<int>();
    if (m.value("rounds_out", std::int64_t{0}) == 0) {  // stopped within one round
      out << " in round " << m["from_round"].get<std::int64_t>() + 1 << " ("
          << m["out"].get<std::string>() << ", " << m["seconds_out"].get<double>() << " s);";
      continue;
    }
    out << " rounds " << m["from_round"].get<std::int64_t>() + 1 << "-";
    if (m["back_at_round"].is_null())
      out << "end (" << m["out"].get<std::string>() << ");";
    else
      out << m["back_at_round"].get<std::int64_t>() << " (" << m["out"].get<std::string>()
          << (m.contains("seconds_out")
                  ? ", " + std::to_string(m["seconds_out"].get<double>()) + " s"
                  : std::string())
          << ");";
  }
}

std::string summary_text(const json& s) {
  std::ostringstream out;
  out.setf(std::ios::fixed);
  out.precision(4);
  out << "run " << s.value("run_id", "") << ": " << s.value("method", "") << " on "
      << s.value("topology", "") << ", " << s.value("nodes", 0) << " nodes, "
      << s.value("rounds", 0) << " rounds" << (s.value("complete", false) ? "" : " (incomplete)")
      << "\n";
  const auto& f = s["final"];
  if (s.contains("nodes_finished") && s["nodes_finished"] != s.value("nodes", 0))
    out << "  nodes finished       " << s["nodes_finished"].get<int>() << " of "
        << s.value("nodes", 0)
        << (s.value("nodes_left", 0) > 0
                ? " (" + std::to_string(s["nodes_left"].get<int>()) + " left gracefully)"
                : std::string())
        << " (the figures below are over the nodes that reported)\n";
  if (f.contains("test_acc_mean") && f["test_acc_mean"].is_number())
    out << "  final test accuracy  mean " << f["test_acc_mean"].get<double>() << "  min "
        << f["test_acc_min"].get<double>() << "  max " << f["test_acc_max"].get<double>() << "\n";
  if (s.contains("honest_mean_acc") && s["honest_mean_acc"].is_number())
    out << "  honest nodes         mean " << s["honest_mean_acc"].get<double>() << "  min "
        << s["honest_min_acc"].get<double>() << " (Byzantine: " << s["byzantine_nodes"].dump()
        << ", " << s["byzantine_attack"].dump() << ")\n";
  if (f.contains("avg_model_acc"))
    out << "  averaged model       " << f["avg_model_acc"].get<double>() << " test accuracy\n";
  if (f.contains("consensus_dist") && f["consensus_dist"].is_number())
    out << "  consensus distance   " << std::scientific << f["consensus_dist"].get<double>()
        << std::fixed << "\n";
  if (s.contains("exact_averages"))
    out << "  exact averages       " << s["exact_averages"].get<std::string>() << "\n";
  out.precision(2);
  out << "  sent                 " << s.value("mb_sent", 0.0) << " MB method traffic, "
      << s.value("ctrl_mb", 0.0) << " MB control\n";
  out << "  wall time            " << s.value("wall_time_s", 0.0) << " s";
  if (s.contains("round_ms_median") && s["round_ms_median"].is_number())
    out << " (median round " << s["round_ms_median"].get<double>() << " ms)";
  if (s.contains("sim_time_s"))
    out << "\n  simulated time       " << s["sim_time_s"].get<double>() << " s";
  if (s.value("msgs_late", 0.0) + s.value("msgs_missed", 0.0) > 0)
    out << "\n  not waited for       " << s.value("msgs_late", 0.0) << " late, "
        << s.value("msgs_missed", 0.0) << " missed messages";
  if (s.value("msgs_rejected", 0.0) > 0)
    out << "\n  refused              " << s.value("msgs_rejected", 0.0)
        << " messages from peers (bad size, codec or values; see rejected_by_node in "
           "summary.json)";
  if (s.contains("membership")) membership_text(out, s["membership"]);
  if (s.contains("time_to_target")) {
    const auto& t = s["time_to_target"];
    out << "\n  target accuracy      " << t["target_acc"].get<double>();
    if (t["round"].is_null()) {
      out << " not reached";
    } else {
      out << " at round " << t["round"].get<std::int64_t>() + 1;
      if (t.contains("sim_time_s"))
        out << ", " << t["sim_time_s"].get<double>() << " s simulated";
      else if (t["time_s"].is_number())
        out << ", " << t["time_s"].get<double>() << " s";
    }
  }
  out << "\n  results              " << s.value("run_dir", "") << "\n";
  return out.str();
}

config::Config recorded_config(const std::string& run_dir) {
  const auto path = (fs::path(run_dir) / "config.json").string();
  if (!fs::exists(path)) throw Error(run_dir + ": no config.json; is this a run directory?");
  // Results stay where they are, wherever the run was started from.
  fs::path dir = fs::absolute(run_dir).lexically_normal();
  if (dir.filename().empty()) dir = dir.parent_path();  // "runs/x/"
  const std::string parent = dir.parent_path().string();
  auto c = config::Config::load(path, {"output.dir=" + parent});
  json recorded;
  std::ifstream(path) >> recorded;
  const std::string id = recorded.contains("rumor") ? recorded["rumor"].value("run_id", "") : "";
  if (!id.empty() && id != c.run_id())
    throw Error(path + " resolves to run id " + c.run_id() + ", not " + id +
                " as recorded; was it edited?");
  return c;
}

void write_config_record(const config::Config& c, const std::string& run_dir) {
  fs::create_directories(run_dir);
  const auto path = fs::path(run_dir) / "config.json";
  const auto tmp = fs::path(run_dir) / "config.json.tmp";
  std::ofstream(tmp) << config_record(c).dump(2) << "\n";
  fs::rename(tmp, path);
}

}  // namespace rumor::run
