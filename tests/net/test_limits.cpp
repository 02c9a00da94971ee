// What a peer may make a node do: claim a connected peer's id, replay sequence numbers,
// send far ahead, fill the mailbox, hold connections open in the handshake. Each is refused
// and counted; the node's links carry on.
#include <doctest/doctest.h>

#include <functional>
#include <memory>
#include <thread>

#include "net_fixture.hpp"
#include "raw_peer.hpp"

using namespace rumor;
using namespace rumor::net;
using namespace rumor::net::testing;

namespace {

// Nodes 1..3 in a triangle plus node 0, a neighbour of node 1 that a raw socket plays.
std::unique_ptr<Cluster> raw_zero_cluster(const TransportOptions& opt) {
  auto c = std::make_unique<Cluster>(
      Kind::kTcp, small_topology(4, {{1, 2}, {2, 3}, {3, 1}, {0, 1}}), opt, false);
  for (int i = 1; i < 4; ++i) c->node(i).start(c->topology(), i);
  return c;
}

TransportOptions no_ring() {
  auto o = quick_options();
  o.control_ring = false;
  return o;
}

}  // namespace

TEST_SUITE("net") {
  TEST_CASE("tcp: without a secret, a connection claiming a connected peer is refused") {
    Cluster c(Kind::kTcp, ring_topology(3));
    const auto before = c.node(1).stats().refused_handshakes;
    Raw raw(c.port(1));
    raw.write_frame(hello(0, 1, "test-run", LinkKind::kData));
    auto v = raw.read_frame();
    REQUIRE(v.has_value());
    CHECK_FALSE(v->verdict().accepted());
    CHECK_MESSAGE(v->verdict().reason().find("already connected") != std::string::npos,
                  v->verdict().reason());
    CHECK(raw.closed_by_node());
    CHECK(c.node(1).stats().refused_handshakes == before + 1);
    // The real node 0 kept its link: never replaced, never down.
    CHECK(c.node(1).stats().find(0, LinkKind::kData)->reconnects == 0);
    check_link(c.node(0), c.node(1), 1);
    check_link(c.node(1), c.node(0), 1);
  }

  TEST_CASE("tcp: with a secret, a connection that authenticates as a connected peer replaces it") {
    auto opt = quick_options();
    opt.secret = "s3cret";
    Cluster c(Kind::kTcp, ring_topology(3), opt);
    {
      // A wrong secret is refused and the link stays.
      Raw raw(c.port(1));
      auto v = raw_wrong_mac(raw, 0, 1);
      REQUIRE(v.has_value());
      CHECK_FALSE(v->verdict().accepted());
      CHECK(c.node(1).stats().find(0, LinkKind::kData)->reconnects == 0);
    }
    {
      Raw raw(c.port(1));
      raw_handshake(raw, 0, 1, "s3cret");  // replaces node 0's connection
      CHECK(
          eventually([&] { return c.node(1).stats().find(0, LinkKind::kData)->reconnects >= 1; }));
    }
    // The real node 0 redials, authenticates and replaces the raw one in turn.
    CHECK(eventually([&] { return c.node(1).stats().find(0, LinkKind::kData)->reconnects >= 2; }));
    check_link(c.node(0), c.node(1), 2);
    check_link(c.node(1), c.node(0), 2);
  }

  TEST_CASE(
      "tcp: a replayed sequence number, a round too far ahead, a full mailbox: refused unread") {
    auto opt = no_ring();
    opt.max_rounds_ahead = 4;
    opt.mailbox_bytes = 1000;
    auto c = raw_zero_cluster(opt);
    Transport& node = c->node(1);
    node.set_round(10);
    Raw raw(c->port(1));
    raw_handshake(raw, 0, 1);
    raw_message(raw, 0, 10, 1, 100);  // kept
    raw_message(raw, 0, 11, 1, 100);  // sequence number again
    raw_message(raw, 0, 15, 2, 100);  // 5 rounds ahead
    raw_message(raw, 0, 14, 3, 100);  // 4 ahead: kept
    raw_message(raw, 0, 12, 4, 900);  // 200 + 900 bytes over 1000
    raw_message(raw, 0, 12, 5, 700);  // kept (900 bytes)
    auto link = [&] { return *node.stats().find(0, LinkKind::kData); };
    REQUIRE(eventually([&] { return node.pending() == 3; }));
    CHECK(link().rejected_seq == 1);
    CHECK(link().rejected_ahead == 1);
    CHECK(link().rejected_mailbox == 1);
    CHECK(node.stats().rejected == 3);
    CHECK(node.mailbox_bytes_from(0) == 900);
    // The connection stays, and what is taken frees room for more.
    for (std::int64_t r : {10, 14, 12}) CHECK(node.take(0, r, kWait).has_value());
    CHECK(node.mailbox_bytes_from(0) == 0);
    raw_message(raw, 0, 12, 6, 900);
    CHECK(eventually([&] { return node.pending() == 1; }));
    CHECK(link().malformed == 0);
    CHECK(node.link_up(0, LinkKind::kData));
  }

  TEST_CASE("tcp: connections held in the handshake are bounded, and their timeout counted") {
    auto opt = no_ring();
    opt.max_pending_handshakes = 2;
    opt.handshake_timeout = 60s;
    auto c = raw_zero_cluster(opt);
    Transport& node = c->node(1);
    auto first = std::make_unique<Raw>(c->port(1));
    auto second = std::make_unique<Raw>(c->port(1));
    // Accepted in the order they came: these two are in their handshake before the third.
    {
      Raw third(c->port(1));  // over the limit: closed at once
      CHECK(third.closed_by_node());
    }
    CHECK(node.stats().busy_refused == 1);
    first.reset();
    second.reset();
    // Room again once they are gone: a fourth connection gets the handshake going.
    bool answered = false;
    for (int i = 0; i < 200 && !answered; ++i) {
      Raw fourth(c->port(1));
      fourth.write_frame(hello(0, 1, "test-run", LinkKind::kData));
      auto h = fourth.read_frame();
      answered = h.has_value() && h->type() == wire::FRAME_HELLO;
      if (!answered) std::this_thread::sleep_for(10ms);
    }
    CHECK(answered);
  }

  TEST_CASE("tcp: a connection that never finishes its handshake is closed and counted") {
    auto opt = no_ring();
    opt.handshake_timeout = 100ms;
    auto c = raw_zero_cluster(opt);
    Raw raw(c->port(1));
    CHECK(raw.closed_by_node());
    CHECK(eventually([&] { return c->node(1).stats().handshake_timeouts == 1; }));
    CHECK(c->node(1).stats().refused_handshakes >= 1);
  }
}
