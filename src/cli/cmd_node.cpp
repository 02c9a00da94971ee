// rumor node CONFIG.json --id N: one peer of a topology over TCP.
#include "commands.hpp"
#include "rumor/config/config.hpp"
#include "rumor/run/run.hpp"

namespace rumor::cli {

void add_node_command(CLI::App& app) {
  struct NodeArgs {
    std::string config;
    std::vector<std::string> sets;
    int id = -1;
    bool resume = false;  // continue from the run directory's checkpoints
    bool rejoin = false;  // a restarted peer rejoining a running run
    bool leave = false;   // ask the running node to leave gracefully
  };
  static NodeArgs args;
  auto* node = app.add_subcommand(
      "node",
      "run one peer of a topology over TCP\n\n"
      "The node id comes from --id, or from RANK, OMPI_COMM_WORLD_RANK or SLURM_PROCID, so\n"
      "mpirun and srun can start peers across a cluster. Peers started independently agree on\n"
      "the run id and write to output.dir/<run id>/; then `rumor summarize` that directory.\n"
      "Privacy: with method.name qdata, nodes send quantized training samples and labels to\n"
      "their neighbours: data leaves the node.\n\n"
      "Example:\n  rumor node experiments/quickstart.json --id 3");
  node->add_option("config", args.config, "experiment config (JSON)")->required();
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
  node->callback([] {
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
