// A connection whose network-thread handler throws, or whose frames break the protocol after
// the handshake, is closed alone: the node's other links keep working and a counter says why.
#include <doctest/doctest.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <stdexcept>

#include "net_fixture.hpp"
#include "raw_peer.hpp"

using namespace rumor;
using namespace rumor::net;
using namespace rumor::net::testing;

namespace {

// Records a node's link events as they happen, so a test can wait for one (bounded).
class EventLog {
 public:
  void record(const LinkEvent& e) {
    {
      std::lock_guard lock(mu_);
      events_.push_back(e);
    }
    cv_.notify_all();
  }
  // The index of the first event matching `pred` at or after `from`, waiting up to kWait.
  std::optional<std::size_t> wait_for(const std::function<bool(const LinkEvent&)>& pred,
                                      std::size_t from = 0) {
    std::unique_lock lock(mu_);
    std::optional<std::size_t> found;
    cv_.wait_for(lock, kWait, [&] {
      for (std::size_t i = from; i < events_.size() && !found; ++i)
        if (pred(events_[i])) found = i;
      return found.has_value();
    });
    return found;
  }
  LinkEvent at(std::size_t i) const {
    std::lock_guard lock(mu_);
    return events_.at(i);
  }
  std::size_t count(LinkEventType type, int peer) const {
    std::lock_guard lock(mu_);
    std::size_t n = 0;
    for (const auto& e : events_) n += e.type == type && e.peer == peer ? 1 : 0;
    return n;
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<LinkEvent> events_;
};

auto is(LinkEventType type, int peer) {
  return [type, peer](const LinkEvent& e) { return e.type == type && e.peer == peer; };
}

TransportOptions data_only() {
  auto opt = quick_options();
  opt.control_ring = false;
  return opt;
}

// Ring 0-1-2 without control links: node 0 dials node 1, node 1 dials node 2. Node 1's event
// handler throws on the first "up" of its link to `peer` (inside a read handler on node 1's
// network thread) and, with `throw_on_down`, again on the "down" that follows.
void throwing_handler_closes_only_that_link(int peer, bool throw_on_down) {
  const int other = peer == 0 ? 2 : 0;
  // Declared before the cluster: its handlers run until the cluster is destroyed.
  EventLog log;
  std::atomic<bool> thrown_up{false}, thrown_down{false};
  Cluster c(Kind::kTcp, ring_topology(3), data_only(), false);
  c.node(1).set_event_handler([&](const LinkEvent& e) {
    log.record(e);
    if (e.peer != peer) return;
    if (e.type == LinkEventType::kUp && !thrown_up.exchange(true))
      throw std::runtime_error("event handler exploded");
    if (throw_on_down && e.type == LinkEventType::kDown && !thrown_down.exchange(true))
      throw std::runtime_error("event handler exploded again");
  });
  for (int i = 0; i < 3; ++i) c.node(i).start(c.topology(), i);

  const auto down = log.wait_for(is(LinkEventType::kDown, peer));
  REQUIRE_MESSAGE(down.has_value(), "node 1 never reported its link to node ", peer, " down");
  CHECK_FALSE(log.at(*down).clean);  // a failure: the node warns
  const std::string detail = log.at(*down).detail;
  CHECK_MESSAGE(detail.find("handler failed in read: event handler exploded") != std::string::npos,
                detail);
  // The link comes back (the dialer redials); the second "up" does not throw.
  REQUIRE(log.wait_for(is(LinkEventType::kUp, peer), *down + 1).has_value());
  for (int i = 0; i < 3; ++i) c.node(i).wait_connected(kWait);
  check_ring_works(c, 1);
  check_link(c.node(1), c.node(0), 2);

  const TransportStats s = c.node(1).stats();
  CHECK(s.handler_errors == 1);
  CHECK(s.find(peer, LinkKind::kData)->handler_errors == 1);
  CHECK(s.find(peer, LinkKind::kData)->reconnects >= 1);
  CHECK(s.find(other, LinkKind::kData)->handler_errors == 0);
  CHECK(s.malformed == 0);
  CHECK(log.count(LinkEventType::kDown, other) == 0);  // the other link never went down
  CHECK(c.node(peer).stats().handler_errors == 0);
}

}  // namespace

TEST_SUITE("net") {
  TEST_CASE("tcp: a throwing handler closes only that peer's connection, which comes back") {
    SUBCASE("on the accepting side") {
      throwing_handler_closes_only_that_link(0, false);
    }
    SUBCASE("on the dialling side, throwing again on the down event") {
      throwing_handler_closes_only_that_link(2, true);
    }
  }

  TEST_CASE("tcp: a message declaring more than max_frame_bytes disconnects that peer") {
    // Node 0 is node 1's neighbour that never starts: a raw socket plays it.
    auto opt = data_only();
    opt.max_frame_bytes = 64 * 1024;
    EventLog log;
    Cluster c(Kind::kTcp, small_topology(4, {{1, 2}, {2, 3}, {3, 1}, {0, 1}}), opt, false);
    c.node(1).set_event_handler([&](const LinkEvent& e) { log.record(e); });
    for (int i = 1; i < 4; ++i) c.node(i).start(c.topology(), i);
    for (int i : {2, 3}) c.node(i).wait_connected(kWait);
    REQUIRE(log.wait_for(is(LinkEventType::kUp, 3)).has_value());

    Raw raw(c.port(1));
    raw_handshake(raw, 0, 1);
    REQUIRE(log.wait_for(is(LinkEventType::kUp, 0)).has_value());
    // A well-formed frame (the header parses and agrees with the prefix) whose payload is
    // one byte over the limit: the node must refuse it before allocating anything.
    wire::Header m;
    m.set_type(wire::FRAME_MESSAGE);
    m.set_kind(static_cast<std::uint32_t>(MessageKind::kGossip));
    m.set_sender(0);
    m.set_seq(1);  // sequence numbers start at 1 on a connection
    const auto head = encode_frame_head(m, opt.max_frame_bytes + 1);
    raw.write(head);
    CHECK(raw.closed_by_node());

    const auto down = log.wait_for(is(LinkEventType::kDown, 0));
    REQUIRE(down.has_value());
    const std::string detail = log.at(*down).detail;
    CHECK_MESSAGE(detail.find("exceeds the maximum of " + std::to_string(opt.max_frame_bytes)) !=
                      std::string::npos,
                  detail);
    const TransportStats s = c.node(1).stats();
    CHECK(s.malformed == 1);
    CHECK(s.find(0, LinkKind::kData)->malformed == 1);
    CHECK(s.find(0, LinkKind::kData)->msgs_recv == 0);
    CHECK(s.handler_errors == 0);
    CHECK(log.count(LinkEventType::kDown, 2) + log.count(LinkEventType::kDown, 3) == 0);
    check_link(c.node(1), c.node(2), 1);
    check_link(c.node(3), c.node(1), 1);
    check_link(c.node(2), c.node(3), 1);
    // A frame under the limit is still accepted, on a fresh connection.
    Raw again(c.port(1));
    raw_handshake(again, 0, 1);
    m.set_round(7);
    again.write_frame(m, std::vector<std::uint8_t>(opt.max_frame_bytes - 64, 5));
    auto got = c.node(1).take(0, 7, kWait);
    REQUIRE(got.has_value());
    CHECK(got->payload.size() == opt.max_frame_bytes - 64);
  }

  TEST_CASE("tcp: a peer's stop is a clean down, a connection that just breaks is not") {
    // Node 0 is played by a raw socket that hangs up without a goodbye; node 2 stops cleanly.
    EventLog log;
    Cluster c(Kind::kTcp, small_topology(3, {{1, 2}, {0, 1}}), data_only(), false);
    c.node(1).set_event_handler([&](const LinkEvent& e) { log.record(e); });
    for (int i = 1; i < 3; ++i) c.node(i).start(c.topology(), i);
    c.node(2).wait_connected(kWait);
    {
      Raw raw(c.port(1));
      raw_handshake(raw, 0, 1);
      REQUIRE(log.wait_for(is(LinkEventType::kUp, 0)).has_value());
    }
    const auto broken = log.wait_for(is(LinkEventType::kDown, 0));
    REQUIRE(broken.has_value());
    CHECK_FALSE(log.at(*broken).clean);
    c.node(2).stop();
    const auto stopped = log.wait_for(is(LinkEventType::kDown, 2));
    REQUIRE(stopped.has_value());
    CHECK(log.at(*stopped).clean);
    CHECK(log.at(*stopped).detail == "peer stopped");
  }

  TEST_CASE("tcp: a message of a kind nobody sends disconnects that peer") {
    EventLog log;
    Cluster c(Kind::kTcp, small_topology(3, {{1, 2}, {0, 1}}), data_only(), false);
    c.node(1).set_event_handler([&](const LinkEvent& e) { log.record(e); });
    for (int i = 1; i < 3; ++i) c.node(i).start(c.topology(), i);
    c.node(2).wait_connected(kWait);
    Raw raw(c.port(1));
    raw_handshake(raw, 0, 1);
    REQUIRE(log.wait_for(is(LinkEventType::kUp, 0)).has_value());
    for (std::uint32_t kind : {0u, 10u, 9999u}) {
      CAPTURE(kind);
      CHECK_FALSE(known_kind(kind));
    }
    wire::Header m;
    m.set_type(wire::FRAME_MESSAGE);
    m.set_kind(9999);
    m.set_sender(0);
    raw.write_frame(m, std::vector<std::uint8_t>(16, 1));
    CHECK(raw.closed_by_node());
    const auto down = log.wait_for(is(LinkEventType::kDown, 0));
    REQUIRE(down.has_value());
    CHECK(log.at(*down).detail.find("unknown kind 9999") != std::string::npos);
    CHECK(c.node(1).stats().malformed == 1);
    CHECK(c.node(1).pending() == 0);  // nothing reached the mailbox
    check_link(c.node(1), c.node(2), 1);
  }
}
