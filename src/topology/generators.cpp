#include "rumor/topology/generators.hpp"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <numeric>
#include <set>

#include "rumor/common/error.hpp"
#include "rumor/common/rng.hpp"
#include "rumor/common/strings.hpp"

namespace rumor {
namespace {

// Davis, Gardner and Gardner (1941), "Deep South": 18 women (0-17) and the 14 social
// events (18-31) they attended; 89 undirected edges, embedded so the generator needs no files.
constexpr int kDavisEdges[][2] = {
    {0, 18},  {0, 19},  {0, 20},  {0, 21},  {0, 22},  {0, 23},  {0, 25},  {0, 26},  {1, 18},
    {1, 19},  {1, 20},  {1, 22},  {1, 23},  {1, 24},  {1, 25},  {2, 19},  {2, 20},  {2, 21},
    {2, 22},  {2, 23},  {2, 24},  {2, 25},  {2, 26},  {3, 18},  {3, 20},  {3, 21},  {3, 22},
    {3, 23},  {3, 24},  {3, 25},  {4, 20},  {4, 21},  {4, 22},  {4, 24},  {5, 20},  {5, 22},
    {5, 23},  {5, 25},  {6, 22},  {6, 23},  {6, 24},  {6, 25},  {7, 23},  {7, 25},  {7, 26},
    {8, 22},  {8, 24},  {8, 25},  {8, 26},  {9, 24},  {9, 25},  {9, 26},  {9, 29},  {10, 25},
    {10, 26}, {10, 27}, {10, 29}, {11, 25}, {11, 26}, {11, 27}, {11, 29}, {11, 30}, {11, 31},
    {12, 24}, {12, 25}, {12, 26}, {12, 27}, {12, 29}, {12, 30}, {12, 31}, {13, 23}, {13, 24},
    {13, 26}, {13, 27}, {13, 28}, {13, 29}, {13, 30}, {13, 31}, {14, 24}, {14, 25}, {14, 27},
    {14, 28}, {14, 29}, {15, 25}, {15, 26}, {16, 26}, {16, 28}, {17, 26}, {17, 28}};

std::vector<NodeInfo> make_nodes(const GenOptions& o) {
  std::vector<NodeInfo> nodes;
  for (int i = 0; i < o.nodes; ++i)
    nodes.push_back({i, o.host, o.base_port ? *o.base_port + i : default_port(i)});
  return nodes;
}

Topology undirected(const std::string& name, const GenOptions& o,
                    const std::set<std::pair<int, int>>& pairs) {
  std::vector<Edge> edges;
  for (auto [a, b] : pairs) edges.push_back({std::min(a, b), std::max(a, b), std::nullopt});
  Topology t(name, false, Schedule::kStatic, MixingKind::kMetropolis, make_nodes(o),
             std::move(edges), "generated " + name);
  t.set_ports_explicit(o.base_port.has_value());
  return t;
}

void require_nodes(const GenOptions& o, int min, const std::string& kind) {
  if (o.nodes < min)
    throw TopologyError("topology gen " + kind + ": --nodes must be at least " +
                        std::to_string(min) + ", got " + std::to_string(o.nodes));
}

// Refuses a graph of more edges than the limit allows before building it.
void require_edges(const GenOptions& o, double edges, const std::string& kind) {
  check_topology_size(o.nodes, static_cast<long>(std::min(edges, 9e18)), o.max_nodes,
                      "topology gen " + kind);
}

std::pair<int, int> ordered(int a, int b) {
  return {std::min(a, b), std::max(a, b)};
}

bool connected(int n, const std::set<std::pair<int, int>>& pairs) {
  std::vector<int> parent(n);
  std::iota(parent.begin(), parent.end(), 0);
  auto find = [&](int x) {
    while (parent[x] != x) x = parent[x] = parent[parent[x]];
    return x;
  };
  int components = n;
  for (auto [a, b] : pairs) {
    const int ra = find(a), rb = find(b);
    if (ra != rb) {
      parent[ra] = rb;
      --components;
    }
  }
  return components == 1;
}

Topology ring(const GenOptions& o) {
  require_nodes(o, 2, "ring");
  std::set<std::pair<int, int>> p;
  for (int i = 0; i < o.nodes; ++i) p.insert(ordered(i, (i + 1) % o.nodes));
  return undirected("ring" + std::to_string(o.nodes), o, p);
}

Topology torus(const GenOptions& o) {
  require_nodes(o, 4, "torus");
  int rows = o.rows;
  if (rows == 0) {
    rows = static_cast<int>(std::sqrt(static_cast<double>(o.nodes)));
    while (o.nodes % rows != 0) --rows;
  }
  if (rows < 1 || o.nodes % rows != 0)
    throw TopologyError("topology gen torus: --rows " + std::to_string(rows) +
                        " does not divide --nodes " + std::to_string(o.nodes));
  const int cols = o.nodes / rows;
  if (rows < 3 || cols < 3)
    throw TopologyError("topology gen torus: a 2-D torus needs at least 3 rows and 3 columns; " +
                        std::to_string(o.nodes) + " nodes give " + std::to_string(rows) + "x" +
                        std::to_string(cols) + " (try 9, 12, 16, 25 ... nodes)");
  std::set<std::pair<int, int>> p;
  for (int r = 0; r < rows; ++r) {
    for (int c = 0; c < cols; ++c) {
      const int i = r * cols + c;
      p.insert(ordered(i, r * cols + (c + 1) % cols));
      p.insert(ordered(i, ((r + 1) % rows) * cols + c));
    }
  }
  return undirected("torus" + std::to_string(o.nodes), o, p);
}

Topology complete(const GenOptions& o) {
  require_nodes(o, 2, "complete");
  require_edges(o, 0.5 * o.nodes * (o.nodes - 1.0), "complete");
  std::set<std::pair<int, int>> p;
  for (int i = 0; i < o.nodes; ++i)
    for (int j = i + 1; j < o.nodes; ++j) p.insert({i, j});
  return undirected("complete" + std::to_string(o.nodes), o, p);
}

Topology star(const GenOptions& o) {
  require_nodes(o, 2, "star");
  std::set<std::pair<int, int>> p;
  for (int i = 1; i < o.nodes; ++i) p.insert({0, i});
  return undirected("star" + std::to_string(o.nodes), o, p);
}

Topology exponential(const GenOptions& o) {
  require_nodes(o, 2, "exponential");
  // SGP's one-peer graph: round t, node i sends to i + 2^(t mod period). The edges listed
  // are the union over one period, for readers; the schedule defines each round.
  std::vector<Edge> edges;
  std::set<std::pair<int, int>> seen;
  for (int hop = 1; hop <= o.nodes - 1; hop *= 2)
    for (int i = 0; i < o.nodes; ++i)
      if (seen.insert({i, (i + hop) % o.nodes}).second)
        edges.push_back({i, (i + hop) % o.nodes, std::nullopt});
  Topology t("exponential" + std::to_string(o.nodes), true, Schedule::kOnePeerExponential,
             MixingKind::kUniform, make_nodes(o), std::move(edges), "generated exponential");
  t.set_ports_explicit(o.base_port.has_value());
  return t;
}

Topology base(const GenOptions& o) {
  require_nodes(o, 2, "base");
  require_edges(o, 0.5 * o.nodes * std::max(o.k, 1), "base");
  ScheduleParams params;
  params.rounds = base_graph_rounds(o.nodes, o.k);
  Topology t("base" + std::to_string(o.k + 1) + "-" + std::to_string(o.nodes), false,
             Schedule::kPeriodic, MixingKind::kExplicit, std::move(params), make_nodes(o), {},
             "generated base");
  t.set_ports_explicit(o.base_port.has_value());
  return t;
}

// G(n, p) in time linear in the edges: the gap to the next present pair is geometric
// (Batagelj and Brandes 2005, "Efficient generation of large random networks").
std::set<std::pair<int, int>> gnp_pairs(int n, double p, Rng& rng) {
  std::set<std::pair<int, int>> pairs;
  const double log_q = std::log1p(-p);
  long i = 1, j = -1;  // pairs (j, i) with j < i, in row order
  while (i < n) {
    const double u = rng.uniform();
    j += 1 + (p >= 1 ? 0 : static_cast<long>(std::floor(std::log1p(-u) / log_q)));
    while (j >= i && i < n) {
      j -= i;
      ++i;
    }
    if (i < n) pairs.insert({static_cast<int>(j), static_cast<int>(i)});
  }
  return pairs;
}

Topology erdos_renyi(const GenOptions& o) {
  require_nodes(o, 2, "erdos-renyi");
  if (!(o.p > 0 && o.p <= 1))
    throw TopologyError("topology gen erdos-renyi: --p must be in (0, 1]");
  require_edges(o, o.p * 0.5 * o.nodes * (o.nodes - 1.0), "erdos-renyi");
  // Re-drawn until connected; bounded, with a message that says what to change.
  for (int attempt = 0; attempt < 1000; ++attempt) {
    Rng rng = Rng::derive(o.seed, 0x45, static_cast<std::uint64_t>(attempt));
    const auto p = gnp_pairs(o.nodes, o.p, rng);
    if (connected(o.nodes, p)) return undirected("erdos-renyi" + std::to_string(o.nodes), o, p);
  }
  throw TopologyError("topology gen erdos-renyi: no connected graph in 1000 draws with --p " +
                      std::to_string(o.p) + "; raise --p (about ln(n)/n or more)");
}

// A node u != i not yet linked to i, uniformly: by rejection (a few draws on a sparse
// graph), else by listing the choices; -1 when there is none.
int rewire_target(int n, int i, const std::set<std::pair<int, int>>& p, Rng& rng) {
  for (int attempt = 0; attempt < 64; ++attempt) {
    const int u = static_cast<int>(rng.below(static_cast<std::uint64_t>(n)));
    if (u != i && !p.count(ordered(i, u))) return u;
  }
  std::vector<int> choices;
  for (int u = 0; u < n; ++u)
    if (u != i && !p.count(ordered(i, u))) choices.push_back(u);
  return choices.empty() ? -1 : choices[rng.below(choices.size())];
}

Topology small_world(const GenOptions& o) {
  require_nodes(o, 3, "small-world");
  if (o.k < 2 || o.k % 2 != 0 || o.k >= o.nodes)
    throw TopologyError("topology gen small-world: --k must be even, >= 2 and < --nodes; got " +
                        std::to_string(o.k));
  require_edges(o, 0.5 * o.nodes * o.k, "small-world");
  if (!(o.beta >= 0 && o.beta <= 1))
    throw TopologyError("topology gen small-world: --beta must be in [0, 1]");
  for (int attempt = 0; attempt < 1000; ++attempt) {
    Rng rng = Rng::derive(o.seed, 0x57, static_cast<std::uint64_t>(attempt));
    std::set<std::pair<int, int>> p;
    for (int i = 0; i < o.nodes; ++i)
      for (int d = 1; d <= o.k / 2; ++d) p.insert(ordered(i, (i + d) % o.nodes));
    // Watts-Strogatz: each lattice edge (i, i+d) is rewired with probability beta to (i, u).
    for (int d = 1; d <= o.k / 2; ++d) {
      for (int i = 0; i < o.nodes; ++i) {
        if (rng.uniform() >= o.beta) continue;
        const auto old = ordered(i, (i + d) % o.nodes);
        if (!p.count(old)) continue;
        const int u = rewire_target(o.nodes, i, p, rng);
        if (u < 0) continue;
        p.erase(old);
        p.insert(ordered(i, u));
      }
    }
    if (connected(o.nodes, p)) return undirected("small-world" + std::to_string(o.nodes), o, p);
  }
  throw TopologyError("topology gen small-world: no connected graph in 1000 draws; lower --beta");
}

Topology barabasi_albert(const GenOptions& o) {
  if (o.m < 1) throw TopologyError("topology gen barabasi-albert: --m must be >= 1");
  require_nodes(o, o.m + 1, "barabasi-albert");
  require_edges(o, static_cast<double>(o.m) * o.nodes, "barabasi-albert");
  Rng rng = Rng::derive(o.seed, 0x42);
  std::set<std::pair<int, int>> p;
  // Start from a star on m + 1 nodes; then each new node attaches to m distinct nodes
  // chosen with probability proportional to degree.
  std::vector<int> ends;  // every edge end once: sampling from it is degree-proportional
  for (int i = 1; i <= o.m; ++i) {
    p.insert({0, i});
    ends.push_back(0);
    ends.push_back(i);
  }
  for (int v = o.m + 1; v < o.nodes; ++v) {
    std::set<int> targets;
    while (static_cast<int>(targets.size()) < o.m) targets.insert(ends[rng.below(ends.size())]);
    for (int t : targets) {
      p.insert(ordered(v, t));
      ends.push_back(v);
      ends.push_back(t);
    }
  }
  return undirected("barabasi-albert" + std::to_string(o.nodes), o, p);
}

Topology social(const GenOptions& o) {
  if (o.nodes != 32 && o.nodes != 0)
    throw TopologyError(
        "topology gen social: the Davis Southern Women graph has 32 nodes; "
        "pass --nodes 32 or leave it out");
  GenOptions fixed = o;
  fixed.nodes = 32;
  std::set<std::pair<int, int>> p;
  for (const auto& e : kDavisEdges) p.insert(ordered(e[0], e[1]));
  return undirected("social32", fixed, p);
}

template <class T>
void assign(T& field, const nlohmann::json& v) {
  field = v.get<T>();
}
void assign(std::optional<int>& field, const nlohmann::json& v) {
  field = v.get<int>();
}

}  // namespace

const std::vector<GenOption>& generator_options() {
  static const std::vector<GenOption> options = {
      {"nodes", "--nodes,-n", &GenOptions::nodes,
       "number of nodes (required unless the kind has a fixed size)"},
      {"host", "--host", &GenOptions::host, "host of every node"},
      {"base_port", "--base-port", &GenOptions::base_port,
       "node i listens on base-port + i (default: left to the launcher, 29500 + i)"},
      {"seed", "--seed", &GenOptions::seed, "seed for random graphs"},
      {"p", "--p", &GenOptions::p, "erdos-renyi: edge probability"},
      {"k", "--k", &GenOptions::k,
       "small-world: ring neighbours per node (even); base: maximum degree k"},
      {"beta", "--beta", &GenOptions::beta, "small-world: rewiring probability"},
      {"m", "--m", &GenOptions::m, "barabasi-albert: edges per new node"},
      {"rows", "--rows", &GenOptions::rows, "torus: number of rows (0: most square)"},
      {"max_nodes", "--max-nodes", &GenOptions::max_nodes,
       "refuse more nodes than this (and more edges than 100 per allowed node), before "
       "building anything"},
  };
  return options;
}

void set_generator_option(GenOptions& o, const std::string& key, const nlohmann::json& value) {
  for (const auto& opt : generator_options()) {
    if (opt.key != key) continue;
    std::visit([&](auto field) { assign(o.*field, value); }, opt.field);
    return;
  }
  throw TopologyError("unknown topology generator option \"" + key + "\"");
}

std::vector<std::string> GeneratorInfo::keys() const {
  std::vector<std::string> out = {"nodes", "host", "base_port", "max_nodes"};
  out.insert(out.end(), options.begin(), options.end());
  return out;
}

namespace {
// Every entry first checks --nodes against --max-nodes, so no kind allocates for a node
// count it will refuse.
std::vector<GeneratorInfo> checked(std::vector<GeneratorInfo> generators) {
  for (auto& g : generators) {
    g.make = [make = g.make, name = g.name](const GenOptions& o) {
      check_topology_size(o.nodes, 0, o.max_nodes, "topology gen " + name);
      return make(o);
    };
  }
  return generators;
}
}  // namespace

const std::vector<GeneratorInfo>& topology_generators() {
  static const std::vector<GeneratorInfo> generators = checked({
      {"ring", "cycle: node i linked to i-1 and i+1", {}, ring},
      {"torus", "2-D periodic grid (rows 0: the most square factorisation)", {"rows"}, torus},
      {"complete", "every pair linked", {}, complete},
      {"star", "node 0 linked to every other", {}, star},
      {"exponential",
       "SGP's one-peer time-varying directed graph: round t, i sends to i + 2^(t mod log2 n)",
       {},
       exponential},
      {"base",
       "Base-(k+1) graph: periodic rounds of degree <= k whose product is exact averaging for "
       "any n",
       {"k"},
       base},
      {"erdos-renyi", "random graph G(n, p), re-drawn until connected", {"seed", "p"}, erdos_renyi},
      {"small-world",
       "Watts-Strogatz ring lattice of k neighbours, rewired with probability beta",
       {"seed", "k", "beta"},
       small_world},
      {"barabasi-albert",
       "preferential attachment, m edges per new node",
       {"seed", "m"},
       barabasi_albert},
      {"social",
       "Davis Southern Women graph (32 nodes, 89 edges; QGM's social topology)",
       {},
       social,
       32},
  });
  return generators;
}

const GeneratorInfo& find_generator(const std::string& kind) {
  std::vector<std::string> names;
  for (const auto& g : topology_generators()) {
    if (g.name == kind) return g;
    names.push_back(g.name);
  }
  throw TopologyError("unknown topology kind \"" + kind + "\"; did you mean \"" +
                      nearest(kind, names) + "\"? valid kinds: " + join(names));
}

Topology generate_topology(const std::string& kind, const GenOptions& options) {
  return find_generator(kind).make(options);
}

}  // namespace rumor
