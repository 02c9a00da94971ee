#pragma once
// One link of a TCP transport (one peer, one plane) and the frames queued on it (internal).
//
// A Link is created by start() and fixed until the transport is destroyed. The part under
// `mu` (send queue, counters, up/down) is shared by the owner's threads (send, stats) and the
// network thread; the rest belongs to the network thread only.
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "asio.hpp"
#include "rumor/net/transport.hpp"
#include "wire.pb.h"

namespace rumor::net {

class Session;
class ShmLink;

// One frame waiting to be written: encoded prefix + header, then the payload from the
// caller's buffer (never copied).
struct Outgoing {
  std::vector<std::uint8_t> head;
  Payload payload;
  bool app = false;  // an application message (counted in msgs_sent / drops)
  std::size_t bytes() const { return head.size() + payload.size(); }
};

inline wire::LinkKind to_wire(LinkKind k) {
  return k == LinkKind::kData ? wire::LINK_DATA : wire::LINK_CONTROL;
}
inline LinkKind from_wire(wire::LinkKind k) {
  return k == wire::LINK_CONTROL ? LinkKind::kControl : LinkKind::kData;
}

struct Link {
  Link(asio::io_context& ioc, int p, LinkKind k, bool d)
      : peer(p), kind(k), dialer(d), retry(ioc) {}
  const int peer;
  const LinkKind kind;
  const bool dialer;  // true: this node dials (lower id dials)
  tcp::endpoint endpoint;
  std::string address;  // host:port, for messages

  mutable std::mutex mu;  // guards everything below up to the network-thread-only part
  std::deque<Outgoing> queue;
  std::size_t queued_bytes = 0;
  std::size_t writing = 0;  // messages taken by a write that has not completed (flush)
  std::uint64_t next_seq = 0;
  bool up = false;
  bool ever_up = false;
  // Dialled (dialer) and waited for (wait_connected). False for a data link opened on
  // demand that nothing has asked for yet: it only accepts the peer's dial.
  bool wanted = true;
  bool wake_posted = false;
  // The active shared-memory path of this link, if any: send() writes into it directly.
  std::shared_ptr<ShmLink> shm;
  LinkStats stats;
  std::string last_error;

  // Network thread only.
  std::shared_ptr<Session> session;
  asio::steady_timer retry;
  std::chrono::milliseconds backoff{0};
  bool deadline_reported = false;
  bool shm_reported = false;  // why this link stays on TCP was logged
};

}  // namespace rumor::net
