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

}  // namespace

void add_train_command(CLI::App& app) {
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

}  // namespace rumor::cli
