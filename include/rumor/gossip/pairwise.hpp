#pragma once
// The pairwise-exchange protocol of asynchronous methods (adpsgd): no global rounds; after
// each local step a node averages with one neighbour, atomically. Drivers (the in-process
// event loop in simulated time, the TCP loop in real time) move the messages:
//
//   after a local step   start(step) -> a request carrying the model to one neighbour drawn
//                        at random; the node is locked until the answer comes
//   request received     serve(request) -> the reply: the average, which the server keeps
//                        (x_j <- (x_i + x_j) / 2) and the requester takes, or busy
//   answer received      finish(answer) -> true: averaged, or given up after
//                        method.max_tries busy answers; false: start() again
//   a node is done       it tells its neighbours (pair_done_message) and serves them until
//                        they are all done (they may still ask it)
//
// Why it cannot deadlock: serving never waits, so no node waits on a node that waits on
// it. A locked node answers busy at once, except to the neighbour it is itself asking (a
// crossing): then exactly one of the two serves, the one crossing_server() names, and the
// other, locked on it too, refuses the crossing request; so two nodes picking each other
// still average once. Every wait of a driver is bounded (network.round_timeout_s).
#include <cstdint>
#include <optional>

#include "rumor/gossip/method.hpp"

namespace rumor::gossip {

class Pairwise {
 public:
  virtual ~Pairwise() = default;
  // The request of local step `step` (nullopt: no neighbour left to ask; the step is done).
  virtual std::optional<Outgoing> start(std::int64_t step) = 0;
  // The answer to a request that passed the gate: reply with the average, or busy.
  virtual net::Message serve(const net::Message& request) = 0;
  // The answer to a request refused by the gate (or unanswerable): busy, nothing changes.
  virtual net::Message busy(const net::Message& request) = 0;
  // The answer to this node's request (reply or busy). True: this step's exchange is over.
  virtual bool finish(const net::Message& answer) = 0;
  // No answer within the deadline: the step goes on without averaging (counted).
  virtual void give_up() = 0;
  virtual bool locked() const = 0;
  // The neighbour asked while locked (-1 when not locked).
  virtual int partner() const = 0;
};

// Which of two nodes that asked each other serves the other's request: a coin seeded by the
// run seed, the pair and both requests' steps, so both ends compute the same answer from
// what they hold (their own request and the one they received), and neither the lower nor
// the higher id is favoured. Returns a or b.
int crossing_server(std::uint64_t seed, int a, std::int64_t a_step, int b, std::int64_t b_step);

// The end notice of a node that finished its steps (it keeps serving until its neighbours
// are done too).
net::Message pair_done_message(std::int64_t steps);
// True for the message kinds of the pairwise protocol.
bool is_pairwise_kind(net::MessageKind kind);
// The gate for a message the drivers take: the method's check(), with an exception it
// throws as a refusal ("check failed").
Refusal check_message(Exchange& method, const net::Message& m);

}  // namespace rumor::gossip
