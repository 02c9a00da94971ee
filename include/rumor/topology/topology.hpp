#pragma once
// A network of peers: who they are (id, host, port), who talks to whom, and with what
// mixing weights, possibly changing from round to round (time-varying schedules).
// Thread safety: a Topology is immutable after construction; any thread may read it.
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace rumor {

struct NodeInfo {
  int id = 0;
  std::string host = "127.0.0.1";
  int port = 0;
  // Not running at the start of a run: it joins later (faults.join, or started by hand),
  // admitted by its neighbours at a round boundary.
  bool standby = false;
};

// A directed link from -> to. For undirected graphs each edge is stored once with
// from < to and goes both ways. weight: W[to][from] when mixing is explicit.
struct Edge {
  int from = 0;
  int to = 0;
  std::optional<double> weight;
};

// kStatic: one graph for every round. kOnePeerExponential: round t, i sends to i + 2^(t mod
// period). kPeerSampling: each round every node pushes to `fanout` peers drawn afresh from
// (seed, round, node) out of all other nodes (period 1: nothing repeats). kPeriodic: an
// explicit list of rounds, each its own set of (weighted) edges, repeated.
enum class Schedule { kStatic, kOnePeerExponential, kPeerSampling, kPeriodic };
enum class MixingKind { kMetropolis, kUniform, kExplicit };

const char* to_string(Schedule s);
const char* to_string(MixingKind m);

// Dense n x n matrix, row-major. W(j, i) is the weight node j gives to what it receives
// from node i: x_j <- sum_i W(j, i) x_i. Columns sum to one (each node hands out all its
// mass); for undirected metropolis mixing rows sum to one as well.
class MixingMatrix {
 public:
  MixingMatrix() = default;
  explicit MixingMatrix(int n) : n_(n), w_(static_cast<std::size_t>(n) * n, 0.0) {}
  int size() const { return n_; }
  double& operator()(int j, int i) { return w_[static_cast<std::size_t>(j) * n_ + i]; }
  double operator()(int j, int i) const { return w_[static_cast<std::size_t>(j) * n_ + i]; }
  const std::vector<double>& data() const { return w_; }

 private:
  int n_ = 0;
  std::vector<double> w_;
};

// The same matrix by rows, for large graphs: row j lists (i, W(j, i)) for every i with a
// non-zero weight, itself included. O(nodes + edges) memory.
struct SparseMixing {
  std::vector<std::vector<std::pair<int, double>>> rows;
  int size() const { return static_cast<int>(rows.size()); }
  // y = W x (x and y of length size()).
  void apply(const std::vector<double>& x, std::vector<double>& y) const;
};

// Bounds on what a topology may cost, checked before anything of that size is allocated.
inline constexpr int kDefaultMaxNodes = 100000;
// Port of node `id` when nothing sets it: 29500 + id, or 0 (unassigned, for a launcher to
// set) past 65535, so that graphs of more than 36,035 nodes remain valid for in-process runs.
inline constexpr int kDefaultBasePort = 29500;
inline int default_port(int id) {
  return id <= 65535 - kDefaultBasePort ? kDefaultBasePort + id : 0;
}
// Edges allowed per node of max_nodes: a complete graph of 100,000 nodes (5e9 edges) is
// refused at once rather than built.
inline constexpr long kEdgesPerMaxNode = 100;
// Throws TopologyError naming `what` when `nodes` is above `max_nodes` or `edges` above
// kEdgesPerMaxNode * max_nodes, and says which option raises the limit.
void check_topology_size(long nodes, long edges, int max_nodes, const std::string& what);

// What a schedule other than static needs besides nodes and edges.
struct ScheduleParams {
  int fanout = 0;  // kPeerSampling: peers each node pushes to per round (1..n-1)
  // kPeerSampling: the draws are a function of (seed, round, node); unset: 1 (a run sets its
  // own seed when the topology names none).
  std::optional<std::uint64_t> seed;
  // kPeriodic: the edges of each round of one period (same form as edges: undirected ones
  // once with from < to; weights when mixing is explicit).
  std::vector<std::vector<Edge>> rounds;
};

class Topology {
 public:
  // Builds and validates; throws TopologyError naming `source` and the problem.
  // `edge_lines` (optional, same length as edges) gives the source line of each edge
  // and `node_lines` of each node, for error messages.
  Topology(std::string name, bool directed, Schedule schedule, MixingKind mixing,
           std::vector<NodeInfo> nodes, std::vector<Edge> edges, std::string source = "",
           std::vector<int> node_lines = {}, std::vector<int> edge_lines = {});
  // The same with a schedule's own parameters (peer sampling, periodic rounds).
  Topology(std::string name, bool directed, Schedule schedule, MixingKind mixing,
           ScheduleParams params, std::vector<NodeInfo> nodes, std::vector<Edge> edges,
           std::string source = "", std::vector<int> node_lines = {},
           std::vector<int> edge_lines = {});

  const std::string& name() const { return name_; }
  const std::string& source() const { return source_; }
  int size() const { return static_cast<int>(nodes_.size()); }
  bool directed() const { return directed_; }
  Schedule schedule() const { return schedule_; }
  MixingKind mixing_kind() const { return mixing_; }
  bool time_varying() const { return schedule_ != Schedule::kStatic; }
  // Rounds after which the schedule repeats (1 for static, and for peer sampling, whose rounds
  // are drawn afresh and never repeat).
  int period() const;
  int fanout() const { return params_.fanout; }
  std::uint64_t sample_seed() const { return params_.seed.value_or(1); }
  // kPeriodic: the edges of each round of one period (empty otherwise).
  const std::vector<std::vector<Edge>>& rounds() const { return params_.rounds; }
  // True when the file set ports (base_port or a node's port); false lets a launcher
  // move the whole run to a free port range.
  bool ports_explicit() const { return ports_explicit_; }
  void set_ports_explicit(bool v) { ports_explicit_ = v; }
  // Moves every node to base_port + id (keeps hosts).
  void rebase_ports(int base_port);

  const NodeInfo& node(int id) const { return nodes_.at(static_cast<std::size_t>(id)); }
  const std::vector<NodeInfo>& nodes() const { return nodes_; }
  bool standby(int id) const { return node(id).standby; }
  // Edges as given (undirected: once each, from < to). For a time-varying schedule,
  // the union over one period; none for peer sampling (every other node may be drawn).
  const std::vector<Edge>& edges() const { return edges_; }

  // Directed links of one round: i sends to out_neighbors(i, r), receives from
  // in_neighbors(i, r). Sorted ascending, no self. Peer sampling: out O(fanout), in O(n fanout)
  // (every node's draw of that round).
  std::vector<int> out_neighbors(int i, std::int64_t round = 0) const;
  std::vector<int> in_neighbors(int i, std::int64_t round = 0) const;
  // Every node i ever sends to (out_peers) or hears from (in_peers) under the schedule.
  std::vector<int> out_peers(int i) const;
  std::vector<int> in_peers(int i) const;
  // Every node i ever exchanges data with, in either direction, over one period:
  // the data-plane links a transport opens.
  std::vector<int> peers(int i) const;
  // The control ring: i-1 and i+1 mod n (one entry when n == 2, none when n == 1).
  std::vector<int> control_peers(int i) const;

  // Mixing matrix of one round: dense (n^2 memory; for small graphs) or by rows.
  MixingMatrix mixing(std::int64_t round = 0) const;
  SparseMixing sparse_mixing(std::int64_t round = 0) const;
  // One entry W(to, from) of that matrix without building it (to != from: a link weight,
  // 0 when there is no link; to == from: the self weight). O(degree).
  double weight(int to, int from, std::int64_t round = 0) const;

  // Graph figures of the union graph over one period (strong connectivity for directed).
  // Time and memory linear in the edges: above a size the diameter and the SLEM come from
  // cheaper methods or are skipped, and `notes` says which.
  struct Summary {
    int nodes = 0;
    int edges = 0;
    bool connected = false;
    std::vector<int> component_sizes;  // (strongly) connected components, largest first
    int degree_min = 0;
    int degree_max = 0;
    int diameter = -1;  // -1 when not connected or skipped (see notes)
    double slem = 0;    // NaN when skipped (see notes)
    double spectral_gap = 0;
    std::string slem_method;  // how slem was found (SpectralFigures::method)
    // > 0: the product of the mixing matrices of rounds 0..r-1 is exact averaging.
    int rounds_to_exact_average = 0;
    std::vector<std::string> notes;
  };
  Summary summary() const;
  // (Strongly) connected component sizes of the union graph, largest first. O(n + edges).
  std::vector<int> component_sizes() const;

  // The JSON form of a topology file (README) (round-trips through parse_topology_json).
  nlohmann::json to_json() const;

 private:
  void validate(const std::vector<int>& node_lines, const std::vector<int>& edge_lines);
  void validate_edges(std::vector<Edge>& edges, const std::vector<int>& edge_lines,
                      const std::string& context, bool weights) const;
  void validate_weights(const std::vector<Edge>& edges, const std::vector<int>& node_line_by_id,
                        const std::string& context) const;
  void validate_schedule(const std::vector<int>& node_line_by_id);
  void validate_peer_sampling(const std::string& file) const;
  void build_rounds(const std::string& file, const std::vector<int>& node_line_by_id);
  std::vector<std::vector<int>> union_out_adjacency() const;
  // The weighted edges mixing of `round` reads (periodic: that round's; else all).
  const std::vector<Edge>& round_edges(std::int64_t round) const;
  std::string where(const std::vector<int>& lines, std::size_t index) const;

  std::string name_;
  std::string source_;
  bool directed_ = false;
  Schedule schedule_ = Schedule::kStatic;
  MixingKind mixing_ = MixingKind::kMetropolis;
  bool ports_explicit_ = false;
  std::vector<NodeInfo> nodes_;
  std::vector<Edge> edges_;
  std::vector<std::vector<int>> out_;  // static out-adjacency (directed view)
  std::vector<std::vector<int>> in_;
  ScheduleParams params_;
  // kPeriodic: adjacency of each round (directed view), [round][node].
  std::vector<std::vector<std::vector<int>>> round_out_, round_in_;
};

// Second-largest eigenvalue modulus (SLEM) of W (static) or of the product over one period,
// raised to 1/period (time-varying), and how it was found.
struct SpectralFigures {
  double slem = 0;  // NaN when skipped
  // "exact" (closed form, no rounding passed off as mixing), "dense" (all eigenvalues),
  // "lanczos" (iterative, sparse), or "skipped".
  std::string method;
  // > 0: the product of the mixing matrices of rounds 0..r-1 is exact averaging (SLEM 0).
  int rounds_to_exact_average = 0;
  std::string note;  // what was approximated or skipped, and why
};
SpectralFigures spectral_figures(const Topology& topology);
double slem(const Topology& topology);  // spectral_figures(topology).slem

// How to read a topology file.
struct TopologyReadOptions {
  // "auto" (JSON when the text starts with '{', else a plain format by extension, else
  // guessed from the content with a warning), "json", "edges" or "adj".
  std::string format = "auto";
  int max_nodes = kDefaultMaxNodes;
  // Warnings (a guessed format, a repeated edge, a one-sided neighbour) go here; when
  // null, to the log.
  std::vector<std::string>* warnings = nullptr;
};
// The valid values of TopologyReadOptions::format; throws TopologyError on another.
const std::vector<std::string>& topology_formats();
void check_topology_format(const std::string& format);

// Reads a topology file: JSON (the README's topology file format), or the plain edge-list /
// adjacency-list formats (first line n). Throws TopologyError with file, line (and column for JSON
// syntax errors) and what is wrong.
Topology load_topology(const std::string& path, const TopologyReadOptions& options = {});
// Parses JSON text; `source` names it in error messages.
Topology parse_topology_json(const std::string& text, const std::string& source,
                             const TopologyReadOptions& options = {});
Topology parse_topology_json(const nlohmann::json& j, const std::string& source,
                             const TopologyReadOptions& options = {});
// Plain formats (options.format "edges", "adj" or "auto": by extension, else guessed).
Topology parse_topology_plain(const std::string& text, const std::string& source,
                              const TopologyReadOptions& options = {});

// Writes the JSON form to `path` (atomically: temp file, then rename).
void save_topology(const Topology& topology, const std::string& path);

}  // namespace rumor
