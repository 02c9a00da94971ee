#pragma once
// The fault options of a run (on_peer_failure, deadlines, the gate's limits, fault
// injection), read from the config and validated once, before round 0, for every driver.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>
#include <vector>

#include "bad_sender.hpp"
#include "rumor/config/config.hpp"
#include "rumor/gossip/driver.hpp"
#include "rumor/run/byzantine.hpp"
#include "rumor/topology/topology.hpp"

namespace rumor::run {

// A scripted membership change (faults.join, faults.leave, faults.pause): it happens at the
// boundary before round `round`. join: the node's first round; leave: the node runs the
// rounds before it, then hands its state on and says goodbye; pause: the node is out from
// that round for `seconds` (in-process: simulated seconds), then comes back.
struct MembershipEvent {
  int node = 0;
  std::int64_t round = 0;
  double seconds = 0;  // pause only
};

struct FaultOptions {
  bool keep_going = false;  // on_peer_failure: continue (else stop)
  // network.round_timeout_s / round_deadline / deadline_factor / deadline_min_s
  std::chrono::milliseconds round_timeout{60000};
  bool adaptive_deadline = false;
  double deadline_factor = 3.0;
  std::chrono::milliseconds deadline_min{500};
  std::chrono::milliseconds connect_timeout{30000};
  // The gate (network.max_rejects, network.max_abs_value).
  std::uint64_t max_rejects = 10;
  double max_abs_value = 1e6;
  // Injection: a node that dies after kill_round (and, with restart_round, comes back).
  std::optional<int> kill_node;
  std::vector<int> kill_also;  // die with kill_node (faults.kill_also)
  std::int64_t kill_round = 0;
  std::optional<std::int64_t> restart_round;
  std::optional<double> restart_after_s;  // launch: restart a dead peer after this long
  std::vector<int> slow_nodes;
  double slowdown = 4.0;
  std::optional<int> bad_node;
  BadSender::Corruption bad_payload = BadSender::Corruption::kNan;
  std::int64_t bad_first = 0, bad_last = -1;
  std::optional<ByzantineOptions> byzantine;  // faults.byzantine: attackers (experiments)
  // Elastic membership: scripted joins (standby nodes), graceful leaves and pauses, by round.
  std::vector<MembershipEvent> joins, leaves, pauses;
  // A peer back from a pause more rounds behind than this takes its neighbours' model.
  std::int64_t max_lag_rounds = 10;
  std::vector<int> standby;  // the topology's standby nodes

  bool membership_changes() const {
    return !joins.empty() || !leaves.empty() || !pauses.empty() || !standby.empty();
  }
  // The scripted event of `node` at the boundary before `round` in `events`, if any.
  static const MembershipEvent* event_at(const std::vector<MembershipEvent>& events, int node,
                                         std::int64_t round);

  // Throws ConfigError naming the config, the key and what to change. Node ids are checked
  // against the topology (joins name its standby nodes); method.name: allreduce cannot go on
  // without a node.
  static FaultOptions parse(const config::Config& cfg, const Topology& topology);

  gossip::RoundDeadline deadline() const {
    return gossip::RoundDeadline(round_timeout, adaptive_deadline, deadline_factor, deadline_min);
  }
  // kill_node and kill_also, in that order.
  std::vector<int> kill_set() const;
  bool killed(int id, std::int64_t round) const {
    const auto k = kill_set();
    return kill_round == round && std::find(k.begin(), k.end(), id) != k.end();
  }
  double slowdown_of(int id) const;
};

}  // namespace rumor::run
