#include "fault_policy.hpp"

#include "rumor/common/error.hpp"
#include "rumor/common/log.hpp"

namespace rumor::run {

std::vector<int> leave_out_refused(gossip::Method& method, const gossip::Traffic& traffic,
                                   const std::vector<int>& neighbours, std::int64_t round,
                                   std::uint64_t max_rejects) {
  std::vector<int> out;
  if (traffic.msgs_rejected < max_rejects) return out;
  for (int j : neighbours) {
    if (method.peer_is_down(j) || traffic.rejected_from(j) < max_rejects) continue;
    log::warn("peer ", j, ": ", traffic.rejected_from(j),
              " of its messages were refused (network.max_rejects ", max_rejects,
              "); leaving it out of the mixing from round ", round + 2);
    try {
      method.set_peer_down(j, round + 1);
    } catch (const Error& e) {
      throw ProtocolError("peer " + std::to_string(j) + " sent " +
                          std::to_string(traffic.rejected_from(j)) +
                          " messages that were refused, and method " + method.name() +
                          " cannot leave it out: " + e.what());
    }
    out.push_back(j);
  }
  return out;
}

}  // namespace rumor::run
