#pragma once
// The centralized baseline: one process trains on all the data. A plain options struct:
// `rumor train CONFIG.json` fills it from config::Config through the run::setup helpers
// (src/cli/cmd_train.cpp), so it shares keys, run id and run directory with gossip runs.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "rumor/data/dataset.hpp"
#include "rumor/train/model.hpp"
#include "rumor/train/optimizer.hpp"

namespace rumor::train {

struct CentralizedOptions {
  std::string name = "centralized";
  std::uint64_t seed = 1;
  std::string dataset = "fashion-mnist";
  data::DatasetOptions data;
  ModelSpec model;
  OptimizerOptions optimizer;
  std::size_t batch_size = 32;
  std::size_t local_steps = 1;  // steps per round (a metrics line per round)
  // Samples per round against a decentralized run of `nodes` peers, each taking local_steps
  // batches of batch_size a round (per_round_names() lists the choices).
  std::string per_round = "batch";
  std::size_t nodes = 1;
  std::size_t rounds = 0;           // if 0, derived from epochs
  double epochs = 0.0;              // used when rounds == 0
  std::size_t eval_every = 50;      // rounds; the last round is always evaluated
  std::string output_dir = "runs";  // run directory = output_dir/run_id
  std::string run_id;               // empty: name-s<seed>-<hash of the options>
  bool save_model = true;
  bool log_to_run_dir = true;        // also append log lines to <run_dir>/node-0.log
  std::string resolved_config_json;  // written as <run_dir>/config.json when not empty
};

// The choices for CentralizedOptions::per_round, each with one line saying what it is.
//   batch        local_steps steps of batch_size: what one peer takes (n times fewer samples)
//   nodes_batch  local_steps steps of nodes x batch_size: the samples n peers take together,
//                in one step each (what an exact average of n peers' steps amounts to)
//   nodes_steps  nodes x local_steps steps of batch_size: the same samples and the same
//                number of gradient steps as all peers together (schedules follow rounds)
const std::vector<std::pair<std::string, std::string>>& per_round_names();

struct CentralizedResult {
  std::string run_dir;
  std::size_t rounds = 0;
  std::size_t steps = 0;
  std::size_t batch = 0;            // samples in one step
  std::size_t steps_per_round = 0;  // optimizer steps in one round
  double epochs = 0.0;
  double seconds = 0.0;
  double test_accuracy = 0.0;
  double test_loss = 0.0;
};

// Trains, writing <run_dir>/node-0.jsonl (metrics lines as in formats.md) and model.pt.
// `on_line` (optional) receives every metrics line as written.
CentralizedResult train_centralized(const CentralizedOptions& options,
                                    const std::function<void(const std::string&)>& on_line = {});

}  // namespace rumor::train
