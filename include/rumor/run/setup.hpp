#pragma once
// Turning a resolved config into the option structs of the data, train and net modules,
// so every entry point (node, launch, train, compare) reads the config the same way.
#include <memory>
#include <string>
#include <vector>

#include "rumor/config/config.hpp"
#include "rumor/data/dataset.hpp"
#include "rumor/data/partition.hpp"
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
net::TransportOptions transport_options(const config::Config& c);

// Loads the dataset of a training config (nullptr for task average). Logs what it loaded.
std::shared_ptr<const data::Dataset> load_data(const config::Config& c);
// The partition every node computes alike.
data::Partition partition_of(const config::Config& c, const data::Dataset& d, int nodes);

// The resolved config plus provenance, as written to <run dir>/config.json.
nlohmann::json config_record(const config::Config& c);

}  // namespace rumor::run
