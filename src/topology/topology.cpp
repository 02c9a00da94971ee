#include "rumor/topology/topology.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <queue>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "rumor/common/error.hpp"
#include "rumor/common/rng.hpp"

namespace rumor {

const char* to_string(Schedule s) {
  switch (s) {
    case Schedule::kStatic:
      return "static";
    case Schedule::kOnePeerExponential:
      return "one-peer-exponential";
    case Schedule::kPeerSampling:
      return "peer-sampling";
    case Schedule::kPeriodic:
      return "periodic";
  }
  return "?";
}

const char* to_string(MixingKind m) {
  switch (m) {
    case MixingKind::kMetropolis:
      return "metropolis";
    case MixingKind::kUniform:
      return "uniform";
    case MixingKind::kExplicit:
      return "explicit";
  }
  return "?";
}

namespace {

// Hops of the one-peer exponential graph: 2^0 .. 2^(floor(log2(n-1))).
int exponential_period(int n) {
  if (n <= 2) return 1;
  int k = 0;
  while ((2 << k) <= n - 1) ++k;  // largest k with 2^k <= n-1
  return k + 1;
}

// Stream tag of the peer-sampling draws (Rng::derive(seed, tag, round, node)).
constexpr std::uint64_t kPeerSamplingTag = 0x5053;

// `fanout` distinct peers of node i out of the other n - 1, uniformly (Floyd's algorithm),
// sorted: a function of (seed, round, i) only, so every node and a resumed run agree.
std::vector<int> sample_peers(int n, int fanout, std::uint64_t seed, std::int64_t round, int i) {
  Rng rng = Rng::derive(seed, kPeerSamplingTag, static_cast<std::uint64_t>(round),
                        static_cast<std::uint64_t>(i));
  const int m = n - 1;
  std::vector<int> picked;
  for (int j = m - fanout; j < m; ++j) {
    const int t = static_cast<int>(rng.below(static_cast<std::uint64_t>(j) + 1));
    picked.push_back(std::find(picked.begin(), picked.end(), t) == picked.end() ? t : j);
  }
  for (int& x : picked) x += x >= i ? 1 : 0;  // index among the others -> node id
  std::sort(picked.begin(), picked.end());
  return picked;
}

std::string edge_text(const Edge& e) {
  return "[" + std::to_string(e.from) + ", " + std::to_string(e.to) + "]";
}

}  // namespace

Topology::Topology(std::string name, bool directed, Schedule schedule, MixingKind mixing,
                   std::vector<NodeInfo> nodes, std::vector<Edge> edges, std::string source,
                   std::vector<int> node_lines, std::vector<int> edge_lines)
    : Topology(std::move(name), directed, schedule, mixing, ScheduleParams{}, std::move(nodes),
               std::move(edges), std::move(source), std::move(node_lines), std::move(edge_lines)) {}

Topology::Topology(std::string name, bool directed, Schedule schedule, MixingKind mixing,
                   ScheduleParams params, std::vector<NodeInfo> nodes, std::vector<Edge> edges,
                   std::string source, std::vector<int> node_lines, std::vector<int> edge_lines)
    : name_(std::move(name)),
      source_(std::move(source)),
      directed_(directed),
      schedule_(schedule),
      mixing_(mixing),
      nodes_(std::move(nodes)),
      edges_(std::move(edges)),
      params_(std::move(params)) {
  validate(node_lines, edge_lines);
}

std::string Topology::where(const std::vector<int>& lines, std::size_t index) const {
  std::string s = source_.empty() ? std::string("<topology>") : source_;
  if (index < lines.size() && lines[index] > 0) s += ":" + std::to_string(lines[index]);
  return s;
}

void Topology::validate(const std::vector<int>& node_lines, const std::vector<int>& edge_lines) {
  const std::string file = source_.empty() ? std::string("<topology>") : source_;
  const int n = static_cast<int>(nodes_.size());
  if (n == 0) throw TopologyError(file + ": the topology has no nodes; add a \"nodes\" list");
  if (schedule_ == Schedule::kOnePeerExponential && !directed_) {
    throw TopologyError(file +
                        ": schedule 'one-peer-exponential' is a directed graph; set "
                        "\"directed\": true");
  }
  if (mixing_ == MixingKind::kMetropolis && directed_) {
    throw TopologyError(file +
                        ": mixing 'metropolis' needs an undirected graph; use 'uniform' or "
                        "'explicit' for a directed one");
  }

  // Ids: each of 0..n-1 exactly once; nodes_ is then reordered by id.
  std::vector<int> seen_at(n, -1);
  for (std::size_t k = 0; k < nodes_.size(); ++k) {
    const int id = nodes_[k].id;
    if (id < 0 || id >= n) {
      throw TopologyError(where(node_lines, k) + ": node id " + std::to_string(id) +
                          " is out of range; ids must be 0.." + std::to_string(n - 1) + " for " +
                          std::to_string(n) + " nodes");
    }
    if (seen_at[id] >= 0) {
      throw TopologyError(where(node_lines, k) + ": duplicate node id " + std::to_string(id) +
                          " (first defined at " + where(node_lines, seen_at[id]) + ")");
    }
    seen_at[id] = static_cast<int>(k);
    if (nodes_[k].port < 0 || nodes_[k].port > 65535) {
      throw TopologyError(where(node_lines, k) + ": node " + std::to_string(id) + " has port " +
                          std::to_string(nodes_[k].port) + "; a port must be in 0..65535");
    }
  }
  std::vector<int> node_line_by_id(n, 0);
  for (std::size_t k = 0; k < nodes_.size(); ++k)
    node_line_by_id[nodes_[k].id] = k < node_lines.size() ? node_lines[k] : 0;
  std::sort(nodes_.begin(), nodes_.end(),
            [](const NodeInfo& a, const NodeInfo& b) { return a.id < b.id; });
  std::map<std::pair<std::string, int>, int> endpoints;
  for (const auto& node : nodes_) {
    if (node.port == 0) continue;  // unassigned: a launcher sets it
    auto [it, inserted] = endpoints.emplace(std::make_pair(node.host, node.port), node.id);
    if (!inserted) {
      throw TopologyError(where(node_line_by_id, node.id) + ": nodes " +
                          std::to_string(it->second) + " and " + std::to_string(node.id) +
                          " both use " + node.host + ":" + std::to_string(node.port) +
                          "; give each node its own host:port");
    }
  }

  validate_schedule(node_line_by_id);
  validate_edges(edges_, edge_lines, "", schedule_ != Schedule::kPeriodic);
  if (mixing_ == MixingKind::kExplicit && schedule_ != Schedule::kStatic &&
      schedule_ != Schedule::kPeriodic) {
    throw TopologyError(file + ": explicit weights need a static or periodic schedule");
  }

  // Static adjacency (directed view: undirected edges go both ways).
  out_.assign(n, {});
  in_.assign(n, {});
  for (const auto& e : edges_) {
    out_[e.from].push_back(e.to);
    in_[e.to].push_back(e.from);
    if (!directed_) {
      out_[e.to].push_back(e.from);
      in_[e.from].push_back(e.to);
    }
  }
  for (auto& v : out_) std::sort(v.begin(), v.end());
  for (auto& v : in_) std::sort(v.begin(), v.end());
  if (mixing_ == MixingKind::kExplicit && schedule_ == Schedule::kStatic)
    validate_weights(edges_, node_line_by_id, "");
  if (schedule_ == Schedule::kPeerSampling) return;  // every node may reach every other

  const std::vector<int> sizes = component_sizes();
  if (sizes.size() != 1) {
    std::ostringstream msg;
    msg << file << ": graph not connected" << (directed_ ? " (strongly)" : "") << ": "
        << sizes.size() << " components of sizes ";
    for (std::size_t c = 0; c < sizes.size() && c < 20; ++c) msg << (c ? ", " : "") << sizes[c];
    if (sizes.size() > 20) msg << ", ...";
    msg << "; every node must reach every other, add edges between the components";
    throw TopologyError(msg.str());
  }
}

// Ends in range, no self-loop, no duplicate; with `weights`, a weight in (0, 1] exactly when
// mixing is explicit. Undirected edges are turned to from < to. `context` ("round 3: ") says
// which list they came from.
void Topology::validate_edges(std::vector<Edge>& edges, const std::vector<int>& edge_lines,
                              const std::string& context, bool weights) const {
  const int n = size();
  std::map<std::pair<int, int>, std::size_t> edge_at;
  for (std::size_t k = 0; k < edges.size(); ++k) {
    Edge& e = edges[k];
    const std::string at = where(edge_lines, k) + ": " + context;
    for (int end : {e.from, e.to}) {
      if (end < 0 || end >= n) {
        throw TopologyError(at + "edge " + edge_text(e) + " names unknown node id " +
                            std::to_string(end) + "; ids are 0.." + std::to_string(n - 1));
      }
    }
    if (e.from == e.to) {
      throw TopologyError(at + "edge " + edge_text(e) +
                          " is a self-loop; self weights are implicit (the remainder), remove it");
    }
    if (!directed_ && e.from > e.to) std::swap(e.from, e.to);
    auto [it, inserted] = edge_at.emplace(std::make_pair(e.from, e.to), k);
    if (!inserted) {
      throw TopologyError(at + "duplicate edge " + edge_text(e) + " (first at " +
                          where(edge_lines, it->second) + ")");
    }
    if (!weights) {
      if (e.weight)
        throw TopologyError(at + "edge " + edge_text(e) +
                            " has a weight, but the edges of a periodic schedule are the union "
                            "of its rounds, for readers; weights go in \"rounds\"");
      continue;
    }
    if (e.weight) {
      if (mixing_ != MixingKind::kExplicit) {
        throw TopologyError(at + "edge " + edge_text(e) + " has a weight but mixing is '" +
                            to_string(mixing_) + "'; set \"mixing\": \"explicit\" or drop it");
      }
      if (!(*e.weight > 0.0 && *e.weight <= 1.0)) {
        std::ostringstream w;
        w << *e.weight;
        throw TopologyError(at + "edge " + edge_text(e) + " has weight " + w.str() +
                            " out of range; weights must be in (0, 1]");
      }
    } else if (mixing_ == MixingKind::kExplicit) {
      throw TopologyError(at + "edge " + edge_text(e) +
                          " has no weight but mixing is 'explicit'; write it as "
                          "{\"from\": i, \"to\": j, \"weight\": w}");
    }
  }
}

// Explicit weights: what node i hands out (its column) must not exceed one, and for an
// undirected graph the rows equal the columns (W symmetric).
void Topology::validate_weights(const std::vector<Edge>& edges,
                                const std::vector<int>& node_line_by_id,
                                const std::string& context) const {
  const int n = size();
  std::vector<double> col(n, 0.0), row(n, 0.0);
  for (const auto& e : edges) {
    col[e.from] += *e.weight;
    row[e.to] += *e.weight;
    if (!directed_) {
      col[e.to] += *e.weight;
      row[e.from] += *e.weight;
    }
  }
  for (int i = 0; i < n; ++i) {
    if (col[i] > 1.0 + 1e-9) {
      std::ostringstream msg;
      msg << where(node_line_by_id, i) << ": " << context << "weights of node " << i
          << " do not sum to one: its out-edge weights sum to " << col[i]
          << " > 1, leaving a negative self weight; lower them";
      throw TopologyError(msg.str());
    }
    if (!directed_ && row[i] > 1.0 + 1e-9) {
      std::ostringstream msg;
      msg << where(node_line_by_id, i) << ": " << context << "weights of node " << i
          << " do not sum to one: its in-edge weights sum to " << row[i] << " > 1";
      throw TopologyError(msg.str());
    }
  }
}

// What peer sampling and periodic rounds need; builds the periodic rounds' adjacency and,
// when the file lists no edges, their union as edges.
void Topology::validate_schedule(const std::vector<int>& node_line_by_id) {
  const std::string file = source_.empty() ? std::string("<topology>") : source_;
  if (schedule_ != Schedule::kPeerSampling && params_.fanout != 0)
    throw TopologyError(file + ": \"fanout\" is a key of schedule peer-sampling only");
  if (schedule_ != Schedule::kPeriodic && !params_.rounds.empty())
    throw TopologyError(file + ": \"rounds\" is a key of schedule periodic only");
  if (schedule_ == Schedule::kPeerSampling) validate_peer_sampling(file);
  if (schedule_ == Schedule::kPeriodic) build_rounds(file, node_line_by_id);
}

void Topology::validate_peer_sampling(const std::string& file) const {
  const int n = size();
  if (!directed_)
    throw TopologyError(file +
                        ": schedule 'peer-sampling' pushes to the peers it draws; set "
                        "\"directed\": true");
  if (n < 2) throw TopologyError(file + ": schedule 'peer-sampling' needs at least 2 nodes");
  if (params_.fanout < 1 || params_.fanout > n - 1)
    throw TopologyError(file + ": \"fanout\" " + std::to_string(params_.fanout) +
                        " is out of range; a node pushes to 1.." + std::to_string(n - 1) +
                        " of the other nodes each round (set \"fanout\": s)");
  if (mixing_ != MixingKind::kUniform)
    throw TopologyError(file +
                        ": schedule 'peer-sampling' mixes uniformly; set \"mixing\": "
                        "\"uniform\" or leave it out");
  if (!edges_.empty())
    throw TopologyError(file +
                        ": schedule 'peer-sampling' draws peers from all nodes each "
                        "round; remove its " +
                        std::to_string(edges_.size()) + " \"edges\"");
}

// Checks each round like a static graph and builds its adjacency; the union of the rounds is
// the edges (given ones must match it).
void Topology::build_rounds(const std::string& file, const std::vector<int>& node_line_by_id) {
  const int n = size();
  if (params_.rounds.empty())
    throw TopologyError(file +
                        ": schedule 'periodic' needs \"rounds\": one list of edges per "
                        "round");
  if (mixing_ == MixingKind::kMetropolis)
    throw TopologyError(file +
                        ": schedule 'periodic' takes mixing 'explicit' (weights in "
                        "\"rounds\") or 'uniform'");
  const auto p = params_.rounds.size();
  round_out_.assign(p, std::vector<std::vector<int>>(n));
  round_in_.assign(p, std::vector<std::vector<int>>(n));
  std::set<std::pair<int, int>> all;
  for (std::size_t r = 0; r < p; ++r) {
    const std::string context = "round " + std::to_string(r) + ": ";
    validate_edges(params_.rounds[r], {}, context, true);
    if (mixing_ == MixingKind::kExplicit)
      validate_weights(params_.rounds[r], node_line_by_id, context);
    for (const auto& e : params_.rounds[r]) {
      all.insert({e.from, e.to});
      for (const auto& [a, b] : {std::pair{e.from, e.to}, std::pair{e.to, e.from}}) {
        round_out_[r][a].push_back(b);
        round_in_[r][b].push_back(a);
        if (directed_) break;
      }
    }
    for (auto& v : round_out_[r]) std::sort(v.begin(), v.end());
    for (auto& v : round_in_[r]) std::sort(v.begin(), v.end());
  }
  std::set<std::pair<int, int>> listed;
  for (const auto& e : edges_)
    listed.insert(directed_ ? std::pair{e.from, e.to}
                            : std::pair{std::min(e.from, e.to), std::max(e.from, e.to)});
  if (!edges_.empty() && listed != all)
    throw TopologyError(file +
                        ": \"edges\" of a periodic schedule must be the union of its "
                        "rounds' edges (or leave them out)");
  edges_.clear();
  for (const auto& [a, b] : all) edges_.push_back({a, b, std::nullopt});
}

int Topology::period() const {
  if (schedule_ == Schedule::kPeriodic) return static_cast<int>(params_.rounds.size());
  return schedule_ == Schedule::kOnePeerExponential ? exponential_period(size()) : 1;
}

void Topology::rebase_ports(int base_port) {
  for (auto& node : nodes_) node.port = base_port + node.id;
}

namespace {
std::size_t round_index(std::int64_t round, int period) {
  const std::int64_t r = round % period;
  return static_cast<std::size_t>(r < 0 ? r + period : r);
}
}  // namespace

std::vector<int> Topology::out_neighbors(int i, std::int64_t round) const {
  switch (schedule_) {
    case Schedule::kOnePeerExponential: {
      const int n = size();
      if (n == 1) return {};
      const int k = static_cast<int>(round % period());
      return {static_cast<int>((i + (std::int64_t{1} << k)) % n)};
    }
    case Schedule::kPeerSampling:
      return sample_peers(size(), params_.fanout, sample_seed(), round, i);
    case Schedule::kPeriodic:
      return round_out_[round_index(round, period())][i];
    case Schedule::kStatic:
      break;
  }
  return out_[i];
}

std::vector<int> Topology::in_neighbors(int i, std::int64_t round) const {
  switch (schedule_) {
    case Schedule::kOnePeerExponential: {
      const int n = size();
      if (n == 1) return {};
      const int k = static_cast<int>(round % period());
      const std::int64_t hop = (std::int64_t{1} << k) % n;
      return {static_cast<int>(((i - hop) % n + n) % n)};
    }
    case Schedule::kPeerSampling: {
      std::vector<int> in;
      for (int j = 0; j < size(); ++j) {
        if (j == i) continue;
        const auto outs = out_neighbors(j, round);
        if (std::binary_search(outs.begin(), outs.end(), i)) in.push_back(j);
      }
      return in;
    }
    case Schedule::kPeriodic:
      return round_in_[round_index(round, period())][i];
    case Schedule::kStatic:
      break;
  }
  return in_[i];
}

std::vector<std::vector<int>> Topology::union_out_adjacency() const {
  if (!time_varying()) return out_;
  const int n = size();
  std::vector<std::vector<int>> adj(n);
  for (int i = 0; i < n; ++i) adj[i] = out_peers(i);
  return adj;
}

namespace {
std::vector<int> all_but(int n, int i) {
  std::vector<int> v;
  for (int j = 0; j < n; ++j)
    if (j != i) v.push_back(j);
  return v;
}
}  // namespace

std::vector<int> Topology::out_peers(int i) const {
  if (schedule_ == Schedule::kPeerSampling) return all_but(size(), i);
  std::set<int> s;
  for (int r = 0; r < period(); ++r)
    for (int j : out_neighbors(i, r)) s.insert(j);
  return {s.begin(), s.end()};
}

std::vector<int> Topology::in_peers(int i) const {
  if (schedule_ == Schedule::kPeerSampling) return all_but(size(), i);
  std::set<int> s;
  for (int r = 0; r < period(); ++r)
    for (int j : in_neighbors(i, r)) s.insert(j);
  return {s.begin(), s.end()};
}

std::vector<int> Topology::peers(int i) const {
  if (schedule_ == Schedule::kPeerSampling) return all_but(size(), i);
  std::set<int> s;
  for (int j : out_peers(i)) s.insert(j);
  for (int j : in_peers(i)) s.insert(j);
  return {s.begin(), s.end()};
}

std::vector<int> Topology::control_peers(int i) const {
  const int n = size();
  if (n == 1) return {};
  std::set<int> s{(i + n - 1) % n, (i + 1) % n};
  return {s.begin(), s.end()};
}

SparseMixing Topology::sparse_mixing(std::int64_t round) const {
  const int n = size();
  // Built by columns (what each node hands out), then turned into rows.
  std::vector<std::vector<std::pair<int, double>>> cols(n);
  const auto link = [&](int to, int from, double v) { cols[from].emplace_back(to, v); };
  switch (mixing_) {
    case MixingKind::kMetropolis:
      for (const auto& e : edges_) {
        const double v = 1.0 / (1.0 + std::max(out_[e.from].size(), out_[e.to].size()));
        link(e.to, e.from, v);
        link(e.from, e.to, v);
      }
      break;
    case MixingKind::kUniform:
      for (int i = 0; i < n; ++i) {
        const auto outs = out_neighbors(i, round);
        const double share = 1.0 / (static_cast<double>(outs.size()) + 1.0);
        for (int j : outs) link(j, i, share);
      }
      break;
    case MixingKind::kExplicit:
      for (const auto& e : round_edges(round)) {
        link(e.to, e.from, *e.weight);
        if (!directed_) link(e.from, e.to, *e.weight);
      }
      break;
  }
  SparseMixing w;
  w.rows.assign(n, {});
  for (int i = 0; i < n; ++i) {
    // Summed in ascending order of the receiver, as the dense sum over a column.
    std::sort(cols[i].begin(), cols[i].end());
    double handed_out = 0;
    for (const auto& [to, v] : cols[i]) {
      handed_out += v;
      w.rows[to].emplace_back(i, v);
    }
    w.rows[i].emplace_back(i, 1.0 - handed_out);
  }
  for (auto& row : w.rows) std::sort(row.begin(), row.end());
  return w;
}

void SparseMixing::apply(const std::vector<double>& x, std::vector<double>& y) const {
  y.assign(rows.size(), 0.0);
  for (std::size_t j = 0; j < rows.size(); ++j) {
    double sum = 0;
    for (const auto& [i, v] : rows[j]) sum += v * x[static_cast<std::size_t>(i)];
    y[j] = sum;
  }
}

MixingMatrix Topology::mixing(std::int64_t round) const {
  const SparseMixing sparse = sparse_mixing(round);
  MixingMatrix w(size());
  for (int j = 0; j < size(); ++j)
    for (const auto& [i, v] : sparse.rows[j]) w(j, i) = v;
  return w;
}

double Topology::weight(int to, int from, std::int64_t round) const {
  if (to == from) {
    double handed_out = 0;
    for (int j : out_neighbors(from, round)) handed_out += weight(j, from, round);
    return 1.0 - handed_out;
  }
  const auto outs = out_neighbors(from, round);
  if (!std::binary_search(outs.begin(), outs.end(), to)) return 0.0;
  switch (mixing_) {
    case MixingKind::kMetropolis:
      return 1.0 / (1.0 + std::max(out_[from].size(), out_[to].size()));
    case MixingKind::kUniform:
      return 1.0 / (static_cast<double>(outs.size()) + 1.0);
    case MixingKind::kExplicit:
      for (const auto& e : round_edges(round)) {
        if ((e.from == from && e.to == to) || (!directed_ && e.from == to && e.to == from))
          return *e.weight;
      }
      return 0.0;
  }
  return 0.0;
}

const std::vector<Edge>& Topology::round_edges(std::int64_t round) const {
  if (schedule_ != Schedule::kPeriodic) return edges_;
  return params_.rounds[round_index(round, period())];
}

namespace {
nlohmann::json edges_json(const std::vector<Edge>& list) {
  auto edges = nlohmann::json::array();
  for (const auto& e : list) {
    if (e.weight) {
      edges.push_back({{"from", e.from}, {"to", e.to}, {"weight", *e.weight}});
    } else {
      edges.push_back({e.from, e.to});
    }
  }
  return edges;
}
}  // namespace

nlohmann::json Topology::to_json() const {
  nlohmann::json j;
  j["name"] = name_;
  j["directed"] = directed_;
  j["schedule"] = to_string(schedule_);
  j["mixing"] = to_string(mixing_);
  auto nodes = nlohmann::json::array();
  for (const auto& node : nodes_) {
    nlohmann::json o{{"id", node.id}};
    if (node.host != "127.0.0.1") o["host"] = node.host;
    if (ports_explicit_) o["port"] = node.port;
    if (node.standby) o["standby"] = true;
    nodes.push_back(o);
  }
  j["nodes"] = nodes;
  j["edges"] = edges_json(edges_);
  if (schedule_ == Schedule::kPeerSampling) {
    j["fanout"] = params_.fanout;
    if (params_.seed) j["seed"] = *params_.seed;
  }
  if (schedule_ == Schedule::kPeriodic) {
    j["rounds"] = nlohmann::json::array();
    for (const auto& r : params_.rounds) j["rounds"].push_back(edges_json(r));
  }
  return j;
}

}  // namespace rumor
