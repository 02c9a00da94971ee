// Graph figures of a topology in time and memory linear in its edges: components, degrees,
// the diameter while BFS from every node stays cheap, and the spectral figures.
#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>

#include "rumor/common/error.hpp"
#include "rumor/topology/topology.hpp"

namespace rumor {
namespace {

using Adjacency = std::vector<std::vector<int>>;

// Above this many BFS steps (nodes x (nodes + links)) the exact diameter is skipped.
constexpr double kDiameterBudget = 2e8;

Adjacency reversed(const Adjacency& adj) {
  Adjacency in(adj.size());
  for (std::size_t u = 0; u < adj.size(); ++u)
    for (int v : adj[u]) in[static_cast<std::size_t>(v)].push_back(static_cast<int>(u));
  return in;
}

// Hops from `src` to every node (-1: unreachable). `order`, when given, receives the nodes in
// the order BFS reached them.
std::vector<int> bfs(const Adjacency& adj, int src, std::vector<int>* order = nullptr) {
  std::vector<int> dist(adj.size(), -1);
  std::vector<int> queue{src};
  dist[static_cast<std::size_t>(src)] = 0;
  for (std::size_t head = 0; head < queue.size(); ++head) {
    const int u = queue[head];
    for (int v : adj[static_cast<std::size_t>(u)]) {
      if (dist[static_cast<std::size_t>(v)] >= 0) continue;
      dist[static_cast<std::size_t>(v)] = dist[static_cast<std::size_t>(u)] + 1;
      queue.push_back(v);
    }
  }
  if (order) *order = std::move(queue);
  return dist;
}

// Kosaraju with explicit stacks (no recursion: a 100,000-node path must not overflow).
std::vector<int> strong_component_sizes(const Adjacency& adj) {
  const int n = static_cast<int>(adj.size());
  std::vector<int> finish;
  std::vector<char> seen(n, 0);
  for (int s = 0; s < n; ++s) {
    if (seen[s]) continue;
    std::vector<std::pair<int, std::size_t>> stack{{s, 0}};
    seen[s] = 1;
    while (!stack.empty()) {
      auto& [u, next] = stack.back();
      if (next < adj[u].size()) {
        const int v = adj[u][next++];
        if (!seen[v]) {
          seen[v] = 1;
          stack.emplace_back(v, 0);
        }
      } else {
        finish.push_back(u);
        stack.pop_back();
      }
    }
  }
  const Adjacency in = reversed(adj);
  std::vector<int> comp(n, -1), sizes;
  for (auto it = finish.rbegin(); it != finish.rend(); ++it) {
    if (comp[*it] >= 0) continue;
    const int c = static_cast<int>(sizes.size());
    sizes.push_back(0);
    std::vector<int> stack{*it};
    comp[*it] = c;
    while (!stack.empty()) {
      const int u = stack.back();
      stack.pop_back();
      ++sizes[c];
      for (int v : in[u])
        if (comp[v] < 0) {
          comp[v] = c;
          stack.push_back(v);
        }
    }
  }
  return sizes;
}

// Exact diameter when BFS from every node fits the budget; else -1 and a note with a lower
// bound from two BFS sweeps (the farthest node from the farthest node of node 0).
int diameter(const Adjacency& adj, std::size_t links, std::vector<std::string>& notes) {
  const std::size_t n = adj.size();
  const double cost = static_cast<double>(n) * static_cast<double>(n + links);
  if (cost <= kDiameterBudget) {
    int d = 0;
    for (std::size_t s = 0; s < n; ++s) {
      const auto dist = bfs(adj, static_cast<int>(s));
      d = std::max(d, *std::max_element(dist.begin(), dist.end()));
    }
    return d;
  }
  std::vector<int> order;
  bfs(adj, 0, &order);
  const auto dist = bfs(adj, order.back());
  std::ostringstream note;
  note << "diameter skipped: BFS from every node would take " << n << " x " << (n + links)
       << " steps (exact up to " << kDiameterBudget << "); it is at least "
       << *std::max_element(dist.begin(), dist.end()) << " (two BFS sweeps)";
  notes.push_back(note.str());
  return -1;
}

}  // namespace

void check_topology_size(long nodes, long edges, int max_nodes, const std::string& what) {
  if (nodes > max_nodes) {
    throw TopologyError(what + ": " + std::to_string(nodes) + " nodes, above the limit of " +
                        std::to_string(max_nodes) +
                        " (topology.max_nodes, or --max-nodes on the command line, raises it)");
  }
  const long max_edges = kEdgesPerMaxNode * max_nodes;
  if (edges > max_edges) {
    throw TopologyError(what + ": " + std::to_string(edges) + " edges, above the limit of " +
                        std::to_string(max_edges) + " (" + std::to_string(kEdgesPerMaxNode) +
                        " x topology.max_nodes; raise max_nodes or use a sparser graph)");
  }
}

std::vector<int> Topology::component_sizes() const {
  if (schedule_ == Schedule::kPeerSampling) return {size()};  // any node may draw any other
  const Adjacency adj = union_out_adjacency();
  std::vector<int> sizes;
  if (directed_) {
    sizes = strong_component_sizes(adj);
  } else {
    std::vector<char> done(adj.size(), 0);
    for (std::size_t s = 0; s < adj.size(); ++s) {
      if (done[s]) continue;
      std::vector<int> order;
      bfs(adj, static_cast<int>(s), &order);
      for (int v : order) done[static_cast<std::size_t>(v)] = 1;
      sizes.push_back(static_cast<int>(order.size()));
    }
  }
  std::sort(sizes.rbegin(), sizes.rend());
  return sizes;
}

Topology::Summary Topology::summary() const {
  const int n = size();
  Summary s;
  s.nodes = n;
  if (schedule_ == Schedule::kPeerSampling) {
    // The union over rounds is the complete graph; each round is a fresh random draw.
    s.edges = n * (n - 1);
    s.degree_min = s.degree_max = n - 1;
    s.component_sizes = {n};
    s.connected = true;
    s.diameter = 1;
    s.slem = s.spectral_gap = std::numeric_limits<double>::quiet_NaN();
    s.slem_method = "skipped";
    s.notes.push_back("peer sampling: each round every node pushes to " +
                      std::to_string(params_.fanout) +
                      " peers drawn afresh from (seed, round, node); there is no fixed mixing "
                      "matrix to take a SLEM of (edges and degrees above are the union)");
    return s;
  }
  const Adjacency adj = union_out_adjacency();
  std::size_t links = 0;
  for (const auto& a : adj) links += a.size();
  s.edges = static_cast<int>(directed_ ? links : links / 2);
  s.degree_min = n ? static_cast<int>(adj[0].size()) : 0;
  s.degree_max = s.degree_min;
  for (const auto& a : adj) {
    s.degree_min = std::min<int>(s.degree_min, static_cast<int>(a.size()));
    s.degree_max = std::max<int>(s.degree_max, static_cast<int>(a.size()));
  }
  s.component_sizes = component_sizes();
  s.connected = s.component_sizes.size() == 1;
  if (!s.connected) {
    s.slem = 1.0;
    s.slem_method = "exact";
    return s;
  }
  s.diameter = diameter(adj, links, s.notes);
  const SpectralFigures f = spectral_figures(*this);
  s.slem = f.slem;
  s.spectral_gap = 1.0 - f.slem;
  s.slem_method = f.method;
  s.rounds_to_exact_average = f.rounds_to_exact_average;
  if (!f.note.empty()) s.notes.push_back(f.note);
  return s;
}

}  // namespace rumor
