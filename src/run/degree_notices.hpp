#pragma once
// Live degrees for live mixing over TCP (elastic membership; Method::use_live_mixing). At
// each round boundary a node whose set of live neighbours changed tells each of them its new
// degree from the next round on (MessageKind::kDegree), ahead of its gossip of this round on
// the same connection: a neighbour has it by its next boundary, so both ends of every edge
// use the same degrees, and hence the same weight, in every round.
#include <cstdint>
#include <vector>

#include "rumor/net/transport.hpp"
#include "rumor/run/peer.hpp"

namespace rumor::run {

// Each node's live degree at the start: its neighbours that are not standby.
std::vector<int> initial_live_degrees(const Topology& topology);

class DegreeNotices {
 public:
  DegreeNotices(Peer& peer, net::Transport& transport) : peer_(peer), t_(transport) {}
  // The boundary before round r: takes the neighbours' notices, then announces this node's
  // degree from round r + 1 when its live neighbours changed.
  void boundary(std::int64_t r);

 private:
  Peer& peer_;
  net::Transport& t_;
  std::vector<int> announced_;  // the live neighbours last announced
  bool first_ = true;
};

}  // namespace rumor::run
