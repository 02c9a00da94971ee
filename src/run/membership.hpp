#pragma once
// Elastic membership of an in-process run (faults.join, faults.leave, faults.pause and the
// topology's standby nodes). Every change happens at a round boundary, through the same
// method calls a TCP node makes:
//   leave   the leaver hands what it holds to its live neighbours (Method::leave), each
//           accepts its goodbye (gossip::accept_leave) and leaves it out from that round;
//   join    a standby node, out of the mixing of its neighbours from round 0, is admitted
//           through the rejoin hand-over without a checkpoint: it takes their model
//           (push-sum: half of each neighbour's mass, so the total is unchanged);
//   pause   the node is out from its round for `seconds` of simulated time; at the first
//           boundary its live neighbours' clocks have passed that, it is readmitted by the
//           same hand-over, keeping its own state when at most faults.max_lag_rounds behind,
//           else taking theirs; push-sum always keeps its own (its mass is part of the total;
//           the running sums settle what was in flight).
// Mixing stays stochastic throughout: Metropolis-Hastings weights over the live graph from
// the degrees nodes announce at boundaries (Method::use_live_mixing), push-sum splits over
// its live out-neighbours.
#include <cstdint>
#include <memory>
#include <vector>

#include <nlohmann/json.hpp>

#include "fault_options.hpp"
#include "rumor/net/transport.hpp"
#include "rumor/run/peer.hpp"

namespace rumor::run {

// The peers of an in-process run as the membership changes them.
struct InProcPeers {
  std::vector<std::unique_ptr<Peer>>& peers;
  std::vector<char>& alive;
  std::vector<std::unique_ptr<net::Transport>>& transports;
};

// Peer k rejoins (or joins) after being out: each live neighbour answers its request with an
// offer through the method's rejoin hand-over, from round `round`. `own_state`: k keeps what
// it holds (a checkpoint or a short pause) and is only let back in. Returns the offers taken.
int rejoin_inprocess(InProcPeers& p, const Topology& topology, int k, std::int64_t round,
                     bool own_state);

class Membership {
 public:
  Membership(const FaultOptions& faults, const Topology& topology, std::int64_t rounds);
  // Before round 0: standby nodes are out and their neighbours leave them out.
  void start(InProcPeers& p);
  // The changes at the boundary before round r: leaves, pauses, returns, joins (in that
  // order, each by node id).
  void boundary(std::int64_t r, InProcPeers& p);
  // Who was out, from which round to which, and why (membership.json of the run).
  nlohmann::json record(std::int64_t rounds) const;
  bool active() const { return faults_.membership_changes(); }

 private:
  void leave(int k, std::int64_t r, InProcPeers& p);
  void pause(const MembershipEvent& e, InProcPeers& p);
  void back(int k, std::int64_t r, InProcPeers& p);
  void join(int k, std::int64_t r, InProcPeers& p);
  void note(int node, const char* what, std::int64_t from, std::int64_t until, double seconds);
  // Live mixing: each node whose live neighbours changed tells them its degree from r + 1.
  void announce_degrees(std::int64_t r, InProcPeers& p);

  const FaultOptions& faults_;
  const Topology& topology_;
  std::int64_t rounds_;
  struct Paused {
    int node;
    std::int64_t round;  // its first round out
    double back_s;       // simulated time it is back at
    double out_s;        // simulated time it went out at
  };
  std::vector<Paused> paused_;
  nlohmann::json events_ = nlohmann::json::array();
  std::vector<std::vector<int>> announced_;  // per node: the live neighbours last announced
};

}  // namespace rumor::run
