#include "fault_options.hpp"

#include <algorithm>
#include <cmath>

#include "rumor/common/error.hpp"

namespace rumor::run {
namespace {

using std::chrono::milliseconds;

milliseconds seconds_ms(const config::Config& cfg, const std::string& key) {
  const double s = cfg.get<double>(key);
  if (!(s >= 0) || s > 1e7)
    throw ConfigError(cfg.origin() + ": " + key + " must be between 0 and 1e7 seconds, got " +
                      std::to_string(s));
  return milliseconds(static_cast<std::int64_t>(s * 1000));
}

std::optional<int> node_of(const config::Config& cfg, const std::string& key, int nodes) {
  const auto& v = cfg.at(key);
  if (v.is_null()) return std::nullopt;
  const int id = v.get<int>();
  if (id < 0 || id >= nodes)
    throw ConfigError(cfg.origin() + ": " + key + " " + std::to_string(id) +
                      " is not a node of the topology (ids 0.." + std::to_string(nodes - 1) + ")");
  return id;
}

void parse_deadline(const config::Config& cfg, FaultOptions& f) {
  const auto policy = cfg.get<std::string>("on_peer_failure");
  if (policy != "stop" && policy != "continue")
    throw ConfigError(cfg.origin() + ": on_peer_failure must be stop or continue, got \"" + policy +
                      "\"");
  f.keep_going = policy == "continue";
  if (f.keep_going && cfg.get<std::string>("method.name") == "allreduce")
    throw ConfigError(cfg.origin() +
                      ": method allreduce cannot continue without a peer (the ring needs every "
                      "node); use on_peer_failure stop, or a gossip method such as dpsgd or sgp");
  const auto kind = cfg.get<std::string>("network.round_deadline");
  if (kind != "fixed" && kind != "adaptive")
    throw ConfigError(cfg.origin() + ": network.round_deadline must be fixed or adaptive, got \"" +
                      kind + "\"");
  f.adaptive_deadline = kind == "adaptive";
  f.deadline_factor = cfg.get<double>("network.deadline_factor");
  if (!(f.deadline_factor > 0) || !std::isfinite(f.deadline_factor))
    throw ConfigError(cfg.origin() + ": network.deadline_factor must be > 0");
  f.round_timeout = seconds_ms(cfg, "network.round_timeout_s");
  f.deadline_min = seconds_ms(cfg, "network.deadline_min_s");
  f.connect_timeout = seconds_ms(cfg, "network.connect_timeout_s");
  const auto max_rejects = cfg.get<std::int64_t>("network.max_rejects");
  if (max_rejects < 1)
    throw ConfigError(cfg.origin() + ": network.max_rejects must be >= 1, got " +
                      std::to_string(max_rejects));
  f.max_rejects = static_cast<std::uint64_t>(max_rejects);
  f.max_abs_value = cfg.get<double>("network.max_abs_value");
  if (!(f.max_abs_value > 0) || !std::isfinite(f.max_abs_value))
    throw ConfigError(cfg.origin() + ": network.max_abs_value must be a positive number");
}

void parse_injection(const config::Config& cfg, int nodes, FaultOptions& f) {
  f.kill_node = node_of(cfg, "faults.kill_node", nodes);
  f.kill_round = cfg.get<std::int64_t>("faults.kill_round");
  for (const auto& v : cfg.at("faults.kill_also")) {
    if (!v.is_number_integer() || v.get<int>() < 0 || v.get<int>() >= nodes)
      throw ConfigError(cfg.origin() + ": faults.kill_also holds " + v.dump() +
                        ", not a node id (0.." + std::to_string(nodes - 1) + ")");
    f.kill_also.push_back(v.get<int>());
  }
  if (!f.kill_also.empty() && !f.kill_node)
    throw ConfigError(cfg.origin() +
                      ": faults.kill_also needs faults.kill_node (the first to die)");
  if (const auto& r = cfg.at("faults.restart_round"); !r.is_null())
    f.restart_round = r.get<std::int64_t>();
  if (f.kill_node && f.restart_round && *f.restart_round <= f.kill_round)
    throw ConfigError(cfg.origin() + ": faults.restart_round must come after faults.kill_round");
  if (const auto& r = cfg.at("faults.restart_after_s"); !r.is_null()) {
    f.restart_after_s = r.get<double>();
    if (!(*f.restart_after_s >= 0))
      throw ConfigError(cfg.origin() + ": faults.restart_after_s must be >= 0");
  }
  for (const auto& v : cfg.at("faults.slow_nodes")) {
    if (!v.is_number_integer() || v.get<int>() < 0 || v.get<int>() >= nodes)
      throw ConfigError(cfg.origin() + ": faults.slow_nodes holds " + v.dump() +
                        ", not a node id (0.." + std::to_string(nodes - 1) + ")");
    f.slow_nodes.push_back(v.get<int>());
  }
  f.slowdown = cfg.get<double>("faults.slowdown");
  if (!(f.slowdown >= 1.0))
    throw ConfigError(cfg.origin() + ": faults.slowdown must be >= 1 (a slowdown factor)");
  f.bad_node = node_of(cfg, "faults.bad_node", nodes);
  f.bad_payload = BadSender::parse(cfg.get<std::string>("faults.bad_payload"), cfg.origin());
  const auto& window = cfg.at("faults.bad_rounds");
  if (window.size() != 2 || !window[0].is_number_integer() || !window[1].is_number_integer())
    throw ConfigError(cfg.origin() + ": faults.bad_rounds must be [first, last] (two integers)");
  f.bad_first = window[0].get<std::int64_t>();
  f.bad_last = window[1].get<std::int64_t>();
  f.byzantine = ByzantineOptions::parse(cfg.at("faults.byzantine"), nodes,
                                        gossip::method_info(cfg.get<std::string>("method.name")),
                                        cfg.origin());
  if (f.byzantine && f.bad_node && f.byzantine->contains(*f.bad_node))
    throw ConfigError(cfg.origin() + ": node " + std::to_string(*f.bad_node) +
                      " is both faults.bad_node and Byzantine; pick one role per node");
}

// faults.join / leave / pause: a list of {"node": id, "round": r} (pause: and "seconds").
std::vector<MembershipEvent> parse_events(const config::Config& cfg, const std::string& key,
                                          int nodes, std::int64_t rounds, bool pause) {
  std::vector<MembershipEvent> out;
  const auto& list = cfg.at(key);
  for (std::size_t i = 0; i < list.size(); ++i) {
    const auto& e = list[i];
    const std::string where = cfg.origin() + ": " + key + "[" + std::to_string(i) + "]";
    const bool shaped = e.is_object() && e.contains("node") && e["node"].is_number_integer() &&
                        e.contains("round") && e["round"].is_number_integer() &&
                        (!pause || (e.contains("seconds") && e["seconds"].is_number())) &&
                        e.size() == (pause ? 3u : 2u);
    if (!shaped)
      throw ConfigError(where + " must be {\"node\": id, \"round\": r" +
                        (pause ? std::string(", \"seconds\": s}") : std::string("}")) + ", got " +
                        e.dump());
    MembershipEvent ev{e["node"].get<int>(), e["round"].get<std::int64_t>(),
                       pause ? e["seconds"].get<double>() : 0.0};
    if (ev.node < 0 || ev.node >= nodes)
      throw ConfigError(where + ": node " + std::to_string(ev.node) +
                        " is not a node of the topology (ids 0.." + std::to_string(nodes - 1) +
                        ")");
    if (ev.round < 1 || ev.round >= rounds)
      throw ConfigError(where + ": round " + std::to_string(ev.round) + " must be in 1.." +
                        std::to_string(rounds - 1) + " (a boundary inside the run)");
    if (pause && !(ev.seconds > 0 && ev.seconds <= 1e7))
      throw ConfigError(where + ": seconds must be > 0 (and at most 1e7)");
    for (const auto& o : out)
      if (o.node == ev.node)
        throw ConfigError(where + ": node " + std::to_string(ev.node) + " is listed twice in " +
                          key + "; one event per node");
    out.push_back(ev);
  }
  return out;
}

// Joins name standby nodes; a node leaves after it is in and pauses while it is in.
void check_membership(const config::Config& cfg, const Topology& t, FaultOptions& f) {
  const std::string o = cfg.origin() + ": ";
  for (int i = 0; i < t.size(); ++i)
    if (t.standby(i)) f.standby.push_back(i);
  if (static_cast<int>(f.standby.size()) == t.size())
    throw ConfigError(o + "every node of topology '" + t.name() +
                      "' is standby; at least one must run from the start");
  for (const auto& j : f.joins)
    if (!t.standby(j.node))
      throw ConfigError(o + "faults.join names node " + std::to_string(j.node) +
                        ", which is not standby in topology '" + t.name() +
                        "'; mark it \"standby\": true in the topology file");
  auto joined = [&](int node) -> std::int64_t {
    if (!t.standby(node)) return 0;
    for (const auto& j : f.joins)
      if (j.node == node) return j.round;
    return -1;
  };
  for (const auto* list : {&f.leaves, &f.pauses})
    for (const auto& e : *list) {
      const auto in = joined(e.node);
      if (in < 0 || e.round <= in)
        throw ConfigError(o + "node " + std::to_string(e.node) + " " +
                          (list == &f.leaves ? "leaves" : "pauses") + " at round " +
                          std::to_string(e.round) +
                          " before it has joined the run (faults.join, standby)");
    }
  for (const auto& l : f.leaves)
    for (const auto& p : f.pauses)
      if (p.node == l.node && p.round >= l.round)
        throw ConfigError(o + "node " + std::to_string(p.node) +
                          " pauses after it left (faults.pause, faults.leave)");
  f.max_lag_rounds = cfg.get<std::int64_t>("faults.max_lag_rounds");
  if (f.max_lag_rounds < 0) throw ConfigError(o + "faults.max_lag_rounds must be >= 0");
  if (f.membership_changes() && !f.keep_going)
    throw ConfigError(o +
                      "membership changes (standby nodes, faults.join, faults.leave, "
                      "faults.pause) need on_peer_failure continue");
}

}  // namespace

FaultOptions FaultOptions::parse(const config::Config& cfg, const Topology& topology) {
  FaultOptions f;
  const int nodes = topology.size();
  parse_deadline(cfg, f);
  parse_injection(cfg, nodes, f);
  const auto rounds = cfg.get<std::int64_t>("rounds");
  f.joins = parse_events(cfg, "faults.join", nodes, rounds, false);
  f.leaves = parse_events(cfg, "faults.leave", nodes, rounds, false);
  f.pauses = parse_events(cfg, "faults.pause", nodes, rounds, true);
  check_membership(cfg, topology, f);
  return f;
}

std::vector<int> FaultOptions::kill_set() const {
  std::vector<int> k;
  if (kill_node) k.push_back(*kill_node);
  for (int id : kill_also)
    if (std::find(k.begin(), k.end(), id) == k.end()) k.push_back(id);
  return k;
}

const MembershipEvent* FaultOptions::event_at(const std::vector<MembershipEvent>& events, int node,
                                              std::int64_t round) {
  for (const auto& e : events)
    if (e.node == node && e.round == round) return &e;
  return nullptr;
}

double FaultOptions::slowdown_of(int id) const {
  return std::find(slow_nodes.begin(), slow_nodes.end(), id) != slow_nodes.end() ? slowdown : 1.0;
}

}  // namespace rumor::run
