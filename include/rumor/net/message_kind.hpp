#pragma once
// Every kind of message rumor sends, in one place. The values are on the wire (the frame
// header's `kind`): never renumber one, only add. A multi-stage exchange (the ring
// all-reduce) sends its stage in Message::stage, not as an offset of the kind.
#include <cstdint>
#include <string>

namespace rumor::net {

enum class MessageKind : std::uint32_t {
  kGossip = 1,           // a method's payload (model, compressed update, samples)
  kBarrier = 2,          // control ring: start/stop barrier token
  kAverage = 3,          // control ring: exact-average traffic
  kStop = 4,             // data link: stop notice to a neighbour (on_peer_failure continue)
  kPeerDown = 5,         // data link: the sender leaves the receiver out from `round` on
  kPairRequest = 6,      // asynchronous pairwise averaging: the requester's model
  kPairReply = 7,        // the average, kept by both ends
  kPairBusy = 8,         // the neighbour is in another exchange: ask again
  kPairDone = 9,         // the sender finished its steps (it still serves requests)
  kBenchRelease = 17,    // `rumor bench net`: barrier release
  kBenchStep = 18,       // `rumor bench net`: one timed round
  kAllreduce = 116,      // the allreduce method's ring exchange
  kRejoinRequest = 216,  // a restarted peer asks a neighbour to let it back in
  kRejoinOffer = 217,    // the neighbour's answer: round, model or push-sum share
  kRejoinConfirm = 218,  // the restarted peer confirms the round it starts at
  kNoAverage = 226,      // control ring: a node is gone, exact averages are off
  kAverageResume = 227,  // control ring: every node is back, exact averages resume at `round`
  kLeave = 228,          // data link: the sender leaves the run after round `round`
  kBye = 229,            // data link: a leaving node's hand-over (push-sum mass), its last word
  kDegree = 230,         // data link: the sender's live degree from round `round` (live mixing)
  kEvalAverage = 1116,   // control ring: the exact average taken on evaluation rounds
  kStopBarrier = 2116,   // control ring: the all-node barrier after the last round
};

// True for the values above; a frame with any other kind is a protocol error.
bool known_kind(std::uint32_t kind);
// "gossip", "rejoin-offer", ...; "kind N" for an unknown value.
std::string to_string(MessageKind kind);

}  // namespace rumor::net
