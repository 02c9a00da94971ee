#pragma once
// The rejoin hand-over over TCP (on_peer_failure continue): a restarted peer, or a live one
// whose link dropped and came back, is let back into the mixing edge by edge. Round
// agreement is the hard part: the peers run on at rounds that differ by a few, and nobody
// may wait for a message the other side will never send.
//
// One hand-over on the edge between an asker j (the peer coming back) and a neighbour i:
//   1. j sends a request (Method::rejoin_request) tagged with a fresh nonce.
//   2. i takes it at its next round boundary r: it answers with an offer (Method::
//      rejoin_offer: its model / push-sum mass unless j has its own state), keeps j out of
//      the mixing, and pauses at that boundary for j's confirm, for at most confirm_wait.
//   3. j takes the offer (its mass is j's from now on) and confirms the round u from which
//      the edge is up: a restarted peer collects the offers for at most offer_wait (less
//      than confirm_wait: so the confirm reaches a neighbour still paused) and confirms
//      u = s = max r to all, then runs rounds s, s+1, ...; a running peer confirms
//      u = max(r, its next round) at its next boundary.
//   4. i marks j up from u (and runs its rounds r .. u-1 without it); both sides send and
//      expect the same rounds from u on.
// What arrives out of time is settled at a later boundary, never waited for:
//   - a late offer (j has started, or asked again since) is taken and confirmed at j's next
//     boundary; an offer of no request of j's current life is declined, and i takes the
//     handed mass back (Method::rejoin_declined): push-sum mass is never lost in transit;
//   - a late confirm (i ran past u without j) is refused: j leaves i out again, and the
//     edge is asked for again later; a confirm of no offer pending here is stale: ignored;
//   - an edge down on a live peer whose link is up is asked for again (readmission), at
//     most once per retry interval; never a peer left out for refused messages;
//   - two neighbours that ask each other at once: the lower id's request stands, the higher
//     id drops its own and answers (a starting peer answers once it has started).
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "rumor/gossip/driver.hpp"
#include "rumor/gossip/method.hpp"
#include "rumor/net/transport.hpp"
#include "rumor/run/peer.hpp"

namespace rumor::run {

class Rejoin {
 public:
  using Clock = std::chrono::steady_clock;
  struct Options {
    std::chrono::milliseconds offer_wait{2000};    // a starting peer collects offers this long
    std::chrono::milliseconds confirm_wait{4000};  // an offering neighbour pauses this long
    std::chrono::milliseconds retry{4000};         // between readmission requests on an edge
    std::chrono::milliseconds poll{20};            // one wait for a message
    // false (tests): never block; the caller models the pause with waiting() and calls
    // serve() again, and calls start_rejoin() / finish_rejoin() itself.
    bool pause = true;
    std::function<Clock::time_point()> now = [] { return Clock::now(); };
    std::uint64_t nonce_seed = 0;  // 0: drawn at start (a restarted peer's nonces are new)
    // An edge agreed up from a round more than this past this node's means it was left
    // behind (paused, or cut off, while the others ran on): it continues at that round even
    // with neighbours it has not yet heard left it out. The transport's max_rounds_ahead:
    // from further behind it could not take their gossip. 0: only when every neighbour is out.
    std::int64_t left_behind = 0;
  };
  struct Endpoint {
    gossip::Method* method = nullptr;
    net::Transport* transport = nullptr;
    gossip::Traffic* traffic = nullptr;
    const Topology* topology = nullptr;
    int self = 0;
    std::int64_t rounds = 0;  // of the run
  };

  Rejoin(const Endpoint& e, Options o);
  // A peer's endpoint, waits from the round timeout; `left_behind` as in Options.
  Rejoin(Peer& peer, net::Transport& transport, std::chrono::milliseconds timeout,
         std::int64_t left_behind = 0);

  // A restarted peer (steps 1 and 3): returns the round it starts at. Throws ProtocolError
  // when no neighbour answers.
  std::int64_t rejoin(bool from_checkpoint);
  // rejoin() in two steps: the requests; then the offers that came, confirmed.
  void start_rejoin(bool from_checkpoint);
  std::int64_t finish_rejoin(bool from_checkpoint);
  // The boundary before round r on a running peer: settles every hand-over message that
  // came, asks again for edges down on live links (unless `readmit` is false), and pauses for
  // the confirms of the offers it made here. `hold`: first wait up to hold->second for a
  // request from peer hold->first (a scheduled restart rejoins at a fixed round).
  // Returns the neighbours whose hand-over moved (their down notices are settled by it).
  std::vector<int> serve(std::int64_t r,
                         std::optional<std::pair<int, std::chrono::milliseconds>> hold = {},
                         bool readmit = true);

  // True while a hand-over with `peer` is under way (asked, offered, or agreed, not yet up).
  bool pending(int peer) const;
  // True while an offer made at boundary r waits for its confirm (the node pauses there).
  bool waiting(std::int64_t r) const;
  // A peer let back in from a later round than its own with every neighbour out, or from
  // more than Options::left_behind rounds on (it was paused, or cut off, while the others
  // ran on): the round it continues at, once.
  std::optional<std::int64_t> take_jump() { return std::exchange(jump_, std::nullopt); }
  // Readmission asks for the neighbours' model rather than keeping this peer's own state
  // (it was out too long); a restarted peer without a checkpoint always does.
  void take_models(bool on) { take_models_ = on; }
  // Never readmit `peer` (left out for refused messages).
  void bar(int peer) { barred_.insert(peer); }

  struct Counters {
    std::uint64_t offers = 0, stale_confirms = 0, declined_offers = 0, refused_confirms = 0,
                  late_offers = 0, readmit_requests = 0;
  };
  const Counters& counters() const { return counts_; }

 private:
  struct Ask {
    std::uint64_t nonce;
    bool starting;            // asked by a starting peer (its request stands in a crossing)
    Clock::time_point until;  // asked again after this
  };
  struct Offered {
    int peer;
    std::int64_t round;
    net::Message offer;  // as sent: what a decline takes back
    Clock::time_point until;
  };
  void handle(net::Message m, std::int64_t r);
  void on_request(net::Message req, std::int64_t r);
  void on_offer(net::Message offer, std::int64_t r);
  void on_confirm(const net::Message& confirm, std::int64_t r);
  void on_refused(int peer, std::uint64_t nonce, std::int64_t r);
  bool isolated() const;
  // The edge comes up at round u past this node's round r: continue there when left behind.
  void maybe_skip(std::int64_t u, std::int64_t r);
  void maybe_skip_behind(std::int64_t u, std::int64_t r);
  void skip_to(std::int64_t u);
  void answer(const net::Message& req, std::uint64_t nonce, std::int64_t r);
  // `r`: this node's round (a readmission), or -1 (a starting peer has none yet).
  void ask(int peer, std::int64_t r = -1);
  void confirm(int peer, std::uint64_t nonce, std::int64_t u, double status);
  void come_up(int peer, std::int64_t u, std::int64_t r);
  void drop_old_notices(int peer);
  void readmit(std::int64_t r);
  void wait_confirms(std::int64_t r);
  bool take_next(std::int64_t r, std::chrono::milliseconds wait);
  std::uint64_t next_nonce();

  Endpoint e_;
  Options o_;
  bool starting_ = false;
  bool fresh_life_ = false;   // restarted without a checkpoint: unsynced edges ask for a model
  bool take_models_ = false;  // take_models()
  std::optional<std::int64_t> jump_;
  std::set<int> synced_;                    // edges handed over in this life
  std::map<int, std::uint64_t> confirmed_;  // the last nonce confirmed to each neighbour
  std::uint64_t nonce_ = 0;
  std::map<int, Ask> asks_;  // requests this node sent, unanswered
  // Offers this node made, unconfirmed, by (peer, the request's nonce).
  std::map<std::pair<int, std::uint64_t>, Offered> offers_;
  std::map<int, std::int64_t> up_at_;    // agreed: the round the edge comes up
  std::vector<net::Message> deferred_;   // requests a starting peer answers once started
  std::vector<net::Message> collected_;  // offers a starting peer took
  std::map<int, Clock::time_point> retry_at_;
  std::set<int> barred_, moved_;
  Counters counts_;
};

// Waits up to `timeout` for a data-link message of `kind` from `sender`, giving up after
// the link has been down a second.
std::optional<net::Message> take_data(net::Transport& t, int sender, net::MessageKind kind,
                                      std::chrono::milliseconds timeout);

}  // namespace rumor::run
