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
    if (node.port == 0) continue;  // unassigned: a launcher sets it
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
    std::vector<double> col(n, 0.0), row(n, 0.0);
    for (const auto& e : edges_) {
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
        msg << where(node_line_by_id, i) << ": weights of node " << i
            << " do not sum to one: its out-edge weights sum to " << col[i]
            << " > 1, leaving a negative self weight; lower them";
        throw TopologyError(msg.str());
      }
      if (!directed_ && row[i] > 1.0 + 1e-9) {
        std::ostringstream msg;
        msg << where(node_line_by_id, i) << ": weights of node " << i
            << " do not sum to one: its in-edge weights sum to " << row[i] << " > 1";
        throw TopologyError(msg.str());
      }
    }
  }

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
  if (!time_varying()) return out_;
  const int n = size();
  std::vector<std::vector<int>> adj(n);
  const int p = period();
  for (int i = 0; i < n; ++i) {
    for (int r = 0; r < p; ++r)
      for (int j : out_neighbors(i, r)) adj[i].push_back(j);
    std::sort(adj[i].begin(), adj[i].end());
    adj[i].erase(std::unique(adj[i].begin(), adj[i].end()), adj[i].end());
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
      for (const auto& e : edges_) {
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
      for (const auto& e : edges_) {
        if ((e.from == from && e.to == to) || (!directed_ && e.from == to && e.to == from))
          return *e.weight;
      }
      return 0.0;
  }
  return 0.0;
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
