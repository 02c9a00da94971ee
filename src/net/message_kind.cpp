#include "rumor/net/message_kind.hpp"

namespace rumor::net {
namespace {

struct Named {
  MessageKind kind;
  const char* name;
};

constexpr Named kNames[] = {
    {MessageKind::kGossip, "gossip"},
    {MessageKind::kBarrier, "barrier"},
    {MessageKind::kAverage, "average"},
    {MessageKind::kStop, "stop"},
    {MessageKind::kPeerDown, "peer-down"},
    {MessageKind::kPairRequest, "pair-request"},
    {MessageKind::kPairReply, "pair-reply"},
    {MessageKind::kPairBusy, "pair-busy"},
    {MessageKind::kPairDone, "pair-done"},
    {MessageKind::kBenchRelease, "bench-release"},
    {MessageKind::kBenchStep, "bench-step"},
    {MessageKind::kAllreduce, "allreduce"},
    {MessageKind::kRejoinRequest, "rejoin-request"},
    {MessageKind::kRejoinOffer, "rejoin-offer"},
    {MessageKind::kRejoinConfirm, "rejoin-confirm"},
    {MessageKind::kNoAverage, "no-average"},
    {MessageKind::kAverageResume, "average-resume"},
    {MessageKind::kLeave, "leave"},
    {MessageKind::kBye, "bye"},
    {MessageKind::kDegree, "degree"},
    {MessageKind::kEvalAverage, "eval-average"},
    {MessageKind::kStopBarrier, "stop-barrier"},
};

}  // namespace

bool known_kind(std::uint32_t kind) {
  for (const auto& n : kNames)
    if (static_cast<std::uint32_t>(n.kind) == kind) return true;
  return false;
}

std::string to_string(MessageKind kind) {
  for (const auto& n : kNames)
    if (n.kind == kind) return n.name;
  return "kind " + std::to_string(static_cast<std::uint32_t>(kind));
}

}  // namespace rumor::net
