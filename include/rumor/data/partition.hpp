#pragma once
// Non-IID partitions of a dataset's training split over nodes. Deterministic from the
// seed: every node computes the whole partition by itself and keeps its own list, so
// nodes agree without talking. Thread safety: pure functions.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace rumor::data {

// Sample indices (into Split::labels) of each node; every sample appears exactly once
// over all nodes (the quantity partition included).
struct Partition {
  std::vector<std::vector<std::size_t>> nodes;
  std::size_t num_nodes() const { return nodes.size(); }
};

struct PartitionOptions {
  std::string kind = "iid";  // iid, dirichlet, shards, quantity, natural
  std::uint64_t seed = 1;
  double alpha = 0.5;               // dirichlet: concentration (0.1 strongly skewed, 100 ~ IID)
  std::size_t min_size = 10;        // dirichlet, quantity: every node gets at least this many
  int max_attempts = 100;           // dirichlet: re-draws before giving up
  std::size_t shards_per_node = 2;  // shards: label-sorted shards per node
  double power = 1.5;               // quantity: node sizes ~ Pareto-like power law, exponent
};

// Everything a partitioner sees: labels (and optional natural groups) of the train split.
struct PartitionInput {
  std::span<const std::int32_t> labels;
  int num_classes = 0;
  std::span<const std::int32_t> groups;  // natural groups (empty if the dataset has none)
};

// Throws rumor::ConfigError on an unknown kind or bad options, rumor::DataError when the
// data cannot be split as asked (e.g. fewer samples than nodes * min_size); messages say
// what to change.
Partition make_partition(const PartitionInput& input, std::size_t num_nodes,
                         const PartitionOptions& options);

// Registry of partitioners by name (explicit registration; the built-ins are always there).
using PartitionFn =
    std::function<Partition(const PartitionInput&, std::size_t num_nodes, const PartitionOptions&)>;
void register_partitioner(const std::string& name, PartitionFn fn);
std::vector<std::string> partitioner_names();

struct PartitionStats {
  std::size_t size_min = 0;
  std::size_t size_max = 0;
  double size_mean = 0.0;
  // Mean over nodes of the total-variation distance between a node's label distribution
  // and the global one: 0 for perfectly balanced nodes, near 1 when nodes hold one class.
  double label_skew = 0.0;
  std::vector<std::vector<std::size_t>> counts;  // counts[node][class]
};
PartitionStats partition_stats(const Partition& partition, std::span<const std::int32_t> labels,
                               int num_classes);

}  // namespace rumor::data
