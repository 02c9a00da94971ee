// rumor data partition: how a dataset is divided over nodes (and the table launch --dry-run
// prints).
#include <algorithm>
#include <iomanip>
#include <iostream>

#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "rumor/data/dataset.hpp"
#include "rumor/data/partition.hpp"

namespace rumor::cli {
void print_partition_table(const data::Dataset& ds, const data::Partition& p,
                           const data::PartitionStats& st, const data::PartitionOptions& opt,
                           std::ostream& out) {
  out << ds.name << ": " << ds.train.size() << " training samples, " << ds.num_classes
      << " classes, " << p.num_nodes() << " nodes, partition " << opt.kind;
  if (opt.kind == "dirichlet") out << " (alpha " << opt.alpha << ")";
  out << ", seed " << opt.seed << "\n";
  constexpr std::size_t kBar = 24;
  const std::size_t id_w = std::to_string(p.num_nodes() - 1).size();
  const std::size_t size_w = std::max<std::size_t>(std::to_string(st.size_max).size(), 4);
  out << std::setw(static_cast<int>(id_w + 5)) << "node"
      << "  " << std::setw(static_cast<int>(size_w)) << "size"
      << "  " << std::left << std::setw(kBar) << "" << std::right << "  per-class counts\n";
  for (std::size_t i = 0; i < p.num_nodes(); ++i) {
    const std::size_t size = p.nodes[i].size();
    const std::size_t len = st.size_max ? (size * kBar + st.size_max / 2) / st.size_max : 0;
    out << std::setw(static_cast<int>(id_w + 5)) << i << "  " << std::setw(static_cast<int>(size_w))
        << size << "  " << std::string(len, '#') << std::string(kBar - len, '.') << "  ";
    for (std::size_t c = 0; c < st.counts[i].size(); ++c) out << (c ? " " : "") << st.counts[i][c];
    out << "\n";
  }
  out << std::setprecision(4) << "size min " << st.size_min << ", max " << st.size_max << ", mean "
      << st.size_mean << "; label_skew " << st.label_skew
      << " (mean total-variation distance to the global label mix; 0 = IID)\n";
}

namespace {

struct PartitionArgs {
  std::string dataset = "fashion-mnist";
  std::string data_dir;
  std::size_t nodes = 0;
  data::PartitionOptions partition;
  bool json = false;
};

void run_partition(const PartitionArgs& a) {
  data::DatasetOptions dopt;
  dopt.data_dir = a.data_dir;
  dopt.seed = a.partition.seed;
  const data::Dataset ds = data::load_dataset(a.dataset, dopt);
  const data::Partition p = data::make_partition({ds.train.labels, ds.num_classes, ds.train.groups},
                                                 a.nodes, a.partition);
  const auto st = data::partition_stats(p, ds.train.labels, ds.num_classes);
  if (!a.json) {
    print_partition_table(ds, p, st, a.partition, std::cout);
    return;
  }
  nlohmann::json nodes = nlohmann::json::array();
  for (std::size_t i = 0; i < p.num_nodes(); ++i) {
    nodes.push_back({{"id", i}, {"size", p.nodes[i].size()}, {"counts", st.counts[i]}});
  }
  nlohmann::json doc{{"dataset", ds.name},
                     {"partition", a.partition.kind},
                     {"seed", a.partition.seed},
                     {"nodes", nodes},
                     {"stats",
                      {{"nodes", p.num_nodes()},
                       {"samples", ds.train.size()},
                       {"classes", ds.num_classes},
                       {"size_min", st.size_min},
                       {"size_max", st.size_max},
                       {"size_mean", st.size_mean},
                       {"label_skew", st.label_skew}}}};
  if (a.partition.kind == "dirichlet") doc["alpha"] = a.partition.alpha;
  std::cout << doc.dump() << "\n";
}

}  // namespace

void add_data_commands(CLI::App& app) {
  auto* data_cmd = app.add_subcommand("data", "inspect datasets and their partitions over nodes");
  data_cmd->require_subcommand(1);
  static PartitionArgs pa;
  auto* part = data_cmd->add_subcommand("partition",
                                        "show how a dataset's training split is divided over nodes "
                                        "(the same on every node for a seed)\n"
                                        "Example: rumor data partition --dataset fashion-mnist "
                                        "--nodes 8 --partition dirichlet --alpha 0.1");
  pa.dataset = data::default_dataset();
  part->add_option("--dataset", pa.dataset,
                   "fashion-mnist, idx:DIR, blobs, leaf-synthetic or csv:FILE")
      ->capture_default_str();
  part->add_option("--data-dir", pa.data_dir,
                   "directory of the IDX files (default /usr/share/datasets/fashion-mnist)");
  part->add_option("--nodes", pa.nodes, "number of nodes")
      ->required()
      ->check(CLI::Range(1, 1000000));
  part->add_option("--partition", pa.partition.kind, "iid, dirichlet, shards, quantity or natural")
      ->capture_default_str();
  part->add_option("--alpha", pa.partition.alpha,
                   "dirichlet concentration (0.1 skewed, 100 near IID)")
      ->capture_default_str();
  part->add_option("--min-size", pa.partition.min_size,
                   "dirichlet/quantity: minimum samples per node")
      ->capture_default_str();
  part->add_option("--shards", pa.partition.shards_per_node, "shards: label-sorted shards per node")
      ->capture_default_str();
  part->add_option("--seed", pa.partition.seed, "seed shared by all nodes")->capture_default_str();
  part->add_flag("--json", pa.json,
                 "print one JSON document: {nodes: [{id, size, counts}], stats: {...}}");
  part->callback([] { run_partition(pa); });
}

}  // namespace rumor::cli
