#pragma once
// Peer sampling over TCP: a node's data links open the first round the schedule pairs it
// with a peer (either drawing the other) and then stay, instead of a full mesh at start.
// Both ends compute the same draws from the seed, so the lower id dials at once and the
// other end admits it; what is sent before the link is up waits in the link's queue.
#include <cstdint>
#include <vector>

#include "rumor/net/tcp.hpp"
#include "rumor/topology/topology.hpp"

namespace rumor::run {

class DemandLinks {
 public:
  // True when the run's data links open on demand: the topology samples peers and the
  // run stops on a peer failure (watching links, down notices and rejoins, which
  // on_peer_failure continue needs, talk to every neighbour: those runs keep the full mesh).
  static bool apply(const Topology& topology, bool keep_going);

  // Call before t.start(): sets the transport to open its data links on demand.
  DemandLinks(net::TcpTransport& t, const Topology& topology, int self);
  // Opens the links round `round` uses: to the peers this node draws, from those drawing it.
  void open(std::int64_t round);
  // Data links opened so far.
  int opened() const { return opened_; }

 private:
  void open_one(int peer);

  net::TcpTransport& t_;
  const Topology& topology_;
  int self_;
  std::vector<char> open_;  // per node id
  int opened_ = 0;
};

}  // namespace rumor::run
