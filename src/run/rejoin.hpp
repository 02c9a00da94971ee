#pragma once
// The rejoin hand-over of a restarted peer over TCP (on_peer_failure continue). Round
// agreement is the hard part: the survivors run on, at rounds that differ by a few, and
// nobody may wait for a message the other side will never send.
//   1. The restarted peer j loads its own last checkpoint if it has one, connects, and
//      sends each neighbour with a live link a rejoin request (Method::rejoin_request).
//   2. A neighbour i sees the request at its next round boundary r_i, answers with an
//      offer (Method::rejoin_offer: its model / push-sum mass unless j has a checkpoint;
//      running sums or public copies so both ends agree), keeps j out of the mixing, and
//      pauses at that boundary until j confirms (bounded by the round timeout).
//   3. j accepts every offer, picks s = max_i r_i and confirms s to every neighbour that
//      offered; those not heard from stay down. j runs rounds s, s+1, ...
//   4. i runs its rounds r_i .. s-1 without j and marks j up from round s; from then on
//      both sides send and expect messages of the same rounds.
// Every wait is bounded (deadlines, link-down checks), so a peer that dies again, or a
// neighbour that dies mid-protocol, costs at most a timeout, never a deadlock.
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <utility>

#include "rumor/net/transport.hpp"
#include "rumor/run/peer.hpp"

namespace rumor::run {

class Rejoin {
 public:
  Rejoin(Peer& peer, net::Transport& transport, std::chrono::milliseconds timeout)
      : peer_(peer), t_(transport), timeout_(timeout) {}

  // Steps 1 and 3, on the restarted peer: returns the round it starts at. Throws
  // ProtocolError when no neighbour answers.
  std::int64_t rejoin(bool from_checkpoint);

  // Steps 2 and 4, on a neighbour, at the boundary before round `r`. `hold`: first wait up
  // to hold->second for a request from peer hold->first (a scheduled restart rejoins at a
  // fixed round, whatever the machine's speed).
  void serve(std::int64_t r, std::optional<std::pair<int, std::chrono::milliseconds>> hold = {});

  // True while `peer` is rejoining (offered, not yet back in the mixing).
  bool pending(int peer) const { return up_at_.count(peer) > 0; }

 private:
  void answer(const net::Message& request, std::int64_t r);
  Peer& peer_;
  net::Transport& t_;
  std::chrono::milliseconds timeout_;
  std::map<int, std::int64_t> up_at_;  // rejoining neighbours: the round they come back
};

// Waits up to `timeout` for a data-link message of `kind` from `sender`, giving up after
// the link has been down a second.
std::optional<net::Message> take_data(net::Transport& t, int sender, net::MessageKind kind,
                                      std::chrono::milliseconds timeout);

}  // namespace rumor::run
