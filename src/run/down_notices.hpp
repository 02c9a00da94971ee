#pragma once
// Agreement on "down" between the two ends of a data link (TCP, on_peer_failure continue).
//
// The two ends of a link can see it differently: a connection taken over by another holder
// of the run secret is up on one side and down on the other, and a peer whose messages were
// refused network.max_rejects times is left out by the one side that counted them. So a
// node never leaves a neighbour out silently: it sends it a down notice naming the round
// from which it leaves it out, and the neighbour does the same, from that round or its
// current one (whichever is later), at its next round boundary; while it waits for the
// sender's messages in a round, the notice ends the wait at once. Nobody waits for a peer
// that has dropped it, however the messages are timed.
//
// A notice can be lost with the connection that carried it (taken over, reset): it goes
// again after every reconnect of that link while the peer stays down here (cheap: a header
// and no payload). A restarted peer drops the notices that came before its rejoin offers
// (rejoin.cpp): they were meant for its earlier life.
#include <cstdint>
#include <map>
#include <string>

#include "rumor/gossip/method.hpp"
#include "rumor/net/transport.hpp"

namespace rumor::run {

class DownNotices {
 public:
  // Why a node left the receiver out (scalars[0] of the notice).
  enum class Reason { kLinkGone = 1, kRefused = 2, kTold = 3 };

  DownNotices(gossip::Method& method, net::Transport& transport) : method_(method), t_(transport) {}

  // Leaves neighbour j out of the mixing from round `from` (unless it already is) and
  // tells it; `why` is logged.
  void leave_out(int j, std::int64_t from, Reason reason, const std::string& why);
  // The boundary before round r: applies the notices that came, and tells again the
  // neighbours whose link reconnected since they were told.
  void boundary(std::int64_t r);
  // While waiting in a round: true once j's notice has come (applied at the next boundary).
  bool told_by(int j);
  // j is rejoining (rejoin.hpp): it is no longer left out by a notice.
  void forget(int j) { told_.erase(j), sent_.erase(j); }

 private:
  void tell(int j, std::int64_t from, Reason reason);
  void apply(const net::Message& notice, std::int64_t r);

  gossip::Method& method_;
  net::Transport& t_;
  struct Told {
    std::int64_t from;
    Reason reason;
    std::uint64_t reconnects;  // of j's data link when last told
  };
  std::map<int, Told> sent_;          // neighbours this node left out and told
  std::map<int, net::Message> told_;  // notices taken during a round, not applied yet
};

}  // namespace rumor::run
