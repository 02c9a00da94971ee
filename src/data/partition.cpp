// Partitioners. All randomness comes from Rng::derive(seed, kStreamPartition, kind), so
// every node computes the same lists.
#include "rumor/data/partition.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <mutex>
#include <numeric>

#include "random.hpp"
#include "rumor/common/error.hpp"
#include "rumor/data/dataset.hpp"

namespace rumor::data {
namespace {

using Indices = std::vector<std::size_t>;

std::uint64_t kind_id(const std::string& kind) {
  std::uint64_t h = 1469598103934665603ULL;  // FNV-1a
  for (unsigned char c : kind) h = (h ^ c) * 1099511628211ULL;
  return h;
}

Rng partition_rng(const PartitionOptions& o) {
  return Rng::derive(o.seed, detail::kStreamPartition, kind_id(o.kind));
}

// Splits `items` into consecutive chunks of the given sizes.
Partition cut(const Indices& items, const std::vector<std::size_t>& sizes) {
  Partition p;
  p.nodes.resize(sizes.size());
  std::size_t pos = 0;
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    p.nodes[i].assign(items.begin() + static_cast<std::ptrdiff_t>(pos),
                      items.begin() + static_cast<std::ptrdiff_t>(pos + sizes[i]));
    pos += sizes[i];
  }
  return p;
}

std::vector<std::size_t> even_sizes(std::size_t total, std::size_t parts) {
  std::vector<std::size_t> sizes(parts, total / parts);
  for (std::size_t i = 0; i < total % parts; ++i) ++sizes[i];
  return sizes;
}

Indices all_indices(std::size_t n) {
  Indices v(n);
  std::iota(v.begin(), v.end(), std::size_t{0});
  return v;
}

Partition iid(const PartitionInput& in, std::size_t n, const PartitionOptions& o) {
  Rng rng = partition_rng(o);
  Indices idx = all_indices(in.labels.size());
  detail::shuffle(idx, rng);
  return cut(idx, even_sizes(idx.size(), n));
}

std::vector<Indices> by_class(const PartitionInput& in) {
  std::vector<Indices> cls(static_cast<std::size_t>(in.num_classes));
  for (std::size_t i = 0; i < in.labels.size(); ++i) {
    const auto l = in.labels[i];
    if (l < 0 || l >= in.num_classes) {
      throw DataError("sample " + std::to_string(i) + " has label " + std::to_string(l) +
                      " outside [0, " + std::to_string(in.num_classes) + ")");
    }
    cls[static_cast<std::size_t>(l)].push_back(i);
  }
  return cls;
}

Partition dirichlet(const PartitionInput& in, std::size_t n, const PartitionOptions& o) {
  if (!(o.alpha > 0.0) || !std::isfinite(o.alpha)) {
    throw ConfigError("dirichlet partition: alpha must be > 0 (0.1 strongly skewed, 100 near IID)");
  }
  if (o.max_attempts < 1) throw ConfigError("dirichlet partition: max_attempts must be >= 1");
  if (n * o.min_size > in.labels.size()) {
    throw DataError("dirichlet partition: " + std::to_string(n) + " nodes x min_size " +
                    std::to_string(o.min_size) + " exceeds the " +
                    std::to_string(in.labels.size()) +
                    " training samples; lower min_size or use fewer nodes");
  }
  Rng rng = partition_rng(o);
  std::vector<Indices> cls = by_class(in);
  std::vector<double> p(n);
  std::size_t smallest = 0;
  for (int attempt = 0; attempt < o.max_attempts; ++attempt) {
    Partition part;
    part.nodes.resize(n);
    for (Indices c : cls) {  // copy: each attempt shuffles afresh
      detail::shuffle(c, rng);
      double sum = 0.0;
      for (double& x : p) sum += (x = detail::gamma(rng, o.alpha));
      if (!(sum > 0.0)) {  // every gamma underflowed (tiny alpha): one node takes the class
        std::fill(p.begin(), p.end(), 0.0);
        p[rng.below(n)] = 1.0;
        sum = 1.0;
      }
      // Cumulative proportions -> cut points; the last node takes the remainder.
      double acc = 0.0;
      std::size_t start = 0;
      for (std::size_t j = 0; j < n; ++j) {
        acc += p[j] / sum;
        const std::size_t end =
            j + 1 == n ? c.size()
                       : std::min(c.size(), static_cast<std::size_t>(
                                                std::llround(acc * static_cast<double>(c.size()))));
        const std::size_t e = std::max(end, start);
        part.nodes[j].insert(part.nodes[j].end(), c.begin() + static_cast<std::ptrdiff_t>(start),
                             c.begin() + static_cast<std::ptrdiff_t>(e));
        start = e;
      }
    }
    smallest = part.nodes[0].size();
    for (const auto& nd : part.nodes) smallest = std::min(smallest, nd.size());
    if (smallest >= o.min_size) {
      for (auto& nd : part.nodes) std::sort(nd.begin(), nd.end());
      return part;
    }
  }
  throw DataError("dirichlet partition: after " + std::to_string(o.max_attempts) +
                  " draws some node still had fewer than min_size = " + std::to_string(o.min_size) +
                  " samples (last draw's smallest: " + std::to_string(smallest) +
                  "); use a smaller min_size, a larger alpha, or fewer nodes");
}

Partition shards(const PartitionInput& in, std::size_t n, const PartitionOptions& o) {
  if (o.shards_per_node < 1) throw ConfigError("shards partition: shards_per_node must be >= 1");
  const std::size_t total = n * o.shards_per_node;
  if (total > in.labels.size()) {
    throw DataError("shards partition: " + std::to_string(total) + " shards but only " +
                    std::to_string(in.labels.size()) +
                    " samples; use fewer shards per node or nodes");
  }
  by_class(in);  // validates labels
  Rng rng = partition_rng(o);
  Indices idx = all_indices(in.labels.size());
  detail::shuffle(idx, rng);  // random order within each class
  std::stable_sort(idx.begin(), idx.end(),
                   [&](std::size_t a, std::size_t b) { return in.labels[a] < in.labels[b]; });
  const auto sizes = even_sizes(idx.size(), total);
  Partition shard_lists = cut(idx, sizes);
  Indices order = all_indices(total);
  detail::shuffle(order, rng);
  Partition p;
  p.nodes.resize(n);
  for (std::size_t s = 0; s < total; ++s) {
    auto& dst = p.nodes[s / o.shards_per_node];
    const auto& src = shard_lists.nodes[order[s]];
    dst.insert(dst.end(), src.begin(), src.end());
  }
  for (auto& nd : p.nodes) std::sort(nd.begin(), nd.end());
  return p;
}

// Node sizes min_size + share of the rest proportional to Pareto(power) weights; labels IID.
Partition quantity(const PartitionInput& in, std::size_t n, const PartitionOptions& o) {
  if (!(o.power > 0.0)) throw ConfigError("quantity partition: power must be > 0");
  const std::size_t total = in.labels.size();
  if (n * o.min_size > total) {
    throw DataError("quantity partition: " + std::to_string(n) + " nodes x min_size " +
                    std::to_string(o.min_size) + " exceeds the " + std::to_string(total) +
                    " training samples; lower min_size or use fewer nodes");
  }
  Rng rng = partition_rng(o);
  std::vector<double> w(n);
  double sum = 0.0;
  for (double& x : w) sum += (x = std::pow(1.0 - rng.uniform(), -1.0 / o.power));
  const std::size_t rest = total - n * o.min_size;
  std::vector<std::size_t> sizes(n);
  std::size_t used = 0;
  for (std::size_t i = 0; i < n; ++i) {
    sizes[i] =
        o.min_size + static_cast<std::size_t>(std::floor(static_cast<double>(rest) * w[i] / sum));
    used += sizes[i];
  }
  for (std::size_t i = 0; used < total; i = (i + 1) % n, ++used) ++sizes[i];
  Indices idx = all_indices(total);
  detail::shuffle(idx, rng);
  return cut(idx, sizes);
}

// The dataset's own groups (e.g. LEAF users), dealt to nodes in a seeded order.
Partition natural(const PartitionInput& in, std::size_t n, const PartitionOptions& o) {
  if (in.groups.size() != in.labels.size()) {
    throw ConfigError(
        "natural partition: this dataset has no natural groups; use leaf-synthetic or "
        "another partition kind");
  }
  std::map<std::int32_t, Indices> groups;
  for (std::size_t i = 0; i < in.groups.size(); ++i) groups[in.groups[i]].push_back(i);
  if (groups.size() < n) {
    throw DataError("natural partition: " + std::to_string(groups.size()) + " groups for " +
                    std::to_string(n) + " nodes; use at most as many nodes as groups");
  }
  std::vector<std::int32_t> ids;
  for (const auto& [g, _] : groups) ids.push_back(g);
  Rng rng = partition_rng(o);
  detail::shuffle(ids, rng);
  Partition p;
  p.nodes.resize(n);
  for (std::size_t k = 0; k < ids.size(); ++k) {
    auto& dst = p.nodes[k % n];
    const auto& src = groups[ids[k]];
    dst.insert(dst.end(), src.begin(), src.end());
  }
  for (auto& nd : p.nodes) std::sort(nd.begin(), nd.end());
  return p;
}

struct Registry {
  std::mutex mu;
  std::map<std::string, PartitionFn> fns{{"iid", iid},
                                         {"dirichlet", dirichlet},
                                         {"shards", shards},
                                         {"quantity", quantity},
                                         {"natural", natural}};
};
Registry& registry() {
  static Registry r;
  return r;
}

}  // namespace

void register_partitioner(const std::string& name, PartitionFn fn) {
  auto& r = registry();
  std::lock_guard lock(r.mu);
  r.fns[name] = std::move(fn);
}

std::vector<std::string> partitioner_names() {
  auto& r = registry();
  std::lock_guard lock(r.mu);
  std::vector<std::string> names;
  for (const auto& [name, _] : r.fns) names.push_back(name);
  return names;
}

Partition make_partition(const PartitionInput& input, std::size_t num_nodes,
                         const PartitionOptions& options) {
  if (num_nodes == 0) throw ConfigError("partition: need at least one node");
  if (input.num_classes < 1) throw ConfigError("partition: dataset has no classes");
  PartitionFn fn;
  {
    auto& r = registry();
    std::lock_guard lock(r.mu);
    auto it = r.fns.find(options.kind);
    if (it == r.fns.end()) {
      std::string names;
      for (const auto& [name, _] : r.fns) names += (names.empty() ? "" : ", ") + name;
      throw ConfigError("unknown partition kind '" + options.kind + "'; valid: " + names);
    }
    fn = it->second;
  }
  Partition p = fn(input, num_nodes, options);
  if (p.nodes.size() != num_nodes)
    throw Error("partitioner '" + options.kind + "' returned the wrong node count");
  return p;
}

PartitionStats partition_stats(const Partition& partition, std::span<const std::int32_t> labels,
                               int num_classes) {
  PartitionStats st;
  const auto k = static_cast<std::size_t>(std::max(num_classes, 0));
  const std::vector<std::size_t> global = class_counts(labels, num_classes);
  const double total = static_cast<double>(labels.size());
  st.counts.assign(partition.nodes.size(), std::vector<std::size_t>(k, 0));
  double skew_sum = 0.0;
  std::size_t non_empty = 0;
  std::size_t size_sum = 0;
  for (std::size_t i = 0; i < partition.nodes.size(); ++i) {
    const auto& nd = partition.nodes[i];
    for (auto idx : nd) {
      const auto l = labels[idx];
      if (l >= 0 && l < num_classes) ++st.counts[i][static_cast<std::size_t>(l)];
    }
    st.size_min = i == 0 ? nd.size() : std::min(st.size_min, nd.size());
    st.size_max = std::max(st.size_max, nd.size());
    size_sum += nd.size();
    if (nd.empty() || total == 0.0) continue;  // no label distribution to compare
    double tv = 0.0;
    for (std::size_t c = 0; c < k; ++c) {
      tv += std::abs(static_cast<double>(st.counts[i][c]) / static_cast<double>(nd.size()) -
                     static_cast<double>(global[c]) / total);
    }
    skew_sum += 0.5 * tv;
    ++non_empty;
  }
  st.label_skew = non_empty ? skew_sum / static_cast<double>(non_empty) : 0.0;
  st.size_mean = partition.nodes.empty()
                     ? 0.0
                     : static_cast<double>(size_sum) / static_cast<double>(partition.nodes.size());
  return st;
}

}  // namespace rumor::data
