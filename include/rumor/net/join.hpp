#pragma once
// `rumor node --join HOST:PORT`: a new peer asks a running node of a run for the run's
// settings. The joiner dials the node's own port and runs the handshake's join variant (no
// run id, no link; HMAC challenge-response both ways with the run secret): it proves it holds
// the secret before the node sends anything about the run, and the node proves it too before
// the joiner trusts what it sends. Then the node writes its settings (JSON, as
// run/join_settings.hpp makes them) and closes. A refused request is counted on the node
// (TransportStats::refused) and logged there.
#include <chrono>
#include <cstddef>
#include <string>

namespace rumor::net {

// The most settings bytes a joiner takes (a run's config with its topology written out).
inline constexpr std::size_t kMaxJoinSettingsBytes = std::size_t{16} << 20;

struct JoinAnswer {
  int node = -1;         // the node that answered
  std::string settings;  // its run's settings: bytes from the network, not checked yet
};

// Dials host:port (again every 200 ms while nothing listens there, until `timeout` has
// passed), authenticates with `secret` and returns what the node hands out. Throws
// ProtocolError naming the address and what went wrong (refused, wrong secret, a frame that
// does not parse or is larger than kMaxJoinSettingsBytes, timeout).
JoinAnswer request_join_settings(const std::string& host, int port, const std::string& secret,
                                 std::chrono::milliseconds timeout);

// Whether something accepts TCP connections at host:port within `timeout`.
bool address_answers(const std::string& host, int port, std::chrono::milliseconds timeout);

}  // namespace rumor::net
