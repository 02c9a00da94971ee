#include "rumor/run/setup.hpp"

#include "rumor/net/secret.hpp"

#include <filesystem>
#include <fstream>

#include "fault_options.hpp"
#include "rumor/codec/codec.hpp"
#include "rumor/common/error.hpp"
#include "rumor/common/log.hpp"
#include "rumor/run/dataset_cache.hpp"
#include "rumor/version.hpp"

namespace rumor::run {

Topology topology_of(const config::Config& c) {
  return parse_topology_json(c.at("topology"), c.origin() + " (topology)");
}

data::DatasetOptions dataset_options(const config::Config& c) {
  data::DatasetOptions o;
  o.seed = c.get<std::uint64_t>("seed");
  if (c.at("data.data_dir").is_string()) o.data_dir = c.get<std::string>("data.data_dir");
  o.normalize = c.get<bool>("data.normalize");
  o.train_size = c.get<std::size_t>("data.train_size");
  o.test_size = c.get<std::size_t>("data.test_size");
  o.dim = c.get<std::size_t>("data.dim");
  o.classes = c.get<int>("data.classes");
  o.separation = c.get<double>("data.separation");
  o.leaf_alpha = c.get<double>("data.leaf_alpha");
  o.leaf_beta = c.get<double>("data.leaf_beta");
  o.users = c.get<int>("data.users");
  if (c.at("data.test_file").is_string()) o.test_file = c.get<std::string>("data.test_file");
  o.test_fraction = c.get<double>("data.test_fraction");
  return o;
}

data::PartitionOptions partition_options(const config::Config& c) {
  data::PartitionOptions o;
  o.kind = c.get<std::string>("data.partition.kind");
  o.seed = c.get<std::uint64_t>("seed");
  o.alpha = c.get<double>("data.partition.alpha");
  o.min_size = c.get<std::size_t>("data.partition.min_size");
  o.shards_per_node = c.get<std::size_t>("data.partition.shards");
  o.power = c.get<double>("data.partition.power");
  return o;
}

train::ModelSpec model_spec(const config::Config& c) {
  train::ModelSpec s;
  s.name = c.get<std::string>("model.name");
  s.hidden = c.get<std::vector<int>>("model.hidden");
  s.norm = c.get<std::string>("model.norm");
  s.channels = c.get<int>("model.channels");
  if (c.at("model.path").is_string()) s.path = c.get<std::string>("model.path");
  return s;
}

train::OptimizerOptions optimizer_options(const config::Config& c) {
  train::OptimizerOptions o;
  o.name = c.get<std::string>("optimizer.name");
  o.lr = c.get<double>("optimizer.lr");
  o.momentum = c.get<double>("optimizer.momentum");
  o.nesterov = c.get<bool>("optimizer.nesterov");
  o.weight_decay = c.get<double>("optimizer.weight_decay");
  o.beta1 = c.get<double>("optimizer.beta1");
  o.beta2 = c.get<double>("optimizer.beta2");
  o.eps = c.get<double>("optimizer.eps");
  o.schedule.kind = c.get<std::string>("optimizer.schedule.kind");
  o.schedule.step_size = c.get<std::size_t>("optimizer.schedule.step_size");
  o.schedule.gamma = c.get<double>("optimizer.schedule.gamma");
  o.schedule.min_lr = c.get<double>("optimizer.schedule.min_lr");
  o.schedule.warmup_steps = c.get<std::size_t>("optimizer.schedule.warmup_steps");
  o.schedule.total_steps = c.get<std::size_t>("rounds") * c.get<std::size_t>("local_steps");
  return o;
}

train::OptimizerOptions local_optimizer_options(const config::Config& c,
                                                const gossip::MethodInfo& method) {
  auto opt = optimizer_options(c);
  if (method.momentum == gossip::LocalMomentum::kNesterov && opt.name != "sgd")
    throw ConfigError(c.origin() + ": method " + method.name +
                      " takes Nesterov SGD local steps (method.beta); set optimizer.name to sgd");
  if (method.momentum == gossip::LocalMomentum::kNesterov && opt.momentum == 0.0) {
    opt.momentum = c.get<double>("method.beta");
    opt.nesterov = true;
    // A steady gradient g then moves the model by lr * g a step, as plain SGD at lr would
    // (not lr / (1 - beta)): the config's lr means the same for every method.
    if (c.get<bool>("method.scale_lr")) {
      opt.lr *= 1.0 - opt.momentum;
      opt.schedule.min_lr *= 1.0 - opt.momentum;
    }
  }
  // SQuARM's steps shrink over the run (method.lr_schedule) unless told to follow the config.
  if (method.momentum == gossip::LocalMomentum::kNesterov &&
      c.get<std::string>("method.lr_schedule") == "cosine") {
    if (opt.schedule.kind != "constant")
      throw ConfigError(c.origin() + ": method " + method.name +
                        " decays its learning rate by a cosine (method.lr_schedule); set "
                        "method.lr_schedule to \"optimizer\" to use optimizer.schedule.kind " +
                        opt.schedule.kind);
    opt.schedule.kind = "cosine";
  }
  if (method.momentum == gossip::LocalMomentum::kOwn && opt.momentum != 0.0)
    throw ConfigError(c.origin() + ": method " + method.name +
                      " carries its own momentum (method.beta, method.mu); set "
                      "optimizer.momentum to 0");
  return opt;
}

void check_run_config(const config::Config& c) {
  const Topology topology = topology_of(c);
  FaultOptions::parse(c, topology);
  const auto& info = gossip::method_info(c.get<std::string>("method.name"));
  gossip::MethodContext ctx;
  ctx.topology = &topology;
  ctx.codec = codec::make_codec(c.at("codec"));
  ctx.local_steps = c.get<int>("local_steps");
  ctx.params = c.at("method");
  gossip::make_method(info.name, ctx);  // requirements, then the method's own options
  if (c.get<std::string>("task") == "train") {
    local_optimizer_options(c, info);
    model_spec(c);
  }
  transport_options(c);
}

net::TransportOptions transport_options(const config::Config& c) {
  net::TransportOptions o;
  o.run_id = c.run_id();
  o.connect_timeout = std::chrono::milliseconds(
      static_cast<std::int64_t>(c.get<double>("network.connect_timeout_s") * 1000));
  o.max_frame_bytes = static_cast<std::size_t>(c.get<double>("network.max_frame_mb") * 1024 * 1024);
  o.max_rounds_ahead = c.get<std::int64_t>("network.max_rounds_ahead");
  o.mailbox_bytes = static_cast<std::size_t>(c.get<double>("network.mailbox_mb") * 1024 * 1024);
  o.max_pending_handshakes = c.get<std::size_t>("network.max_pending_handshakes");
  if (c.at("network.secret_file").is_string())
    o.secret = net::read_secret_file(c.get<std::string>("network.secret_file"));
  o.tls = c.get<bool>("network.tls");
  const auto shm = c.get<std::string>("network.shm");
  if (shm != "auto" && shm != "off")
    throw ConfigError(c.origin() + ": network.shm must be auto or off, got \"" + shm + "\"");
  o.shm = shm == "auto";
  auto path = [&](const char* key) {
    return c.at(key).is_string() ? c.get<std::string>(key) : std::string();
  };
  o.tls_cert = path("network.tls_cert");
  o.tls_key = path("network.tls_key");
  o.tls_ca = path("network.tls_ca");
  const bool any = !o.tls_cert.empty() || !o.tls_key.empty() || !o.tls_ca.empty();
  if (any && (o.tls_cert.empty() || o.tls_key.empty() || o.tls_ca.empty()))
    throw ConfigError(c.origin() +
                      ": network.tls_cert, tls_key and tls_ca go together (rumor secret ca "
                      "and rumor secret certs make them)");
  if (any && !o.tls)
    throw ConfigError(c.origin() +
                      ": network.tls_cert is set but network.tls is false; set "
                      "network.tls: true to use it");
  return o;
}

namespace {

// "{id}" in a per-node path becomes the node's id.
std::string with_node_id(std::string path, int id) {
  for (auto at = path.find("{id}"); at != std::string::npos; at = path.find("{id}", at))
    path.replace(at, 4, std::to_string(id));
  return path;
}

}  // namespace

net::TransportOptions node_transport_options(const config::Config& c, int id) {
  net::TransportOptions o = transport_options(c);
  o.tls_cert = with_node_id(o.tls_cert, id);
  o.tls_key = with_node_id(o.tls_key, id);
  // Certificates authenticate the links as a secret would.
  if (!o.secret.empty() || (o.tls && !o.tls_cert.empty())) return o;
  if (!c.get<bool>("network.insecure"))
    throw ConfigError(c.origin() + ": node " + std::to_string(id) +
                      " has no network.secret_file, so anyone who can reach its port could "
                      "join as a neighbour. Make a secret (`rumor secret new -o run.secret`), "
                      "give every host the file and pass --set network.secret_file=run.secret; "
                      "or set network.insecure: true on a network only you use");
  log::warn(
      "network.insecure: no secret, so connections are not authenticated; anyone who "
      "can reach this node's port may join as one of its neighbours");
  return o;
}

namespace {

// The data set spec of a training config, "auto" resolved (warns when it falls back).
std::string dataset_spec(const config::Config& c) {
  std::string spec = c.get<std::string>("data.dataset");
  if (spec != "auto") return spec;
  spec = data::default_dataset();
  if (spec != "fashion-mnist")
    log::warn(
        "data.dataset auto: Fashion-MNIST is not installed (apt-get install "
        "dataset-fashion-mnist), training on synthetic '",
        spec, "' instead");
  return spec;
}

std::shared_ptr<const data::Dataset> load_uncached(const config::Config& c, const std::string& spec,
                                                   std::size_t test_samples) {
  auto d = std::make_shared<data::Dataset>(data::load_dataset(spec, dataset_options(c)));
  // eval.test_samples: evaluate on the first N test samples (the test split is shuffled
  // data the partition never touches), for runs with many peers.
  if (test_samples > 0 && test_samples < d->test.size()) {
    d->test.features.resize(test_samples * d->dim);
    d->test.labels.resize(test_samples);
    if (!d->test.groups.empty()) d->test.groups.resize(test_samples);
  }
  return d;
}

std::shared_ptr<const data::Dataset> load_or_find(const config::Config& c, bool keep) {
  if (c.get<std::string>("task") != "train") return nullptr;
  const std::string spec = dataset_spec(c);
  const auto test_samples = c.get<std::size_t>("eval.test_samples");
  const std::string key = dataset_key(spec, dataset_options(c), test_samples);
  auto d = DatasetCache::find(key);
  if (!d) d = load_uncached(c, spec, test_samples);
  if (keep) DatasetCache::keep(key, d);
  log::debug("dataset ", d->name, ": ", d->train.size(), " train / ", d->test.size(),
             " test samples, dim ", d->dim, ", ", d->num_classes, " classes");
  return d;
}

}  // namespace

std::shared_ptr<const data::Dataset> load_data(const config::Config& c) {
  return load_or_find(c, false);
}

void keep_data_loaded(const config::Config& c) {
  load_or_find(c, true);
}

data::Partition partition_of(const config::Config& c, const data::Dataset& d, int nodes) {
  data::PartitionInput in;
  in.labels = d.train.labels;
  in.num_classes = d.num_classes;
  in.groups = d.train.groups;
  return data::make_partition(in, static_cast<std::size_t>(nodes), partition_options(c));
}

nlohmann::json config_record(const config::Config& c) {
  nlohmann::json j = c.json();
  j["rumor"] = {{"version", kVersion},
                {"git_revision", kGitRevision},
                {"run_id", c.run_id()},
                {"paths_as_written", c.paths_as_written()}};
  return j;
}

}  // namespace rumor::run
