#pragma once
// Turning a resolved config into the option structs of the data, train and net modules,
// so every entry point (node, launch, train, compare) reads the config the same way.
#include <memory>
#include <string>
#include <vector>

#include "rumor/config/config.hpp"
#include "rumor/data/dataset.hpp"
#include "rumor/data/partition.hpp"
#include "rumor/gossip/method.hpp"
#include "rumor/net/transport.hpp"
#include "rumor/topology/topology.hpp"
#include "rumor/train/model.hpp"
#include "rumor/train/optimizer.hpp"

namespace rumor::run {

Topology topology_of(const config::Config& c);
data::DatasetOptions dataset_options(const config::Config& c);
data::PartitionOptions partition_options(const config::Config& c);
train::ModelSpec model_spec(const config::Config& c);
train::OptimizerOptions optimizer_options(const config::Config& c);
// The optimizer of a node's local steps: optimizer.* with the momentum the method's
// registry entry asks for (SQuARM: Nesterov with method.beta; QGM: none of its own).
train::OptimizerOptions local_optimizer_options(const config::Config& c,
                                                const gossip::MethodInfo& method);
net::TransportOptions transport_options(const config::Config& c);
// transport_options for `rumor node` over TCP: a secret is required unless
// network.insecure is set (then it warns). Throws ConfigError naming node `id`.
net::TransportOptions node_transport_options(const config::Config& c, int id);

// Loads the dataset of a training config (nullptr for task average). Logs what it loaded.
// Takes it from this process's DatasetCache (dataset_cache.hpp) when it is there.
std::shared_ptr<const data::Dataset> load_data(const config::Config& c);
// Loads the dataset of a training config into this process's DatasetCache, where every
// later load_data of the same data set (in this process or a fork of it) finds it.
void keep_data_loaded(const config::Config& c);
// The partition every node computes alike.
data::Partition partition_of(const config::Config& c, const data::Dataset& d, int nodes);

// Everything a run checks before round 0, without data or training: topology, fault
// options, codec, method (requirements and options) and optimizer. `--dry-run` calls it, so
// a config it accepts starts. Throws ConfigError saying what to change.
void check_run_config(const config::Config& c);

// The resolved config plus provenance, as written to <run dir>/config.json.
nlohmann::json config_record(const config::Config& c);

}  // namespace rumor::run
