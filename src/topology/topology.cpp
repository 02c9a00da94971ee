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

namespace rumor {

const char* to_string(Schedule s) {
  switch (s) {
    case Schedule::kStatic:
      return "static";
    case Schedule::kOnePeerExponential:
      return "one-peer-exponential";
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

}  // namespace

Topology::Topology(std::string name, bool directed, Schedule schedule, MixingKind mixing,
                   std::vector<NodeInfo> nodes, std::vector<Edge> edges, std::string source,
                   std::vector<int> node_lines, std::vector<int> edge_lines)
    : name_(std::move(name)),
      source_(std::move(source)),
      directed_(directed),
      schedule_(schedule),
      mixing_(mixing),
      nodes_(std::move(nodes)),
      edges_(std::move(edges)) {
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
    auto [it, inserted] = endpoints.emplace(std::make_pair(node.host, node.port), node.id);
    if (!inserted) {
      throw TopologyError(where(node_line_by_id, node.id) + ": nodes " +
                          std::to_string(it->second) + " and " + std::to_string(node.id) +
                          " both use " + node.host + ":" + std::to_string(node.port) +
                          "; give each node its own host:port");
    }
  }

  // Edges.
  std::map<std::pair<int, int>, std::size_t> edge_at;
  for (std::size_t k = 0; k < edges_.size(); ++k) {
    Edge& e = edges_[k];
    for (int end : {e.from, e.to}) {
      if (end < 0 || end >= n) {
        throw TopologyError(where(edge_lines, k) + ": edge [" + std::to_string(e.from) + ", " +
                            std::to_string(e.to) + "] names unknown node id " +
                            std::to_string(end) + "; ids are 0.." + std::to_string(n - 1));
      }
    }
    if (e.from == e.to) {
      throw TopologyError(where(edge_lines, k) + ": edge [" + std::to_string(e.from) + ", " +
                          std::to_string(e.to) +
                          "] is a self-loop; self weights are implicit (the remainder), remove it");
    }
    if (!directed_ && e.from > e.to) std::swap(e.from, e.to);
    auto [it, inserted] = edge_at.emplace(std::make_pair(e.from, e.to), k);
    if (!inserted) {
      throw TopologyError(where(edge_lines, k) + ": duplicate edge [" + std::to_string(e.from) +
                          ", " + std::to_string(e.to) + "] (first at " +
                          where(edge_lines, it->second) + ")");
    }
    if (e.weight) {
      if (mixing_ != MixingKind::kExplicit) {
        throw TopologyError(where(edge_lines, k) + ": edge [" + std::to_string(e.from) + ", " +
                            std::to_string(e.to) + "] has a weight but mixing is '" +
                            to_string(mixing_) + "'; set \"mixing\": \"explicit\" or drop it");
      }
      if (!(*e.weight > 0.0 && *e.weight <= 1.0)) {
        std::ostringstream w;
        w << *e.weight;
        throw TopologyError(where(edge_lines, k) + ": edge [" + std::to_string(e.from) + ", " +
                            std::to_string(e.to) + "] has weight " + w.str() +
                            " out of range; weights must be in (0, 1]");
      }
    } else if (mixing_ == MixingKind::kExplicit) {
      throw TopologyError(where(edge_lines, k) + ": edge [" + std::to_string(e.from) + ", " +
                          std::to_string(e.to) +
                          "] has no weight but mixing is 'explicit'; write it as "
                          "{\"from\": i, \"to\": j, \"weight\": w}");
    }
  }
  if (mixing_ == MixingKind::kExplicit && schedule_ != Schedule::kStatic) {
    throw TopologyError(file + ": explicit weights need a static schedule");
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

  // Explicit weights: what node i hands out (its column) must not exceed one, and for an
  // undirected graph the rows equal the columns (W symmetric).
  if (mixing_ == MixingKind::kExplicit) {
    const MixingMatrix w = mixing(0);
    for (int i = 0; i < n; ++i) {
      double col = 0, row = 0;
      for (int j = 0; j < n; ++j) {
        if (j == i) continue;
        col += w(j, i);
        row += w(i, j);
      }
      if (col > 1.0 + 1e-9) {
        std::ostringstream msg;
        msg << where(node_line_by_id, i) << ": weights of node " << i
            << " do not sum to one: its out-edge weights sum to " << col
            << " > 1, leaving a negative self weight; lower them";
        throw TopologyError(msg.str());
      }
      if (!directed_ && row > 1.0 + 1e-9) {
        std::ostringstream msg;
        msg << where(node_line_by_id, i) << ": weights of node " << i
            << " do not sum to one: its in-edge weights sum to " << row << " > 1";
        throw TopologyError(msg.str());
      }
    }
  }

  const Summary s = summary();
  if (!s.connected) {
    std::ostringstream msg;
    msg << file << ": graph not connected" << (directed_ ? " (strongly)" : "") << ": "
        << s.component_sizes.size() << " components of sizes ";
    for (std::size_t c = 0; c < s.component_sizes.size(); ++c)
      msg << (c ? ", " : "") << s.component_sizes[c];
    msg << "; every node must reach every other, add edges between the components";
    throw TopologyError(msg.str());
  }
}

int Topology::period() const {
  return schedule_ == Schedule::kOnePeerExponential ? exponential_period(size()) : 1;
}

void Topology::rebase_ports(int base_port) {
  for (auto& node : nodes_) node.port = base_port + node.id;
}

std::vector<int> Topology::out_neighbors(int i, std::int64_t round) const {
  if (schedule_ == Schedule::kOnePeerExponential) {
    const int n = size();
    if (n == 1) return {};
    const int k = static_cast<int>(round % period());
    return {static_cast<int>((i + (std::int64_t{1} << k)) % n)};
  }
  return out_[i];
}

std::vector<int> Topology::in_neighbors(int i, std::int64_t round) const {
  if (schedule_ == Schedule::kOnePeerExponential) {
    const int n = size();
    if (n == 1) return {};
    const int k = static_cast<int>(round % period());
    const std::int64_t hop = (std::int64_t{1} << k) % n;
    return {static_cast<int>(((i - hop) % n + n) % n)};
  }
  return in_[i];
}

std::vector<std::vector<int>> Topology::union_out_adjacency() const {
  const int n = size();
  std::vector<std::vector<int>> adj(n);
  const int p = period();
  for (int i = 0; i < n; ++i) {
    std::set<int> s;
    for (int r = 0; r < p; ++r)
      for (int j : out_neighbors(i, r)) s.insert(j);
    adj[i].assign(s.begin(), s.end());
  }
  return adj;
}

std::vector<int> Topology::peers(int i) const {
  std::set<int> s;
  for (int r = 0; r < period(); ++r) {
    for (int j : out_neighbors(i, r)) s.insert(j);
    for (int j : in_neighbors(i, r)) s.insert(j);
  }
  return {s.begin(), s.end()};
}

std::vector<int> Topology::control_peers(int i) const {
  const int n = size();
  if (n == 1) return {};
  std::set<int> s{(i + n - 1) % n, (i + 1) % n};
  return {s.begin(), s.end()};
}

MixingMatrix Topology::mixing(std::int64_t round) const {
  const int n = size();
  MixingMatrix w(n);
  switch (mixing_) {
    case MixingKind::kMetropolis: {
      for (const auto& e : edges_) {
        const double v = 1.0 / (1.0 + std::max(out_[e.from].size(), out_[e.to].size()));
        w(e.to, e.from) = v;
        w(e.from, e.to) = v;
      }
      break;
    }
    case MixingKind::kUniform: {
      for (int i = 0; i < n; ++i) {
        const auto outs = out_neighbors(i, round);
        const double share = 1.0 / (static_cast<double>(outs.size()) + 1.0);
        for (int j : outs) w(j, i) = share;
      }
      break;
    }
    case MixingKind::kExplicit: {
      for (const auto& e : edges_) {
        w(e.to, e.from) = *e.weight;
        if (!directed_) w(e.from, e.to) = *e.weight;
      }
      break;
    }
  }
  for (int i = 0; i < n; ++i) {
    double handed_out = 0;
    for (int j = 0; j < n; ++j)
      if (j != i) handed_out += w(j, i);
    w(i, i) = 1.0 - handed_out;
  }
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
      for (const auto& e : edges_) {
        if ((e.from == from && e.to == to) || (!directed_ && e.from == to && e.to == from))
          return *e.weight;
      }
      return 0.0;
  }
  return 0.0;
}

Topology::Summary Topology::summary() const {
  const int n = size();
  Summary s;
  s.nodes = n;
  const auto adj = union_out_adjacency();
  std::size_t directed_edges = 0;
  for (const auto& a : adj) directed_edges += a.size();
  s.edges = static_cast<int>(directed_ ? directed_edges : directed_edges / 2);
  s.degree_min = n ? static_cast<int>(adj[0].size()) : 0;
  s.degree_max = s.degree_min;
  for (const auto& a : adj) {
    s.degree_min = std::min<int>(s.degree_min, static_cast<int>(a.size()));
    s.degree_max = std::max<int>(s.degree_max, static_cast<int>(a.size()));
  }

  // BFS from every node gives reachability (strong components) and the diameter.
  std::vector<std::vector<int>> dist(n, std::vector<int>(n, -1));
  for (int src = 0; src < n; ++src) {
    std::queue<int> q;
    dist[src][src] = 0;
    q.push(src);
    while (!q.empty()) {
      const int u = q.front();
      q.pop();
      for (int v : adj[u]) {
        if (dist[src][v] < 0) {
          dist[src][v] = dist[src][u] + 1;
          q.push(v);
        }
      }
    }
  }
  std::vector<int> comp(n, -1);
  std::vector<int> sizes;
  for (int i = 0; i < n; ++i) {
    if (comp[i] >= 0) continue;
    const int c = static_cast<int>(sizes.size());
    sizes.push_back(0);
    for (int j = 0; j < n; ++j) {
      if (comp[j] < 0 && dist[i][j] >= 0 && dist[j][i] >= 0) {
        comp[j] = c;
        ++sizes[c];
      }
    }
  }
  std::sort(sizes.rbegin(), sizes.rend());
  s.component_sizes = sizes;
  s.connected = sizes.size() == 1;
  if (s.connected) {
    s.diameter = 0;
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < n; ++j) s.diameter = std::max(s.diameter, dist[i][j]);
    s.slem = rumor::slem(*this);
  } else {
    s.slem = 1.0;
  }
  s.spectral_gap = 1.0 - s.slem;
  return s;
}

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
    nodes.push_back(o);
  }
  j["nodes"] = nodes;
  auto edges = nlohmann::json::array();
  for (const auto& e : edges_) {
    if (e.weight) {
      edges.push_back({{"from", e.from}, {"to", e.to}, {"weight", *e.weight}});
    } else {
      edges.push_back({e.from, e.to});
    }
  }
  j["edges"] = edges;
  return j;
}

}  // namespace rumor
