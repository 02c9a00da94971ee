// rumor launch CONFIG.json | --resume RUNDIR: every peer of the topology on this machine.
#include <iostream>

#include "commands.hpp"
#include "rumor/common/error.hpp"
#include "rumor/config/config.hpp"
#include "rumor/data/partition.hpp"
#include "rumor/run/memory.hpp"
#include "rumor/run/run.hpp"
#include "rumor/run/setup.hpp"
#include "rumor/train/model.hpp"

namespace rumor::cli {
namespace {

struct LaunchArgs {
  std::string config;
  std::vector<std::string> sets;
  bool inprocess = false;
  bool dry_run = false;
  bool no_progress = false;
  std::string sched = "batch";
  std::string resume_dir;  // the run directory to continue
};

void dry_run(const LaunchArgs& a) {
  const auto cfg = config::Config::load(a.config, a.sets);
  run::check_run_config(cfg);
  std::cout << run::config_record(cfg).dump(2) << "\n\n";
  const Topology t = run::topology_of(cfg);
  const auto s = t.summary();
  std::cout << "topology " << t.name() << ": " << s.nodes << " nodes, " << s.edges << " edges, "
            << (t.directed() ? "directed" : "undirected") << ", " << to_string(t.schedule())
            << ", diameter " << s.diameter << ", spectral gap " << s.spectral_gap << "\n";
  if (const auto data = run::load_data(cfg)) {
    // Built once as every peer builds it: a missing model file or one that does not fit
    // the data is refused here, not by every peer.
    train::Model::create(run::model_spec(cfg), {data->shape, data->num_classes}, 1);
    const auto p = run::partition_of(cfg, *data, t.size());
    print_partition_table(*data, p, data::partition_stats(p, data->train.labels, data->num_classes),
                          run::partition_options(cfg), std::cout);
  }
  // Measured on one peer built alone (see rumor/run/memory.hpp).
  const auto plan = run::plan_inprocess_memory(cfg);
  std::cout << "memory per peer " << plan.per_peer / 1e6
            << " MB; in one process (--inprocess): " << plan.describe() << "\n";
  if (a.inprocess) run::check_fits(plan);
  std::cout << "run id " << cfg.run_id() << " -> " << cfg.run_dir() << "\n";
}

}  // namespace

void add_launch_command(CLI::App& app) {
  static LaunchArgs args;
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
  launch->add_option("config", args.config, "experiment config (JSON)");
  launch->add_option("--resume", args.resume_dir,
                     "continue this run directory from the last round every peer has "
                     "checkpointed (checkpoint.every)");
  launch->add_option("--set", args.sets, "override a config key: key=value (repeatable)");
  launch->add_flag("--inprocess", args.inprocess,
                   "all peers in this process over the in-process transport");
  launch->add_flag("--dry-run", args.dry_run,
                   "print the resolved config, topology and partition, then exit");
  launch->add_flag("--no-progress", args.no_progress, "no live progress line");
  launch
      ->add_option("--sched", args.sched,
                   "scheduling of the peer processes: batch (Linux SCHED_BATCH: a peer woken by "
                   "a message waits for the running one's time slice instead of preempting it, "
                   "fewer switches when peers outnumber cores) or normal")
      ->check(CLI::IsMember({"batch", "normal"}))
      ->capture_default_str();
  launch->callback([] {
    if (args.config.empty() == args.resume_dir.empty())
      throw ConfigError("launch: give either a config file or --resume RUNDIR");
    if (args.dry_run) return dry_run(args);
    if (args.inprocess) {
      const bool resume = !args.resume_dir.empty();
      const auto cfg = resume ? run::recorded_config(args.resume_dir)
                              : config::Config::load(args.config, args.sets);
      run::RunOptions o;
      o.progress = !args.no_progress;
      o.resume = resume;
      const auto r = run::run_inprocess(cfg, o);
      std::cout << run::summary_text(r.summary);
      return;
    }
    run::LaunchOptions o;
    o.config_path = args.config;
    o.overrides = args.sets;
    o.resume_dir = args.resume_dir;
    o.progress = !args.no_progress;
    o.sched_batch = args.sched == "batch";
    o.node_entry = [](const std::vector<std::string>& node_args) { return cli::run(node_args); };
    const int code = run::launch(o);
    if (code != 0) throw CLI::RuntimeError(code);
    // The results are written: LibTorch's teardown would write to thousands of pages, each a
    // fault once forked peers shared them (about 0.5 s of an 8-peer launch).
    run::end_process(0);
  });
}

}  // namespace rumor::cli
