#include "rumor/config/config.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "rumor/common/error.hpp"
#include "rumor/common/strings.hpp"
#include "rumor/gossip/method.hpp"
#include "rumor/topology/generators.hpp"
#include "rumor/topology/topology.hpp"

namespace rumor::config {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

const KeyInfo* find_key(const std::string& path) {
  for (const auto& k : keys())
    if (k.path == path) return &k;
  return nullptr;
}

bool is_prefix_of_key(const std::string& path) {
  for (const auto& k : keys())
    if (k.path.size() > path.size() && k.path.compare(0, path.size(), path) == 0 &&
        k.path[path.size()] == '.')
      return true;
  return false;
}

// Every key path and every object on the way to one ("data", "data.partition"), the
// names an unknown key is compared with.
std::vector<std::string> key_paths() {
  std::vector<std::string> out;
  for (const auto& k : keys()) {
    for (auto dot = k.path.find('.'); dot != std::string::npos; dot = k.path.find('.', dot + 1))
      if (std::find(out.begin(), out.end(), k.path.substr(0, dot)) == out.end())
        out.push_back(k.path.substr(0, dot));
    out.push_back(k.path);
  }
  return out;
}

json::json_pointer pointer_of(const std::string& dotted) {
  std::string p;
  std::stringstream in(dotted);
  std::string part;
  while (std::getline(in, part, '.')) p += "/" + part;
  return json::json_pointer(p);
}

// 1 and 1e12 rather than 1.0 and 1000000000000.0.
std::string number_text(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.10g", x);
  return buf;
}

bool type_matches(const KeyInfo& key, const json& v) {
  if (v.is_null()) return key.default_value.is_null() || key.type.find("null") != std::string::npos;
  const std::string& t = key.type;
  if (t.find("string|object") != std::string::npos) return v.is_string() || v.is_object();
  if (t == "number|auto") return v.is_number() || v == "auto";  // a number, or "auto"
  if (t.rfind("int", 0) == 0) return v.is_number_integer();
  if (t.rfind("number", 0) == 0) return v.is_number();
  if (t.rfind("string", 0) == 0) return v.is_string();
  if (t.rfind("bool", 0) == 0) return v.is_boolean();
  if (t.rfind("list", 0) == 0) return v.is_array();
  if (t.rfind("object", 0) == 0) return v.is_object();
  return true;
}

// Walks the user's document: every leaf must be a known key of the right type.
void validate(const json& doc, const std::string& prefix, const std::string& origin) {
  for (const auto& [k, v] : doc.items()) {
    const std::string path = prefix.empty() ? k : prefix + "." + k;
    if (const KeyInfo* key = find_key(path)) {
      if (!type_matches(*key, v)) {
        throw ConfigError(origin + ": key \"" + path + "\" must be " + key->type + ", got " +
                          v.dump() + " (" + key->help + ")");
      }
      if (v.is_number() && !(v.get<double>() >= key->min && v.get<double>() <= key->max))
        throw ConfigError(origin + ": key \"" + path + "\" must be between " +
                          number_text(key->min) + " and " + number_text(key->max) + ", got " +
                          v.dump() + " (" + key->help + ")");
      continue;
    }
    if (is_prefix_of_key(path)) {
      if (!v.is_object())
        throw ConfigError(origin + ": key \"" + path + "\" must be an object, got " + v.dump());
      validate(v, path, origin);
      continue;
    }
    throw ConfigError(origin + ": unknown key \"" + path + "\"; did you mean \"" +
                      nearest(path, key_paths()) + "\"? (`rumor config keys` lists them all)");
  }
}

// A path as the run uses it: absolute, a relative one taken from `dir`.
std::string absolute_from(const std::string& p, const std::string& dir) {
  if (p.empty()) return p;
  fs::path x(p);
  if (x.is_relative()) x = fs::absolute(fs::path(dir)) / x;
  return x.lexically_normal().string();
}

// The prefix of a dataset spec that names a file or folder ("csv:", "idx:"); "" for others.
std::string dataset_path_prefix(const std::string& spec) {
  for (const char* p : {"csv:", "idx:"})
    if (spec.rfind(p, 0) == 0 && spec.size() > 4) return p;
  return "";
}

// The key an override assigns ("a.b" of "a.b=value").
std::string override_key(const std::string& assignment) {
  return assignment.substr(0, assignment.find('='));
}

// Whether an override assigns `key` or an object holding it.
bool overridden(const std::vector<std::string>& overrides, const std::string& key) {
  for (const auto& o : overrides) {
    const std::string k = override_key(o);
    if (k == key || key.rfind(k + ".", 0) == 0) return true;
  }
  return false;
}

// Makes every path-valued key of `resolved` absolute: values from the config file against
// its folder, values from overrides against the working directory. Returns each path as
// written (its identity in the run id), so the id does not depend on where files live.
json anchor_paths(json& resolved, const std::string& base_dir,
                  const std::vector<std::string>& overrides, const json& recorded) {
  json written = json::object();
  for (const auto& key : path_keys()) {
    const auto ptr = pointer_of(key);
    if (!resolved.contains(ptr) || !resolved[ptr].is_string()) continue;
    const std::string value = resolved[ptr].get<std::string>();
    const std::string prefix = key == "data.dataset" ? dataset_path_prefix(value) : "";
    if (key == "data.dataset" && prefix.empty()) continue;
    const bool from_override = overridden(overrides, key);
    const std::string dir = from_override ? fs::current_path().string() : base_dir;
    const std::string path = value.substr(prefix.size());
    resolved[ptr] = prefix + absolute_from(path, dir);
    // A recorded run's config.json holds absolute paths and, beside them, the paths as
    // first written: the id stays the one the run was started with.
    written[key] = !from_override && recorded.contains(key) ? recorded[key] : json(value);
  }
  // A topology file is read in here; its contents, not its path, count for the run id.
  json& topology = resolved["topology"];
  json& file = topology.is_object() && topology.contains("file") ? topology["file"] : topology;
  if (file.is_string()) {
    const bool from_override =
        overridden(overrides, &file == &topology ? "topology" : "topology.file");
    file = absolute_from(file.get<std::string>(),
                         from_override ? fs::current_path().string() : base_dir);
  }
  return written;
}

// {"gen": KIND, KEY: VALUE...}: the generator's registry entry says which keys it takes.
json generate_from(const json& t, const std::string& origin) {
  const GeneratorInfo& g = find_generator(t.at("gen").get<std::string>());
  const std::vector<std::string> keys = g.keys();
  GenOptions o;
  if (g.default_nodes > 0) o.nodes = g.default_nodes;
  for (const auto& [k, v] : t.items()) {
    if (k == "gen") continue;
    if (std::find(keys.begin(), keys.end(), k) == keys.end())
      throw ConfigError(origin + ": unknown key \"topology." + k + "\" for generator \"" + g.name +
                        "\"; valid: gen, " + join(keys));
    set_generator_option(o, k, v);
  }
  return g.make(o).to_json();
}

// topology.schedule / topology.fanout beside a file ("file") or a generator ("gen"): the same
// nodes under peer sampling (their edges are dropped: peers are drawn from all nodes).
json with_schedule(json topo, const json& spec, const std::string& origin) {
  if (!spec.contains("schedule") && !spec.contains("fanout")) return topo;
  const json schedule = spec.value("schedule", topo.value("schedule", json("static")));
  if (schedule != "peer-sampling")
    throw ConfigError(origin + ": topology.schedule " + schedule.dump() +
                      " beside a topology file or generator: only \"peer-sampling\" (with "
                      "topology.fanout) can be set this way; other schedules are written in the "
                      "topology file");
  // Named for what it now is ("ring8-peer-sampling"), so that summaries do not say "ring8".
  if (topo.value("schedule", json("static")) != "peer-sampling")
    topo["name"] = topo.value("name", json("topology")).get<std::string>() + "-peer-sampling";
  topo["schedule"] = "peer-sampling";
  topo["directed"] = true;
  topo["mixing"] = "uniform";
  topo["edges"] = json::array();
  topo.erase("rounds");
  if (spec.contains("fanout")) topo["fanout"] = spec["fanout"];
  return topo;
}

json load_topology_file(const std::string& path, const std::string& format,
                        const std::string& origin) {
  if (!fs::exists(path))
    throw ConfigError(origin + ": topology file " + path +
                      " not found (a relative path in a config file is relative to the "
                      "file's folder, one given with --set to the working directory)");
  TopologyReadOptions read;
  read.format = format;
  return load_topology(path, read).to_json();
}

json resolve_topology(const json& t, const std::string& format, const std::string& origin,
                      std::uint64_t run_seed) {
  try {
    json topo;
    if (t.is_string()) {
      topo = load_topology_file(t.get<std::string>(), format, origin);
    } else if (t.contains("gen") || t.contains("file")) {
      json base = t;
      base.erase("schedule");
      base.erase("fanout");
      if (t.contains("gen")) {
        topo = generate_from(base, origin);
      } else {
        base.erase("file");
        if (!base.empty())
          throw ConfigError(origin +
                            ": \"topology\" with a \"file\" takes only schedule and "
                            "fanout beside it, not " +
                            base.begin().key());
        topo = load_topology_file(t.at("file").get<std::string>(), format, origin);
      }
      topo = with_schedule(topo, t, origin);
    } else {
      topo = t;
    }
    // Peer sampling draws from the run's seed unless the topology names its own.
    if (topo.value("schedule", json("static")) == "peer-sampling" && !topo.contains("seed"))
      topo["seed"] = run_seed;
    return parse_topology_json(topo, origin + " (topology)").to_json();
  } catch (const json::exception& e) {
    throw ConfigError(origin + ": bad \"topology\": " + e.what());
  }
}

}  // namespace

namespace {
// The run's own keys. method.name is followed by every method's declared options.
std::vector<KeyInfo> run_keys() {
  return {
      {"name", "string", "rumor", "experiment name; the run id starts with it"},
      {"seed", "int", 1, "shared seed: initial model, partition, data order, codec randomness", 0,
       9.007199254740992e15},
      {"topology", "string|object", "topologies/ring8.json",
       "topology file path, inline topology, or generator {\"gen\": \"ring\", \"nodes\": 8}; "
       "a generator also takes max_nodes (default 100000: more nodes are refused at once); "
       "schedule peer-sampling with fanout S beside a generator or a file ({\"file\": PATH}, "
       "or --set topology.schedule=peer-sampling --set topology.fanout=S) keeps its nodes and "
       "draws S peers per node each round"},
      {"topology_format", "string", "auto",
       "format of a topology file: json, edges (first line n, then \"u v\" per line), adj "
       "(first line n, then the neighbours of node i on line i), or auto (JSON when it starts "
       "with '{', else by the extension .edges/.adj, else guessed with a warning)"},
      {"task", "string", "train",
       "train | average (no training: gossip vectors drawn from (seed, node))"},
      {"average.dim", "int", 1000, "task average: length of each node's vector", 1, 1e9},
      {"method.name", "string", "dpsgd", ""},  // help and the method.* keys: the registry
      {"codec", "string|object", "fp32",
       "payload codec spec (fp32, fp16, topk:0.01|sign, ef|..., sketch...) or {\"chain\": [...]}"},
      {"data.dataset", "string", "auto",
       "fashion-mnist, idx:DIR, blobs, leaf-synthetic, csv:FILE; auto: fashion-mnist when "
       "Debian's dataset-fashion-mnist is installed, else blobs"},
      {"data.data_dir", "string|null", nullptr, "fashion-mnist: directory of the IDX files"},
      {"data.normalize", "bool", true, "normalize inputs"},
      {"data.train_size", "int", 10000, "synthetic data: training samples", 1, 1e9},
      {"data.test_size", "int", 2000, "synthetic data: test samples", 0, 1e9},
      {"data.dim", "int", 0, "synthetic data: input dimension (0: the generator's default)", 0,
       1e7},
      {"data.classes", "int", 10, "blobs: number of classes", 2, 1e5},
      {"data.separation", "number", 3.0, "blobs: distance between class means", 0, 1e6},
      {"data.leaf_alpha", "number", 1.0, "leaf-synthetic: how much the users' models differ", 0,
       1e6},
      {"data.leaf_beta", "number", 1.0, "leaf-synthetic: how much the users' inputs differ", 0,
       1e6},
      {"data.users", "int", 30, "leaf-synthetic: number of users (natural groups)", 1, 1e7},
      {"data.test_file", "string|null", nullptr, "csv: a separate test file"},
      {"data.test_fraction", "number", 0.2, "csv without test_file: share held out for testing", 0,
       1},
      {"data.partition.kind", "string", "dirichlet",
       "iid, dirichlet, shards, quantity, natural (the dataset's own groups)"},
      {"data.partition.alpha", "number", 0.5, "dirichlet: concentration (0.1 skewed, 100 near IID)",
       1e-9, 1e9},
      {"data.partition.min_size", "int", 10, "dirichlet, quantity: minimum samples per node", 0,
       1e9},
      {"data.partition.shards", "int", 2, "shards: shards per node", 1, 1e6},
      {"data.partition.power", "number", 1.5, "quantity: power-law exponent of node sizes", 0, 100},
      {"model.name", "string", "mlp", "logreg, mlp, cnn, resnet8, torchscript"},
      {"model.hidden", "list", json::array({128}), "mlp: hidden layer sizes"},
      {"model.norm", "string", "group", "cnn: group or none"},
      {"model.channels", "int", 32, "cnn/resnet8: channels of the first layer", 1, 1e5},
      {"model.path", "string|null", nullptr,
       "torchscript: file written by torch.jit.save; forward(float32 [batch, sample shape]) "
       "returns float32 logits [batch, classes] (README: Bring your own model)"},
      {"optimizer.name", "string", "sgd",
       "local optimizer: sgd (momentum, nesterov), adam, adamw (beta1, beta2, eps; adamw's "
       "weight_decay is decoupled)"},
      {"optimizer.lr", "number", 0.1, "learning rate", 0, 1e3},
      {"optimizer.momentum", "number", 0.0, "momentum", 0, 1},
      {"optimizer.nesterov", "bool", false, "Nesterov momentum"},
      {"optimizer.weight_decay", "number", 0.0,
       "weight decay (sgd and adam: L2 added to the gradient; adamw: decoupled)", 0, 10},
      {"optimizer.beta1", "number", 0.9, "adam/adamw: decay of the first moment", 0, 1},
      {"optimizer.beta2", "number", 0.999, "adam/adamw: decay of the second moment", 0, 1},
      {"optimizer.eps", "number", 1e-8, "adam/adamw: added to the root of the second moment", 1e-30,
       1},
      {"optimizer.schedule.kind", "string", "constant", "constant, step, cosine"},
      {"optimizer.schedule.step_size", "int", 1000, "step: local steps between decays", 1, 1e12},
      {"optimizer.schedule.gamma", "number", 0.1, "step: decay factor", 0, 10},
      {"optimizer.schedule.min_lr", "number", 0.0, "cosine: final learning rate", 0, 1e3},
      {"optimizer.schedule.warmup_steps", "int", 0, "linear warm-up steps", 0, 1e12},
      {"batch_size", "int", 32, "minibatch size of a local step", 1, 1e6},
      {"local_steps", "int", 1, "local steps per round (SQuARM's H)", 1, 1e6},
      {"rounds", "int", 1000, "rounds to run", 1, 1e12},
      {"eval.every", "int", 50,
       "evaluate test accuracy and consensus distance every N rounds (and at the end)", 1, 1e12},
      {"eval.test_samples", "int", 0,
       "evaluate on the first N test samples (0: the whole test set)", 0, 1e9},
      {"eval.target_acc", "number|null", nullptr,
       "reports give the round and time (simulated in-process) when the mean test accuracy "
       "first reaches this",
       0, 1},
      {"checkpoint.every", "int", 0, "write a checkpoint every N rounds (0: never)", 0, 1e12},
      {"network.secret_file", "string|null", nullptr,
       "file whose first line is the run secret: every connection proves it knows it (HMAC "
       "challenge-response both ways). launch makes one per run (RUNDIR/secret); rumor node "
       "needs one (rumor secret new -o FILE) unless network.insecure"},
      {"network.insecure", "bool", false,
       "rumor node without network.secret_file: anyone who reaches a port may join as any node "
       "(warned once)"},
      {"network.tls", "bool", false,
       "TCP links over TLS 1.3, both sides authenticated: with network.tls_cert by "
       "certificates (rumor secret ca, rumor secret certs), else by a key derived from the run "
       "secret (network.secret_file; launch makes one)"},
      {"network.tls_cert", "string|null", nullptr,
       "network.tls: this node's PEM certificate, signed by tls_ca, subject CN node-<id>; {id} "
       "in the path becomes the node id (e.g. certs/node-{id}.pem)"},
      {"network.tls_key", "string|null", nullptr,
       "network.tls: the private key of tls_cert (PEM; {id} as there)"},
      {"network.tls_ca", "string|null", nullptr,
       "network.tls: the CA certificate (PEM) a peer's certificate must be signed by"},
      {"network.shm", "string", "auto",
       "auto: a data link between two peers on one host (both holding the run secret, no TLS) "
       "moves its messages to a shared-memory ring once the connection proves they share "
       "memory, TCP staying the control path and the fallback; off: TCP only"},
      {"network.max_rounds_ahead", "int", 32,
       "gossip messages for rounds further ahead of this node than this are refused unread "
       "(counted)",
       1, 1e6},
      {"network.mailbox_mb", "number", 1024.0,
       "received messages buffered per peer in MiB (with max_rounds_ahead, what one peer can "
       "make a node hold); a message over it is refused unread (counted). Keep it at least "
       "max_frame_mb",
       0.001, 1e6},
      {"network.max_pending_handshakes", "int", 64,
       "connections still in their handshake at once; more are closed at accept (counted)", 1, 1e5},
      {"network.connect_timeout_s", "number", 30.0, "seconds to wait for every link at start", 0,
       1e6},
      {"network.max_frame_mb", "number", 1024.0, "largest accepted frame in MiB", 0.001, 1e6},
      {"network.round_timeout_s", "number", 60.0,
       "seconds to wait for a neighbour's message; then, with on_peer_failure stop, the "
       "run fails naming the peer, with continue the node goes on without it",
       0, 1e6},
      {"network.round_deadline", "string", "fixed",
       "TCP: fixed (wait up to round_timeout_s) or adaptive (deadline_factor x the median of "
       "the last 16 rounds, within [deadline_min_s, round_timeout_s]); past the deadline a "
       "node goes on: late messages are absorbed by push-sum, dropped by other methods "
       "(msgs_late, msgs_missed)"},
      {"network.deadline_factor", "number", 3.0, "adaptive deadline: multiple of the median round",
       0.01, 1e3},
      {"network.deadline_min_s", "number", 0.5, "adaptive deadline: lower bound in seconds", 0,
       1e6},
      {"network.max_rejects", "int", 10,
       "messages from one peer refused by the gate (bad size, codec error, non-finite or "
       "out-of-range values) before that peer is left out of the mixing as if it were down",
       1, 1e12},
      {"network.max_abs_value", "number", 1e6,
       "largest magnitude accepted in a received value (push-sum running sums: times n and "
       "the round); messages with larger or non-finite values are refused",
       1e-30, 1e300},
      {"network.base_port", "int|null", nullptr,
       "move every node to base_port + id (launch picks one)", 1, 65535},
      {"on_peer_failure", "string", "stop",
       "stop: a dead peer stops the run; continue: its neighbours drop it from the mixing and "
       "the others go on (TCP: a restarted peer rejoins, see rumor node --rejoin)"},
      {"faults.kill_node", "int|null", nullptr,
       "fault injection: this node kills itself (SIGKILL) after round faults.kill_round", 0, 1e6},
      {"faults.kill_round", "int", 0, "fault injection: the round after which kill_node dies", 0,
       1e12},
      {"faults.kill_also", "list", json::array(),
       "fault injection: more node ids that die with kill_node, after the same round (and come "
       "back the same way)"},
      {"faults.restart_round", "int|null", nullptr,
       "kill_node rejoins after this round (in-process: takes a live neighbour's model; TCP "
       "with faults.restart_after_s: its neighbours wait there, at most "
       "network.connect_timeout_s, for its rejoin request, so the rejoin round is fixed)",
       0, 1e12},
      {"faults.restart_after_s", "number|null", nullptr,
       "launch, on_peer_failure continue: restart a peer that died after this many seconds; it "
       "rejoins from its checkpoint or a neighbour's model",
       0, 1e6},
      {"faults.join", "list", json::array(),
       "membership: standby nodes (\"standby\": true in the topology) that join, "
       "[{\"node\": id, \"round\": r}]: admitted by their neighbours before round r, they take "
       "the current model (push-sum: a share of their neighbours' mass) and start there"},
      {"faults.leave", "list", json::array(),
       "membership: graceful leaves, [{\"node\": id, \"round\": r}]: the node runs rounds "
       "before r, hands its push-sum mass to its neighbours and says goodbye"},
      {"faults.pause", "list", json::array(),
       "membership: pauses, [{\"node\": id, \"round\": r, \"seconds\": s}]: the node is out "
       "from round r for s seconds (in-process: simulated), then is readmitted like a join"},
      {"faults.max_lag_rounds", "int", 10,
       "membership: a peer back from a pause more rounds behind than this takes its "
       "neighbours' current model instead of keeping its own (push-sum keeps its own: its "
       "mass is part of the total)",
       0, 1e12},
      {"faults.slow_nodes", "list", json::array(),
       "node ids that compute faults.slowdown times slower (in-process: simulated time; TCP: "
       "the node sleeps after its local steps)"},
      {"faults.slowdown", "number", 4.0, "compute slowdown factor of faults.slow_nodes", 1, 1e6},
      {"faults.bad_node", "int|null", nullptr,
       "fault injection: this node corrupts the gossip messages it sends (faults.bad_payload) "
       "in rounds faults.bad_rounds; its neighbours must refuse them and go on",
       0, 1e6},
      {"faults.bad_payload", "string", "nan",
       "what bad_node sends: nan, huge, truncate, extend, garbage, codec_tag or weight"},
      {"faults.bad_rounds", "list", json::array({0, -1}),
       "[first, last] rounds in which bad_node corrupts its messages (last -1: to the end)"},
      {"faults.byzantine", "object|null", nullptr,
       "Byzantine nodes for experiments: {\"nodes\": [ids], \"attack\": \"sign-flip\" | "
       "\"gaussian\" | \"alie\" | \"zero\", \"sigma\": 1 (gaussian), \"z\": 1 (alie)}; "
       "they send the attack to their neighbours and train honestly themselves (dpsgd, qgm)"},
      {"links.latency_s", "number", 0.0,
       "in-process: one-way latency of every link (simulated seconds)", 0, 1e6},
      {"links.bandwidth_MBps", "number", 0.0,
       "in-process: bandwidth of every link in MB/s (0: unlimited; a link sends one message "
       "at a time)",
       0, 1e12},
      {"links.loss", "number", 0.0, "in-process: probability that a data message is lost", 0,
       0.999999},
      {"links.overrides", "list", json::array(),
       "in-process: per-link values, e.g. [{\"from\": 0, \"to\": 1, \"latency_s\": 0.05, "
       "\"bandwidth_MBps\": 1, \"loss\": 0.1, \"directed\": false}]"},
      {"sim.step_s", "number", 0.01,
       "in-process: simulated seconds of one local step (times the node's slowdown); runs "
       "report sim_time_s, the clock of each node",
       0, 1e6},
      {"output.dir", "string", "runs", "runs are written to output.dir/<run id>/"},
  };
}

// Options two methods both declare (method.beta) must agree; the first declaration is
// documented.
void add_method_options(std::vector<KeyInfo>& out) {
  std::vector<std::string> names;
  for (const auto& m : gossip::methods()) {
    names.push_back(m.name);
    for (const auto& o : m.options) {
      const auto same =
          std::find_if(out.begin(), out.end(), [&](const KeyInfo& k) { return k.path == o.path; });
      if (same == out.end()) {
        out.push_back(o);
      } else if (same->type != o.type || same->default_value != o.default_value ||
                 same->min != o.min || same->max != o.max) {
        throw Error("methods declare option " + o.path + " differently (" + m.name + ")");
      }
    }
  }
  for (auto& k : out)
    if (k.path == "method.name")
      k.help = "consensus method: " + join(names) +
               " (qdata sends training samples to neighbours: data leaves the node)";
}

// A method's own defaults for run keys (diloco: optimizer.name adamw), named in the key's help.
void add_method_run_defaults(std::vector<KeyInfo>& out) {
  for (const auto& m : gossip::methods())
    for (const auto& [path, value] : m.run_defaults) {
      const auto key =
          std::find_if(out.begin(), out.end(), [&](const KeyInfo& k) { return k.path == path; });
      if (key == out.end() || !type_matches(*key, value))
        throw Error("method " + m.name + " gives a default to " + path +
                    ", which is not a run key of that type");
      key->help += " (method " + m.name + ": default " + value.dump() + ")";
    }
}

// Run keys the config leaves unset take the chosen method's own default, if it has one.
void apply_method_run_defaults(json& resolved, const json& user) {
  const json& name = resolved["method"]["name"];
  for (const auto& m : gossip::methods()) {
    if (!name.is_string() || m.name != name.get<std::string>()) continue;
    for (const auto& [path, value] : m.run_defaults)
      if (!user.contains(pointer_of(path))) resolved[pointer_of(path)] = value;
  }
}
}  // namespace

const std::vector<KeyInfo>& keys() {
  static const std::vector<KeyInfo> k = [] {
    std::vector<KeyInfo> out;
    for (auto& key : run_keys()) {
      out.push_back(std::move(key));
      if (out.back().path == "method.name") add_method_options(out);
    }
    add_method_run_defaults(out);
    return out;
  }();
  return k;
}

std::string keys_help() {
  std::ostringstream out;
  for (const auto& k : keys()) {
    out << k.path << "  (" << k.type << ", default " << k.default_value.dump();
    if (std::isfinite(k.min)) out << ", " << number_text(k.min) << ".." << number_text(k.max);
    out << ")\n    " << k.help << "\n";
  }
  return out.str();
}

void apply_override(json& doc, const std::string& assignment) {
  const auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0)
    throw ConfigError("--set expects key=value (e.g. --set optimizer.lr=0.05), got \"" +
                      assignment + "\"");
  const std::string key = assignment.substr(0, eq);
  const std::string text = assignment.substr(eq + 1);
  json value;
  try {
    value = json::parse(text);
  } catch (const json::parse_error&) {
    value = text;                       // not JSON: a plain string
  } catch (const json::exception& e) {  // e.g. 1e712: JSON, but no double holds it
    throw ConfigError("--set " + assignment + ": the value cannot be read (" + e.what() +
                      "); give a number a double can hold");
  }
  json* node = &doc;
  std::stringstream in(key);
  std::string part;
  std::vector<std::string> parts;
  while (std::getline(in, part, '.')) parts.push_back(part);
  for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
    json& next = (*node)[parts[i]];
    if (!next.is_object()) {
      // A leaf given as a string is replaced by an object; a topology file stays its "file"
      // (--set topology.schedule=peer-sampling keeps the file's nodes).
      next = i == 0 && parts[0] == "topology" && next.is_string() ? json{{"file", next}}
                                                                  : json::object();
    }
    node = &next;
  }
  (*node)[parts.back()] = value;
}

std::string sha256_hex(const std::string& data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), digest, &len, EVP_sha256(), nullptr);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out += hex[digest[i] >> 4];
    out += hex[digest[i] & 15];
  }
  return out;
}

Config Config::load(const std::string& path, const std::vector<std::string>& overrides) {
  std::ifstream in(path);
  if (!in) {
    throw ConfigError(path + ": cannot open the config file (" +
                      (fs::exists(path) ? "permission denied" : "no such file") +
                      "); see experiments/ for examples");
  }
  std::stringstream buf;
  buf << in.rdbuf();
  const std::string text = buf.str();
  nlohmann::json user;
  try {
    user = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    throw ConfigError(json_syntax_error(text, e.byte, e.what(), path));
  } catch (const nlohmann::json::exception& e) {  // e.g. 1e712: no double holds it
    throw ConfigError(path + ": a value cannot be read (" + e.what() +
                      "); give numbers a double can hold");
  }
  const std::string dir = fs::path(path).parent_path().string();
  return from_json(user, path, dir.empty() ? "." : dir, overrides);
}

Config Config::from_json(const nlohmann::json& user_in, const std::string& origin,
                         const std::string& base_dir, const std::vector<std::string>& overrides) {
  if (!user_in.is_object() && !user_in.is_null())
    throw ConfigError(origin + ": a config must be a JSON object");
  nlohmann::json user = user_in.is_null() ? nlohmann::json::object() : user_in;
  // A run's config.json carries provenance under "rumor"; it is not part of the config.
  nlohmann::json recorded_paths = nlohmann::json::object();
  if (user.contains("rumor") && user["rumor"].is_object() &&
      user["rumor"].value("paths_as_written", nlohmann::json()).is_object())
    recorded_paths = user["rumor"]["paths_as_written"];
  user.erase("rumor");
  for (const auto& o : overrides) apply_override(user, o);
  validate(user, "", origin);

  nlohmann::json resolved = nlohmann::json::object();
  for (const auto& k : keys()) resolved[pointer_of(k.path)] = k.default_value;
  for (const auto& k : keys()) {
    const auto ptr = pointer_of(k.path);
    if (user.contains(ptr)) resolved[ptr] = user[ptr];
  }
  apply_method_run_defaults(resolved, user);

  Config c;
  c.origin_ = origin;
  // Relative paths are resolved now so that every node agrees (and --resume works anywhere).
  c.paths_as_written_ = anchor_paths(resolved, base_dir, overrides, recorded_paths);
  nlohmann::json topo =
      resolve_topology(resolved["topology"], resolved["topology_format"].get<std::string>(), origin,
                       resolved["seed"].get<std::uint64_t>());
  if (!resolved["network"]["base_port"].is_null()) {
    // Rebase: a launcher moved the run to a free port range (only for files without ports).
    const int base = resolved["network"]["base_port"].get<int>();
    for (auto& node : topo["nodes"])
      if (!node.contains("port")) node["port"] = base + node["id"].get<int>();
  }
  resolved["topology"] = topo;
  const std::string task = resolved["task"].get<std::string>();
  if (task != "train" && task != "average")
    throw ConfigError(origin + ": unknown task \"" + task + "\"; valid: train, average");
  const auto positive = [&](const char* key) {
    if (resolved[pointer_of(key)].get<double>() <= 0)
      throw ConfigError(origin + ": \"" + std::string(key) + "\" must be positive");
  };
  for (const char* k :
       {"batch_size", "local_steps", "rounds", "eval.every", "average.dim", "optimizer.lr"})
    positive(k);
  if (resolved["name"].get<std::string>().find_first_of("/\\ ") != std::string::npos)
    throw ConfigError(origin + ": \"name\" must not contain '/', '\\' or spaces");

  c.resolved_ = resolved;
  // Where results go is not part of what the run is: hosts may mount it differently.
  nlohmann::json identity = resolved;
  identity.erase("output");
  // Paths count as written, not where they point on this machine.
  for (const auto& [key, value] : c.paths_as_written_.items()) identity[pointer_of(key)] = value;
  // Nor is the port range a launcher picked for it: nodes take ports from the topology.
  identity["network"].erase("base_port");
  // Nor is the secret that guards it (launch makes a fresh one per run, in the run directory).
  identity["network"]["secret_file"] = nullptr;
  identity["network"].erase("insecure");
  // Nor how its links are guarded or carried: a TLS run, or one whose co-located peers talk
  // through shared memory, is the same run (and gives the same metrics).
  for (const char* k : {"tls", "tls_cert", "tls_key", "tls_ca", "shm"})
    identity["network"].erase(k);
  for (auto& node : identity["topology"]["nodes"])
    if (resolved["network"]["base_port"].is_number()) node.erase("port");
  c.run_id_ = resolved["name"].get<std::string>() + "-s" +
              std::to_string(resolved["seed"].get<std::int64_t>()) + "-" +
              sha256_hex(identity.dump()).substr(0, 8);
  return c;
}

const std::vector<std::string>& path_keys() {
  static const std::vector<std::string> k = {
      "data.dataset",        "data.data_dir",    "data.test_file",  "model.path",
      "network.secret_file", "network.tls_cert", "network.tls_key", "network.tls_ca"};
  return k;
}

std::vector<std::string> anchor_overrides(const std::vector<std::string>& overrides,
                                          const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& o : overrides) {
    const std::string key = override_key(o);
    std::string value = o.size() > key.size() ? o.substr(key.size() + 1) : "";
    // A value may be written as a JSON string ("\"m.pt\""), as apply_override reads it.
    const json parsed = json::parse(value, nullptr, false);
    if (parsed.is_string()) value = parsed.get<std::string>();
    const bool is_path = key == "topology" ? !value.empty() && value.front() != '{'
                                           : std::find(path_keys().begin(), path_keys().end(),
                                                       key) != path_keys().end();
    const std::string prefix = key == "data.dataset" ? dataset_path_prefix(value) : "";
    if (!is_path || (key == "data.dataset" && prefix.empty()) || value == "null") {
      out.push_back(o);
      continue;
    }
    out.push_back(key + "=" + prefix + absolute_from(value.substr(prefix.size()), dir));
  }
  return out;
}

const nlohmann::json& Config::at(const std::string& path) const {
  const auto ptr = pointer_of(path);
  if (!resolved_.contains(ptr)) throw ConfigError(origin_ + ": no config key \"" + path + "\"");
  return resolved_.at(ptr);
}

std::string Config::run_dir() const {
  return (fs::path(at("output.dir").get<std::string>()) / run_id_).string();
}

}  // namespace rumor::config
