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
  std::size_t local_steps = 1;      // steps per round (a metrics line per round)
  std::size_t rounds = 0;           // if 0, derived from epochs
  double epochs = 0.0;              // used when rounds == 0
  std::size_t eval_every = 50;      // rounds; the last round is always evaluated
  std::string output_dir = "runs";  // run directory = output_dir/run_id
  std::string run_id;               // empty: name-s<seed>-<hash of the options>
  bool save_model = true;
  bool log_to_run_dir = true;        // also append log lines to <run_dir>/node-0.log
  std::string resolved_config_json;  // written as <run_dir>/config.json when not empty
};

struct CentralizedResult {
  std::string run_dir;
  std::size_t rounds = 0;
  std::size_t steps = 0;
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
