#include "membership.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "degree_notices.hpp"
#include "rumor/common/error.hpp"
#include "rumor/common/log.hpp"
#include "rumor/gossip/driver.hpp"

namespace rumor::run {

int rejoin_inprocess(InProcPeers& p, const Topology& topology, int k, std::int64_t round,
                     bool own_state) {
  Peer& me = *p.peers[k];
  me.sim_clock().inbox.clear();
  for (int drained = 0; drained < 1 << 20; ++drained) {  // bounded
    // what reached the node while it was out is gone with that time
    if (!p.transports[k]->take(net::MessageFilter{}, std::chrono::milliseconds(0))) break;
  }
  int offers = 0;
  for (int j : topology.peers(k)) {
    if (!p.alive[j]) {
      me.method().set_peer_down(j, round);  // it joins, or comes back, through its own request
      continue;
    }
    Peer& nb = *p.peers[j];
    auto request = me.method().rejoin_request(j, own_state);
    request.sender = k;
    me.traffic().add_sent(request);
    nb.traffic().add_recv(request);
    auto offer = gossip::answer_rejoin(nb.method(), request, round, nb.traffic());
    if (!offer) continue;
    offer->sender = j;
    nb.traffic().add_sent(*offer);
    me.traffic().add_recv(*offer);
    if (!gossip::accept_rejoin(me.method(), *offer, me.rounds(), me.traffic())) continue;
    me.method().set_peer_up(j, round);
    // The node starts when its neighbours are (in simulated time).
    me.sim_clock().now_s = std::max(me.sim_clock().now_s, nb.sim_clock().now_s);
    ++offers;
  }
  if (offers == 0)
    throw Error("node " + std::to_string(k) + " cannot (re)join before round " +
                std::to_string(round + 1) + ": none of its neighbours is running");
  me.follow_schedule(round);
  me.log("back in the run from round " + std::to_string(round + 1) + " with " +
         std::to_string(offers) + " neighbour offer(s)" + (own_state ? " (own state)" : ""));
  return offers;
}

Membership::Membership(const FaultOptions& faults, const Topology& topology, std::int64_t rounds)
    : faults_(faults), topology_(topology), rounds_(rounds) {}

void Membership::start(InProcPeers& p) {
  const auto initial = initial_live_degrees(topology_);
  for (auto& peer : p.peers) peer->method().use_live_mixing(initial);
  announced_.resize(p.peers.size());
  for (int i = 0; i < topology_.size(); ++i)
    for (int j : topology_.peers(i))
      if (!topology_.standby(j)) announced_[static_cast<std::size_t>(i)].push_back(j);
  for (int s : faults_.standby) {
    p.alive[s] = 0;
    for (int j : topology_.peers(s)) p.peers[j]->method().set_peer_down(s, 0);
  }
}

void Membership::note(int node, const char* what, std::int64_t from, std::int64_t until,
                      double seconds) {
  nlohmann::json e = {{"node", node}, {"event", what}, {"out_from_round", from}};
  e["back_at_round"] = until >= 0 ? nlohmann::json(until) : nlohmann::json(nullptr);
  e["rounds_out"] = (until >= 0 ? until : rounds_) - from;
  if (seconds > 0) e["seconds_out"] = seconds;
  events_.push_back(e);
}

void Membership::boundary(std::int64_t r, InProcPeers& p) {
  for (const auto& e : faults_.leaves)
    if (e.round == r && p.alive[e.node]) leave(e.node, r, p);
  for (const auto& e : faults_.pauses)
    if (e.round == r && p.alive[e.node]) pause(e, p);
  for (std::size_t i = 0; i < paused_.size();) {
    double now = -1;  // the latest clock of its running neighbours
    for (int j : topology_.peers(paused_[i].node))
      if (p.alive[j]) now = std::max(now, p.peers[j]->sim_clock().now_s);
    if (paused_[i].round < r && now >= paused_[i].back_s) {
      back(static_cast<int>(i), r, p);
      paused_.erase(paused_.begin() + static_cast<std::ptrdiff_t>(i));
    } else {
      ++i;
    }
  }
  for (const auto& e : faults_.joins)
    if (e.round == r && !p.alive[e.node]) join(e.node, r, p);
  announce_degrees(r, p);
}

void Membership::announce_degrees(std::int64_t r, InProcPeers& p) {
  for (int i = 0; i < topology_.size(); ++i) {
    if (!p.alive[i]) continue;
    gossip::Method& m = p.peers[i]->method();
    std::vector<int> live;
    for (int j : topology_.peers(i))
      if (!m.peer_is_down(j)) live.push_back(j);
    auto& last = announced_[static_cast<std::size_t>(i)];
    if (live == last) continue;
    last = live;
    const int d = static_cast<int>(live.size());
    m.note_degree(i, r + 1, d);
    for (int j : live)
      if (p.alive[j]) p.peers[j]->method().note_degree(i, r + 1, d);
  }
}

void Membership::leave(int k, std::int64_t r, InProcPeers& p) {
  Peer& me = *p.peers[k];
  for (auto& o : me.method().leave(r)) {
    o.message.sender = k;
    me.traffic().add_sent(o.message);
    Peer& nb = *p.peers[o.to];
    nb.traffic().add_recv(o.message);
    gossip::accept_leave(nb.method(), o.message, r, nb.rounds(), nb.traffic());
  }
  // Every neighbour, running or out for now, leaves it out (a paused one when it is back).
  for (int j : topology_.peers(k)) p.peers[j]->method().set_peer_down(k, r);
  p.alive[k] = 0;
  me.log("left the run before round " + std::to_string(r + 1) +
         " (faults.leave), handing its state to its neighbours");
  log::info("node ", k, " left the run before round ", r + 1);
  note(k, "left", r, -1, 0);
}

void Membership::pause(const MembershipEvent& e, InProcPeers& p) {
  Peer& me = *p.peers[e.node];
  const double now = me.sim_clock().now_s;
  paused_.push_back({e.node, e.round, now + e.seconds, now});
  p.alive[e.node] = 0;
  for (int j : topology_.peers(e.node))
    if (p.alive[j]) p.peers[j]->method().set_peer_down(e.node, e.round);
  me.log("paused before round " + std::to_string(e.round + 1) + " for " +
         std::to_string(e.seconds) + " simulated seconds (faults.pause)");
  log::info("node ", e.node, " paused before round ", e.round + 1);
}

void Membership::back(int i, std::int64_t r, InProcPeers& p) {
  const Paused& q = paused_[static_cast<std::size_t>(i)];
  // Push-sum keeps its own state whatever the lag: its mass is part of the total.
  const bool own =
      r - q.round <= faults_.max_lag_rounds || !std::isnan(p.peers[q.node]->method().weight());
  p.alive[q.node] = 1;
  rejoin_inprocess(p, topology_, q.node, r, own);
  log::info("node ", q.node, " is back before round ", r + 1, " after ", r - q.round, " rounds out",
            own ? "" : " (took its neighbours' model: faults.max_lag_rounds)");
  note(q.node, own ? "paused" : "paused, took neighbours' model", q.round, r,
       p.peers[q.node]->sim_clock().now_s - q.out_s);
}

void Membership::join(int k, std::int64_t r, InProcPeers& p) {
  p.alive[k] = 1;
  rejoin_inprocess(p, topology_, k, r, false);
  log::info("node ", k, " joined before round ", r + 1);
  note(k, "joined", 0, r, 0);
}

nlohmann::json Membership::record(std::int64_t rounds) const {
  nlohmann::json out = events_;
  for (const auto& q : paused_) {
    nlohmann::json e = {{"node", q.node},
                        {"event", "paused, not back"},
                        {"out_from_round", q.round},
                        {"back_at_round", nullptr},
                        {"rounds_out", rounds - q.round}};
    out.push_back(e);
  }
  return {{"events", out}};
}

}  // namespace rumor::run
