#pragma once
// Drivers that run exchanges (methods, all-reduces) over a transport.
//  - run_blocking: one peer, one thread; waits on the mailbox (TCP, one process per node).
//  - run_phased:   many peers in one process on a thread pool, one stage at a time for
//                  all of them: produce for every peer, then absorb for every peer. Never
//                  blocks inside a peer, so 256 peers run on 2 threads.
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "rumor/common/thread_pool.hpp"
#include "rumor/gossip/method.hpp"
#include "rumor/net/transport.hpp"

namespace rumor::gossip {

// Traffic of one peer, as the runtime reports it (cumulative).
struct Traffic {
  std::uint64_t bytes_sent = 0, bytes_recv = 0, msgs_sent = 0, msgs_recv = 0;
  // Expected messages not waited for: arrived after the round's deadline (msgs_late), or
  // never within it (msgs_missed: lost, or the sender is gone).
  std::uint64_t msgs_late = 0, msgs_missed = 0;
  // Messages refused by the gate (Exchange::check), per sender and reason.
  std::uint64_t msgs_rejected = 0;
  std::map<int, std::map<std::string, std::uint64_t>> rejected;
  void add_sent(const net::Message& m);
  void add_recv(const net::Message& m);
  // Counts a refused message; logs the first of each (sender, reason) with its detail.
  void add_rejected(const net::Message& m, const Refusal& why);
  std::uint64_t rejected_from(int sender) const;
};

// Simulated time of one in-process peer (run_phased). The peer's clock advances by its
// modelled compute time (the runtime adds it) and, in each stage, to the arrival of the
// messages it waits for, at most `deadline_s` past the start of the wait. Messages carry
// their arrival time (net::Message::sim_time_s, stamped by the in-process link model) and
// count as arrived once the receiver's clock has reached it.
struct SimClock {
  double now_s = 0.0;
  double deadline_s = 60.0;
  std::vector<net::Message> inbox;  // taken from the transport, not handed to the method yet
};

struct PeerIo {
  Exchange* exchange = nullptr;
  net::Transport* transport = nullptr;
  Traffic* traffic = nullptr;  // where this exchange's bytes are counted
  SimClock* sim = nullptr;     // run_phased: simulated time when set
};

// The gate of the rejoin hand-over (src/run/rejoin.cpp). A neighbour's request or offer the
// method cannot use (rejoin_offer / rejoin_accept throw ProtocolError: wrong sizes, values
// that are not finite) is refused and counted in `traffic` like a gossip message check()
// refuses, instead of ending the run: the neighbour stays out of the mixing. An offer's round
// must lie in 0..last_round (the neighbour's round boundary).
std::optional<net::Message> answer_rejoin(Method& method, const net::Message& request,
                                          std::int64_t round, Traffic& traffic);
bool accept_rejoin(Method& method, const net::Message& offer, std::int64_t last_round,
                   Traffic& traffic);
// The gate of a leaving neighbour's goodbye: one the method cannot use (Method::accept_leave
// throws ProtocolError), or whose round is outside 0..last_round, is refused and counted in
// `traffic`; the neighbour is then left out of the mixing all the same (it is gone). The
// neighbour is out from max(bye.round, round).
bool accept_leave(Method& method, const net::Message& bye, std::int64_t round,
                  std::int64_t last_round, Traffic& traffic);

// Runs every stage of `round` for one peer; waits up to `timeout` for each expected message
// and throws ProtocolError naming the node, the peer and the round when one does not come.
void run_blocking(const PeerIo& peer, std::int64_t round, std::chrono::milliseconds timeout);

// How run_blocking waits in the TCP runtime when peers may be slow or gone.
struct WaitPolicy {
  // Longest wait for a stage's expected messages (one deadline for the whole stage).
  std::chrono::milliseconds deadline{60000};
  // true: a message missing at the deadline is an error naming the peer (on_peer_failure
  // stop); false: the round goes on without it (counted in Traffic::msgs_missed).
  bool fail_on_missing = true;
  // Tolerant waits stop early for a peer whose link has been down this long.
  std::chrono::milliseconds link_down_grace{1000};
  // Checked while waiting (every 50 ms): true ends the wait, what is missing counts as
  // missed (e.g. another node announced that this exchange cannot complete).
  std::function<bool()> give_up;
  // Checked like give_up, for the one sender waited for: true ends the wait for it (e.g. it
  // said it left this node out of the mixing).
  std::function<bool(int sender)> stop_waiting_for;
};

// The deadline of a round (TCP runtime): the timeout, or when adaptive `factor` times the
// median of the last 16 recorded rounds, within [floor, timeout] (the timeout until three
// rounds are known).
class RoundDeadline {
 public:
  explicit RoundDeadline(std::chrono::milliseconds timeout, bool adaptive = false,
                         double factor = 3.0, std::chrono::milliseconds floor = {})
      : timeout_(timeout), floor_(floor), factor_(factor), adaptive_(adaptive) {}
  bool adaptive() const { return adaptive_; }
  std::chrono::milliseconds timeout() const { return timeout_; }
  std::chrono::milliseconds next() const;
  void record(double round_seconds);

 private:
  std::chrono::milliseconds timeout_, floor_;
  double factor_;
  bool adaptive_;
  std::vector<double> recent_;
};

// The messages a peer stopped waiting for, so they are recognised when they come late:
// absorbed then if the exchange absorbs_early() (push-sum), else dropped; counted in
// Traffic::msgs_late either way.
struct LateMessages {
  struct Key {
    int sender;
    std::int64_t round;
    net::MessageKind kind;
    auto operator<=>(const Key&) const = default;
  };
  std::vector<Key> missed;
};

// Waits up to `timeout` for a message matching `f` (f.sender must be a peer), giving up
// early `link_down_grace` after the sender's link was seen down (up again by then or not:
// what was in flight is lost), or when `give_up` (optional) returns true.
std::optional<net::Message> take_or_give_up(net::Transport& t, const net::MessageFilter& f,
                                            std::chrono::milliseconds timeout,
                                            std::chrono::milliseconds link_down_grace,
                                            const std::function<bool()>& give_up = {});

// Tolerant run_blocking: returns the senders whose expected message did not come by the
// deadline (empty when all came); throws only when policy.fail_on_missing.
std::vector<int> run_blocking(const PeerIo& peer, std::int64_t round, const WaitPolicy& policy,
                              LateMessages& late);

// Runs every stage of `round` for all peers (peers[i] may be skipped with a null exchange).
// All exchanges must have the same number of stages in a round (they are instances of one
// method or one all-reduce). `timeout` bounds waits for messages a real-time link model
// delays. Peers with a SimClock run in simulated time and never wait in real time: an
// expected message that is lost, or arrives after the deadline, is not waited for (counted
// in Traffic::msgs_missed / msgs_late); a late one is absorbed when the receiver's clock
// reaches it if the exchange absorbs_early(), else dropped. Every peer's messages of a stage
// are sent before any peer takes, so a message is seen no earlier than the receiver's round
// it was sent in (a valid schedule: the receiver looked at its mailbox a little later).
// `first_sent`: every peer's stage-0 messages are already sent (send_first_stage, e.g. right
// after its local step: one pass over the pool a round fewer). `then(i)`, when set, runs for
// peer i right after its part of the last stage, in the same pass (in a pass of its own when
// the round has no stage): what a driver does next with each peer alone.
void run_phased(const std::vector<PeerIo>& peers, std::int64_t round, ThreadPool& pool,
                std::chrono::milliseconds timeout, bool first_sent = false,
                const std::function<void(std::size_t)>& then = {});
// Stages of `round`: the most any of the peers' exchanges has (0 when none communicates).
int phased_stages(const std::vector<PeerIo>& peers, std::int64_t round);
// One peer's stage-0 messages of `round`, as run_phased sends them.
void send_first_stage(const PeerIo& peer, std::int64_t round);

// Hands every message of the SimClock inbox (and the transport's data mailbox) that has
// arrived by `until_s` to an exchange that absorbs_early(), advancing the clock to the last
// arrival: what the peer receives after its last round (messages in flight delivered).
void sim_flush(const PeerIo& peer, std::int64_t round, double until_s);

}  // namespace rumor::gossip
