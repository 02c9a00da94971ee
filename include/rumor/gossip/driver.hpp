#pragma once
// Drivers that run exchanges (methods, all-reduces) over a transport.
//  - run_blocking: one peer, one thread; waits on the mailbox (TCP, one process per node).
//  - run_phased:   many peers in one process on a thread pool, one stage at a time for
//                  all of them: produce for every peer, then absorb for every peer. Never
//                  blocks inside a peer, so 256 peers run on 2 threads.
#include <chrono>
#include <cstdint>
#include <vector>

#include "rumor/common/thread_pool.hpp"
#include "rumor/gossip/method.hpp"
#include "rumor/net/transport.hpp"

namespace rumor::gossip {

// Traffic of one peer, as the runtime reports it (cumulative).
struct Traffic {
  std::uint64_t bytes_sent = 0, bytes_recv = 0, msgs_sent = 0, msgs_recv = 0;
  void add_sent(const net::Message& m);
  void add_recv(const net::Message& m);
};

struct PeerIo {
  Exchange* exchange = nullptr;
  net::Transport* transport = nullptr;
  Traffic* traffic = nullptr;  // where this exchange's bytes are counted
};

// Runs every stage of `round` for one peer; waits up to `timeout` for each expected message
// and throws ProtocolError naming the node, the peer and the round when one does not come.
void run_blocking(const PeerIo& peer, std::int64_t round, std::chrono::milliseconds timeout);

// Runs every stage of `round` for all peers (peers[i] may be skipped with a null exchange).
// All exchanges must have the same number of stages in a round (they are instances of one
// method or one all-reduce). `timeout` bounds waits for messages a link model delays.
void run_phased(const std::vector<PeerIo>& peers, std::int64_t round, ThreadPool& pool,
                std::chrono::milliseconds timeout);

}  // namespace rumor::gossip
