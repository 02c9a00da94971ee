// rumor data partition | rumor train CONFIG.json | rumor bench step
#include <algorithm>
#include <iomanip>
#include <iostream>

#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "rumor/common/error.hpp"
#include "rumor/common/log.hpp"
#include "rumor/config/config.hpp"
#include "rumor/data/dataset.hpp"
#include "rumor/data/partition.hpp"
#include "rumor/run/setup.hpp"
#include "rumor/train/bench.hpp"
#include "rumor/train/centralized.hpp"
#include "rumor/train/model.hpp"

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

// The centralized baseline reads the same config as `rumor node` / `rumor launch` (same
// keys, defaults, run id and run directory); keys that only concern gossip (topology,
// method, codec, network, data.partition) are ignored.
void run_train(const std::string& path, const std::vector<std::string>& overrides) {
  const config::Config c = config::Config::load(path, overrides);
  if (c.get<std::string>("task") != "train") {
    throw ConfigError(path + ": rumor train runs task \"train\" only (this config has task \"" +
                      c.get<std::string>("task") + "\")");
  }
  train::CentralizedOptions o;
  o.name = c.get<std::string>("name");
  o.seed = c.get<std::uint64_t>("seed");
  o.dataset = c.get<std::string>("data.dataset");
  o.data = run::dataset_options(c);
  o.model = run::model_spec(c);
  o.optimizer = run::optimizer_options(c);
  o.batch_size = c.get<std::size_t>("batch_size");
  o.local_steps = c.get<std::size_t>("local_steps");
  o.rounds = c.get<std::size_t>("rounds");
  o.eval_every = c.get<std::size_t>("eval.every");
  o.output_dir = c.get<std::string>("output.dir");
  // Own directory: the same config run by `rumor launch` writes node-0.jsonl too.
  o.run_id = c.run_id() + "-centralized";
  o.resolved_config_json = run::config_record(c).dump(2);
  train::set_compute_threads(globals().threads);
  const auto r = train::train_centralized(o, [](const std::string& line) {
    std::cout << line << "\n" << std::flush;
  });
  log::info("done: ", r.rounds, " rounds, ", r.steps, " steps (", r.epochs, " epochs) in ",
            r.seconds, " s; test_acc ", r.test_accuracy, ", test_loss ", r.test_loss,
            "; run directory ", r.run_dir);
}

struct BenchArgs {
  std::vector<std::string> models{"logreg", "mlp", "cnn", "resnet8"};
  std::size_t batch = 32;
  double seconds = 1.0;
  bool json = false;
};

void run_bench_step(const BenchArgs& a) {
  train::set_compute_threads(globals().threads);
  // Fashion-MNIST-shaped inputs: 1 x 28 x 28, 10 classes (mlp is 784-128-10).
  const train::ModelInput input{{1, 28, 28}, 10};
  const std::string blas = train::loaded_blas();
  nlohmann::json models = nlohmann::json::array();
  if (!a.json)
    std::cout << "BLAS: " << blas << "\nthreads: " << globals().threads << ", batch " << a.batch
              << "\n";
  for (const auto& name : a.models) {
    train::ModelSpec spec;
    spec.name = name;
    const auto r = train::bench_step(spec, input, a.batch, a.seconds);
    models.push_back({{"model", name},
                      {"params", r.params},
                      {"steps_per_s", r.steps_per_s},
                      {"steps", r.steps},
                      {"seconds", r.seconds}});
    if (!a.json) {
      std::cout << std::left << std::setw(9) << name << std::right << std::setw(10) << r.params
                << " params  " << std::fixed << std::setprecision(1) << std::setw(9)
                << r.steps_per_s << " steps/s\n"
                << std::defaultfloat;
    }
  }
  if (a.json) {
    std::cout << nlohmann::json{{"blas", blas},
                                {"threads", globals().threads},
                                {"batch", a.batch},
                                {"models", models}}
                     .dump()
              << "\n";
  }
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

void add_train_commands(CLI::App& app) {
  static std::string path;
  static std::vector<std::string> overrides;
  auto* train_cmd = app.add_subcommand(
      "train",
      "the centralized baseline: one process trains on all the data\n\n"
      "Reads the same config as `rumor launch` (topology, method and partition are ignored) and\n"
      "writes metrics lines (node 0) to stdout and to output.dir/<run id>-centralized/.\n\n"
      "Example:\n  rumor train experiments/quickstart.json --set optimizer.lr=0.05");
  train_cmd->add_option("config", path, "experiment config (JSON)")->required();
  train_cmd->add_option(
      "--set", overrides,
      "override a key, e.g. --set rounds=5000 (value parsed as JSON, else string)");
  train_cmd->callback([] { run_train(path, overrides); });
}

void add_bench_step(CLI::App& bench) {
  static BenchArgs ba;
  auto* step = bench.add_subcommand(
      "step",
      "local training steps per second per model (random Fashion-MNIST-shaped batches)\n"
      "Example: rumor bench step --json --threads 1");
  step->add_option("--models", ba.models, "models to time")->capture_default_str();
  step->add_option("--batch", ba.batch, "batch size")
      ->capture_default_str()
      ->check(CLI::Range(1, 65536));
  step->add_option("--seconds", ba.seconds, "time per model")
      ->capture_default_str()
      ->check(CLI::Range(0.01, 600.0));
  step->add_flag("--json", ba.json, "print {\"blas\", \"models\": [{\"model\", \"steps_per_s\"}]}");
  step->callback([] { run_bench_step(ba); });
}

}  // namespace rumor::cli
