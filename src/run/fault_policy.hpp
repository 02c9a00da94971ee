#pragma once
// Fault policy shared by every driver: what a peer does about neighbours that misbehave.
#include <cstdint>
#include <vector>

#include "rumor/gossip/driver.hpp"
#include "rumor/gossip/method.hpp"

namespace rumor::run {

// A neighbour whose messages the gate refused `max_rejects` times (network.max_rejects) is
// left out of the mixing from the round after `round` on, as if it were down (the method
// keeps its weight at home). Returns the peers left out by this call. Methods that cannot
// leave a peer out (allreduce) throw ProtocolError naming it.
std::vector<int> leave_out_refused(gossip::Method& method, const gossip::Traffic& traffic,
                                   const std::vector<int>& neighbours, std::int64_t round,
                                   std::uint64_t max_rejects);

}  // namespace rumor::run
