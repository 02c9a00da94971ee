// rumor train CONFIG.json: the centralized baseline, one process on all the data.
#include <iostream>

#include "commands.hpp"
#include "rumor/common/error.hpp"
#include "rumor/common/log.hpp"
#include "rumor/config/config.hpp"
#include "rumor/run/setup.hpp"
#include "rumor/train/centralized.hpp"
#include "rumor/train/model.hpp"

namespace rumor::cli {
namespace {

// The centralized baseline reads the same config as `rumor node` / `rumor launch` (same
// keys, defaults, run id and run directory); keys that only concern gossip (method, codec,
// network, data.partition) are ignored, and the topology only gives n for --per-round.
void run_train(const std::string& path, const std::vector<std::string>& overrides,
               const std::string& per_round) {
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
  o.per_round = per_round;
  o.nodes = static_cast<std::size_t>(run::topology_of(c).size());
  o.rounds = c.get<std::size_t>("rounds");
  o.eval_every = c.get<std::size_t>("eval.every");
  o.output_dir = c.get<std::string>("output.dir");
  // Own directory (the same config run by `rumor launch` writes node-0.jsonl too), one per
  // choice of samples per round.
  o.run_id = c.run_id() + "-centralized-" + per_round;
  auto record = run::config_record(c);
  record["centralized"] = {{"per_round", per_round}, {"nodes", o.nodes}};
  o.resolved_config_json = record.dump(2);
  train::set_compute_threads(globals().threads);
  const auto r = train::train_centralized(o, [](const std::string& line) {
    std::cout << line << "\n" << std::flush;
  });
  log::info("done: ", r.rounds, " rounds, ", r.steps, " steps of batch ", r.batch, " (", r.epochs,
            " epochs; per_round ", per_round, ", ", r.batch * r.steps_per_round,
            " samples a round, like ", o.nodes, " peers) in ", r.seconds, " s; test_acc ",
            r.test_accuracy, ", test_loss ", r.test_loss, "; run directory ", r.run_dir);
}

}  // namespace

std::string per_round_help() {
  std::string h =
      "samples per round, against n peers (n: the config's topology) that each take "
      "local_steps batches of batch_size a round:";
  for (const auto& [name, help] : train::per_round_names()) h += "\n  " + name + ": " + help;
  return h;
}

void add_train_command(CLI::App& app) {
  static std::string path;
  static std::vector<std::string> overrides;
  static std::string per_round = "nodes_batch";
  auto* train_cmd = app.add_subcommand(
      "train",
      "the centralized baseline: one process trains on all the data\n\n"
      "Reads the same config as `rumor launch` (method and partition are ignored) and writes\n"
      "metrics lines (node 0) to stdout and to output.dir/<run id>-centralized-<per round>/.\n"
      "By default a round takes the samples all n peers of the topology take in a round\n"
      "(--per-round nodes_batch), so rounds compare like for like.\n\n"
      "Example:\n  rumor train experiments/quickstart.json --per-round nodes_steps");
  train_cmd->add_option("config", path, "experiment config (JSON)")->required();
  train_cmd->add_option(
      "--set", overrides,
      "override a key, e.g. --set rounds=5000 (value parsed as JSON, else string)");
  std::vector<std::string> names;
  for (const auto& [name, help] : train::per_round_names()) names.push_back(name);
  train_cmd->add_option("--per-round", per_round, per_round_help())
      ->check(CLI::IsMember(names))
      ->capture_default_str();
  train_cmd->callback([] { run_train(path, overrides, per_round); });
}

}  // namespace rumor::cli
