#pragma once
// Graceful leave over TCP (elastic membership, on_peer_failure continue). A node asked to
// leave (SIGTERM, faults.leave) before round R:
//   1. at its boundary before round R-1 it tells each live neighbour "I leave before R"
//      (MessageKind::kLeave), ahead of its gossip of round R-1 on the same connection;
//   2. it runs round R-1, then hands what it holds to its live neighbours, one goodbye each
//      (Method::leave, MessageKind::kBye), and ends its run.
// A neighbour has the notice by its boundary before round R (it came before the leaver's
// gossip of round R-1, which the neighbour waited for), so it never sends the leaver a share
// of round R: there it takes the goodbye (waiting for it at most the round timeout, less
// once the link is down), accepts it through the gate (gossip::accept_leave) and leaves the
// leaver out from round R. Push-sum running sums in the goodbye settle whatever was still
// on the way in either direction, so no mass is lost even when a notice comes late.
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <vector>

#include "rumor/net/transport.hpp"
#include "rumor/run/peer.hpp"

namespace rumor::run {

class GracefulLeave {
 public:
  GracefulLeave(Peer& peer, net::Transport& transport, std::chrono::milliseconds timeout)
      : peer_(peer), t_(transport), timeout_(timeout) {}

  // This node leaves before round `round` (it runs the rounds before it). The earliest
  // request stands.
  void request(std::int64_t round);
  bool requested() const { return leave_at_.has_value(); }
  // The boundary before round r: announces this node's leave one round ahead, and applies
  // the neighbours' notices and goodbyes. Returns the neighbours out from round r.
  std::vector<int> boundary(std::int64_t r);
  // After round r: true when this node leaves now (its goodbyes are sent).
  bool leaves_after(std::int64_t r);
  // While waiting in round r: true once neighbour j said it leaves before round r or earlier.
  bool leaving(int j, std::int64_t r);

 private:
  void take_notices();
  void apply_goodbye(int j, std::int64_t r);

  Peer& peer_;
  net::Transport& t_;
  std::chrono::milliseconds timeout_;
  std::optional<std::int64_t> leave_at_;
  bool announced_ = false;
  std::map<int, std::int64_t> notices_;  // neighbour -> its first round out
};

}  // namespace rumor::run
