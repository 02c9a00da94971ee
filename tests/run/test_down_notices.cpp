// Down notices: the two ends of a link agree on "down". Every wait is for a condition (a
// notice taken, a link up again), bounded by kWait; nothing checked depends on timing.
#include <doctest/doctest.h>

#include <chrono>
#include <thread>

#include "down_notices.hpp"
#include "net/net_fixture.hpp"
#include "rumor/codec/codec.hpp"
#include "rumor/gossip/method.hpp"

namespace {

using namespace rumor;
using net::testing::Cluster;
using net::testing::Kind;
using net::testing::kWait;
using Reason = run::DownNotices::Reason;

std::unique_ptr<gossip::Method> local_method(const Topology& t, int self) {
  gossip::MethodContext ctx;
  ctx.self = self;
  ctx.topology = &t;
  ctx.codec = codec::make_codec("fp32");
  return gossip::make_method("local", ctx);
}

// Runs boundaries of `node` until `done` holds (bounded by kWait); returns whether it did.
template <typename Done>
bool boundaries_until(run::DownNotices& node, std::int64_t& round, Done done) {
  const auto until = std::chrono::steady_clock::now() + kWait;
  while (!done()) {
    if (std::chrono::steady_clock::now() > until) return false;
    node.boundary(++round);
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

}  // namespace

TEST_SUITE("run") {
  TEST_CASE("down notices: the peer left out leaves the sender out too, and stops waiting") {
    for (Kind kind : {Kind::kInProc, Kind::kTcp}) {
      CAPTURE(net::testing::name(kind));
      Cluster c(kind, net::testing::ring_topology(3));
      auto m0 = local_method(c.topology(), 0), m1 = local_method(c.topology(), 1);
      run::DownNotices n0(*m0, c.node(0)), n1(*m1, c.node(1));
      n0.leave_out(1, 5, Reason::kRefused, "test");
      CHECK(m0->peer_is_down(1));
      CHECK_FALSE(m0->peer_is_down(2));  // only the one named
      // Node 1, waiting in a round, learns it; the notice is applied at its next boundary.
      std::int64_t r1 = 2;
      const auto until = std::chrono::steady_clock::now() + kWait;
      while (!n1.told_by(0) && std::chrono::steady_clock::now() < until)
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      REQUIRE(n1.told_by(0));
      CHECK_FALSE(m1->peer_is_down(0));
      n1.boundary(++r1);
      CHECK(m1->peer_is_down(0));
      CHECK_FALSE(m1->peer_is_down(2));
      // Node 1 answers; for node 0, which left it out already, that changes nothing.
      std::int64_t r0 = 5;
      n0.boundary(++r0);
      CHECK(m0->peer_is_down(1));
      CHECK_FALSE(m0->peer_is_down(2));
    }
  }

  TEST_CASE("down notices: a notice lost with its connection goes again after the reconnect") {
    Cluster c(Kind::kTcp, net::testing::ring_topology(2));
    auto m0 = local_method(c.topology(), 0), m1 = local_method(c.topology(), 1);
    run::DownNotices n0(*m0, c.node(0)), n1(*m1, c.node(1));
    auto reconnects = [&] { return c.node(1).stats().find(0, net::LinkKind::kData)->reconnects; };
    REQUIRE(reconnects() == 0);
    n1.leave_out(0, 3, Reason::kRefused, "test");
    // The notice is lost on node 0's side (taken here, never seen by its DownNotices).
    net::MessageFilter notice;
    notice.sender = 1;
    notice.kind = net::MessageKind::kPeerDown;
    REQUIRE(c.node(0).take(notice, kWait).has_value());
    // Node 1 closes the link; node 0, the dialer, connects again.
    c.node(1).close_link(0, net::LinkKind::kData, "test");
    const auto until = std::chrono::steady_clock::now() + kWait;
    while ((reconnects() == 0 || !c.node(1).link_up(0, net::LinkKind::kData)) &&
           std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    REQUIRE(reconnects() >= 1);
    // Node 1's next boundary sends it again over the new connection; node 0 applies it.
    std::int64_t r1 = 3, r0 = 3;
    CHECK(boundaries_until(n1, r1, [&] {
      n0.boundary(++r0);
      return m0->peer_is_down(1);
    }));
  }
}
