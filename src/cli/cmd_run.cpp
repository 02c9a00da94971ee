// rumor node | launch | summarize | config keys
#include <iostream>

#include "commands.hpp"
#include "rumor/common/error.hpp"
#include "rumor/config/config.hpp"
#include "rumor/data/partition.hpp"
#include "rumor/run/compare.hpp"
#include "rumor/run/run.hpp"
#include "rumor/run/setup.hpp"

namespace rumor::cli {
namespace {

struct RunArgs {
  std::string config;
  std::vector<std::string> sets;
  int id = -1;
  bool inprocess = false;
  bool dry_run = false;
  bool no_progress = false;
  bool resume = false;     // node: continue from the run directory's checkpoints
  bool rejoin = false;     // node: a restarted peer rejoining a running run
  std::string resume_dir;  // launch: the run directory to continue
};

void dry_run(const RunArgs& a) {
  const auto cfg = config::Config::load(a.config, a.sets);
  std::cout << run::config_record(cfg).dump(2) << "\n\n";
  const Topology t = run::topology_of(cfg);
  const auto s = t.summary();
  std::cout << "topology " << t.name() << ": " << s.nodes << " nodes, " << s.edges << " edges, "
            << (t.directed() ? "directed" : "undirected") << ", " << to_string(t.schedule())
            << ", diameter " << s.diameter << ", spectral gap " << s.spectral_gap << "\n";
  if (const auto data = run::load_data(cfg)) {
    const auto p = run::partition_of(cfg, *data, t.size());
    print_partition_table(*data, p, data::partition_stats(p, data->train.labels, data->num_classes),
                          run::partition_options(cfg), std::cout);
  }
  std::cout << "run id " << cfg.run_id() << " -> " << cfg.run_dir() << "\n";
}

}  // namespace

void add_run_commands(CLI::App& app) {
  static RunArgs node_args, launch_args;
  static std::string summarize_dir;

  auto* node = app.add_subcommand(
      "node",
      "run one peer of a topology over TCP\n\n"
      "The node id comes from --id, or from RANK, OMPI_COMM_WORLD_RANK or SLURM_PROCID, so\n"
      "mpirun and srun can start peers across a cluster. Peers started independently agree on\n"
      "the run id and write to output.dir/<run id>/; then `rumor summarize` that directory.\n"
      "Privacy: with method.name qdata, nodes send quantized training samples and labels to\n"
      "their neighbours: data leaves the node.\n\n"
      "Example:\n  rumor node experiments/quickstart.json --id 3");
  node->add_option("config", node_args.config, "experiment config (JSON)")->required();
  node->add_option("--id", node_args.id, "this node's id");
  node->add_option("--set", node_args.sets, "override a config key: key=value (repeatable)");
  node->add_flag("--resume", node_args.resume,
                 "continue from the last round every node has checkpointed");
  node->add_flag("--rejoin", node_args.rejoin,
                 "this peer died and is restarted while the others run on (on_peer_failure "
                 "continue): it rejoins from its own last checkpoint, else from its "
                 "neighbours' models");
  node->callback([] {
    const auto cfg = config::Config::load(node_args.config, node_args.sets);
    run::RunOptions o;
    o.threads = globals().threads;
    o.resume = node_args.resume;
    o.rejoin = node_args.rejoin;
    run::run_node(cfg, run::node_id_from_env(node_args.id), o);
  });

  auto* launch = app.add_subcommand(
      "launch",
      "run every peer of the topology on this machine\n\n"
      "By default each peer is a process talking TCP over loopback; --inprocess runs all peers\n"
      "in this process on a thread pool (deterministic for a seed). Shows a live progress line;\n"
      "Ctrl-C stops all peers and keeps what was written. Results: output.dir/<run id>/.\n"
      "Privacy: with method.name qdata, nodes send quantized training samples and labels to\n"
      "their neighbours: data leaves the node.\n\n"
      "Examples:\n  rumor launch experiments/quickstart.json\n"
      "  rumor launch experiments/quickstart.json --inprocess --set method.name=dpsgd");
  launch->add_option("config", launch_args.config, "experiment config (JSON)");
  launch->add_option("--resume", launch_args.resume_dir,
                     "continue this run directory from the last round every peer has "
                     "checkpointed (checkpoint.every)");
  launch->add_option("--set", launch_args.sets, "override a config key: key=value (repeatable)");
  launch->add_flag("--inprocess", launch_args.inprocess,
                   "all peers in this process over the in-process transport");
  launch->add_flag("--dry-run", launch_args.dry_run,
                   "print the resolved config, topology and partition, then exit");
  launch->add_flag("--no-progress", launch_args.no_progress, "no live progress line");
  launch->callback([] {
    if (launch_args.config.empty() == launch_args.resume_dir.empty())
      throw ConfigError("launch: give either a config file or --resume RUNDIR");
    if (launch_args.dry_run) return dry_run(launch_args);
    if (launch_args.inprocess) {
      const bool resume = !launch_args.resume_dir.empty();
      const auto cfg = resume ? run::recorded_config(launch_args.resume_dir)
                              : config::Config::load(launch_args.config, launch_args.sets);
      run::RunOptions o;
      o.progress = !launch_args.no_progress;
      o.resume = resume;
      const auto r = run::run_inprocess(cfg, o);
      std::cout << run::summary_text(r.summary);
      return;
    }
    run::LaunchOptions o;
    o.config_path = launch_args.config;
    o.overrides = launch_args.sets;
    o.resume_dir = launch_args.resume_dir;
    o.progress = !launch_args.no_progress;
    const int code = run::launch(o);
    if (code != 0) throw CLI::RuntimeError(code);
  });

  auto* summarize = app.add_subcommand(
      "summarize",
      "build summary.json and summary.csv from a run directory's metrics files\n\n"
      "Example:\n  rumor summarize runs/quickstart-s1-0a1b2c3d");
  summarize->add_option("rundir", summarize_dir, "run directory")->required();
  summarize->callback([] { std::cout << run::summary_text(run::summarize(summarize_dir)); });

  static std::string grid_path;
  static run::CompareOptions compare_opts;
  static bool no_plots = false;
  auto* compare = app.add_subcommand(
      "compare",
      "run a grid of configs and compare methods\n\n"
      "GRID.json: {\"base\": CONFIG (path or object), \"axes\": {\"method\": [...], \"codec\": "
      "[...],\n"
      "\"seed\": [1, 2, 3], \"data.partition.alpha\": [...]}, \"target_acc\": 0.8}. Cells with "
      "one\n"
      "seed share partition, initial model and data order. A rerun skips finished cells.\n"
      "Writes compare.json, compare.csv and PNG plots to compare/<grid name>/.\n\n"
      "Example:\n  rumor compare experiments/sgp-vs-allreduce/grid.json");
  compare->add_option("grid", grid_path, "grid file (JSON)")->required();
  compare->add_flag("--tcp", compare_opts.tcp, "run cells over TCP (one process per peer)");
  compare->add_option("-o,--output", compare_opts.output_dir, "output folder");
  compare->add_flag("--no-plots", no_plots, "do not draw PNG plots");
  compare->add_flag("--full", compare_opts.full,
                    "the paper-sized run: apply the grid's \"full\" overrides");
  compare->add_flag("--no-progress", launch_args.no_progress, "no live progress line");
  compare->callback([] {
    compare_opts.plots = !no_plots;
    compare_opts.progress = !launch_args.no_progress;
    run::run_compare(grid_path, compare_opts);
  });

  auto* cfg = app.add_subcommand("config", "experiment config tools");
  cfg->require_subcommand(1);
  auto* keys = cfg->add_subcommand(
      "keys",
      "list every config key with its type, default and meaning\n\nExample:\n  rumor config keys");
  keys->callback([] { std::cout << config::keys_help(); });
}

}  // namespace rumor::cli
