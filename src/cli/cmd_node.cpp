// rumor node CONFIG.json --id N: one peer of a topology over TCP.
// rumor node --join HOST:PORT: a peer that takes a standby slot of a running run.
#include "commands.hpp"
#include "rumor/common/error.hpp"
#include "rumor/config/config.hpp"
#include "rumor/run/join.hpp"
#include "rumor/run/run.hpp"

namespace rumor::cli {

namespace {

struct NodeArgs {
  std::string config;
  std::vector<std::string> sets;
  int id = -1;
  bool resume = false;  // continue from the run directory's checkpoints
  bool rejoin = false;  // a restarted peer rejoining a running run
  bool leave = false;   // ask the running node to leave gracefully
  std::string join;     // HOST:PORT of a running node: join its run (no config file)
  std::string secret_file;
};

void join_running_run(const NodeArgs& a) {
  if (!a.config.empty() || a.resume || a.rejoin || a.leave)
    throw ConfigError(
        "rumor node --join takes no config file, --resume, --rejoin or --leave: "
        "the running node hands over the run's settings");
  run::JoinOptions o;
  o.address = a.join;
  o.secret_file = a.secret_file;
  o.id = a.id;
  o.overrides = a.sets;
  o.threads = globals().threads;
  run::join_run(o);
}

}  // namespace

void add_node_command(CLI::App& app) {
  static NodeArgs args;
  args = NodeArgs{};  // a peer forked by `rumor launch` parses its own arguments afresh
  auto* node = app.add_subcommand(
      "node",
      "run one peer of a topology over TCP\n\n"
      "The node id comes from --id, or from RANK, OMPI_COMM_WORLD_RANK or SLURM_PROCID, so\n"
      "mpirun and srun can start peers across a cluster. Peers started independently agree on\n"
      "the run id and write to output.dir/<run id>/; then `rumor summarize` that directory.\n"
      "Privacy: with method.name qdata, nodes send quantized training samples and labels to\n"
      "their neighbours: data leaves the node.\n\n"
      "Example:\n  rumor node experiments/quickstart.json --id 3\n"
      "  rumor node --join 10.0.0.5:29400 --secret-file run.secret   # take a standby slot");
  node->add_option("config", args.config, "experiment config (JSON); not with --join");
  node->add_option("--id", args.id, "this node's id");
  node->add_option("--set", args.sets, "override a config key: key=value (repeatable)");
  node->add_flag("--resume", args.resume,
                 "continue from the last round every node has checkpointed");
  node->add_flag("--rejoin", args.rejoin,
                 "this peer died and is restarted while the others run on (on_peer_failure "
                 "continue): it rejoins from its own last checkpoint, else from its "
                 "neighbours' models");
  node->add_flag("--leave", args.leave,
                 "ask node --id of this run, running on this machine, to leave gracefully "
                 "(on_peer_failure continue): it finishes its round, hands its push-sum mass "
                 "to its neighbours and says goodbye; the same as sending it SIGTERM");
  node->add_option("--join", args.join,
                   "HOST:PORT of a running node of a run (on_peer_failure continue): it hands "
                   "over the run's settings once this peer proves it holds the run secret, "
                   "and this peer joins in a standby slot (the first free one, or --id)");
  node->add_option("--secret-file", args.secret_file,
                   "with --join: the run secret (the file every node of the run holds)");
  node->callback([] {
    if (!args.join.empty()) return join_running_run(args);
    if (!args.secret_file.empty())
      throw ConfigError(
          "--secret-file goes with --join; a node started with its config takes "
          "--set network.secret_file=FILE");
    if (args.config.empty())
      throw ConfigError(
          "rumor node: give the experiment config (rumor node CONFIG.json --id I), "
          "or --join HOST:PORT of a running node");
    const auto cfg = config::Config::load(args.config, args.sets);
    if (args.leave) return run::request_leave(cfg, run::node_id_from_env(args.id));
    run::RunOptions o;
    o.threads = globals().threads;
    o.resume = args.resume;
    o.rejoin = args.rejoin;
    run::run_node(cfg, run::node_id_from_env(args.id), o);
  });
}

}  // namespace rumor::cli
