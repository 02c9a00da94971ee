// Handshake refusals, malformed input from a raw socket, restarts, queues and stop().
#include <doctest/doctest.h>

#include <thread>

#include "net_fixture.hpp"
#include "raw_peer.hpp"
#include "rumor/common/error.hpp"

using namespace rumor;
using namespace rumor::net;
using namespace rumor::net::testing;

namespace {

// Expects node `at` to answer a raw hello with a refusal and count it.
void expect_refused(Cluster& c, int at, const wire::Header& h, const std::string& why) {
  const auto before = c.node(at).stats().refused_handshakes;
  Raw raw(c.port(at));
  raw.write_frame(h);
  auto v = raw.read_frame();
  REQUIRE(v.has_value());
  CHECK(v->type() == wire::FRAME_VERDICT);
  CHECK_FALSE(v->verdict().accepted());
  CHECK_MESSAGE(v->verdict().reason().find(why) != std::string::npos, v->verdict().reason());
  CHECK(raw.closed_by_node());
  CHECK(c.node(at).stats().refused_handshakes == before + 1);
}

}  // namespace

TEST_SUITE("net") {
  TEST_CASE("tcp: handshake refusals leave the node's other links working") {
    // Line 0-1-2-3-4: node 0 is neither a data nor a control neighbour of node 1.
    Cluster c(Kind::kTcp, small_topology(5, {{0, 1}, {1, 2}, {2, 3}, {3, 4}}));
    expect_refused(c, 2, hello(0, 2, "test-run", LinkKind::kData), "not a data neighbour");
    expect_refused(c, 2, hello(0, 2, "test-run", LinkKind::kControl), "not a control neighbour");
    expect_refused(c, 2, hello(1, 2, "other-run", LinkKind::kData), "run id");
    expect_refused(c, 2, hello(1, 2, "test-run", LinkKind::kData, kProtocolVersion + 1),
                   "protocol version");
    auto bad_magic = hello(1, 2, "test-run", LinkKind::kData);
    bad_magic.mutable_hello()->set_magic(0x12345678);
    expect_refused(c, 2, bad_magic, "magic");
    expect_refused(c, 2, hello(1, 7, "test-run", LinkKind::kData), "addressed to node 7");
    for (int i = 0; i < 4; ++i) {
      check_link(c.node(i), c.node(i + 1), 1);
      check_link(c.node(i + 1), c.node(i), 1);
    }
    CHECK(c.node(2).stats().malformed == 0);
  }

  TEST_CASE("tcp: HMAC secret: matching secrets connect, a wrong secret is refused") {
    auto opt = quick_options();
    opt.secret = "correct horse battery staple";
    Cluster ok(Kind::kTcp, ring_topology(3), opt);
    check_ring_works(ok, 0);

    // Node 0 dials node 1 with another secret; node 2 has the right one.
    auto wrong = opt;
    wrong.secret = "wrong";
    wrong.connect_timeout = 1500ms;
    Cluster c(Kind::kTcp, ring_topology(3), opt, false);
    auto bad = std::make_unique<TcpTransport>(wrong);
    bad->bind("127.0.0.1", 0);
    // Re-point node 0 to the new transport's port: rebuild the topology.
    std::vector<int> ports = {bad->port(), c.port(1), c.port(2)};
    const Topology t = with_ports(c.topology(), ports);
    bad->start(t, 0);
    c.node(1).start(t, 1);
    c.node(2).start(t, 2);
    // 1-2 connect; 0 is refused by 1 (and 0 refuses 2, whose MAC it cannot verify).
    CHECK_THROWS_AS(bad->wait_connected(1500ms), ProtocolError);
    for (int i = 0; i < 400 && c.node(1).stats().refused_handshakes == 0; ++i)
      std::this_thread::sleep_for(10ms);
    CHECK(c.node(1).stats().refused_handshakes > 0);
    CHECK_FALSE(c.node(1).link_up(0, LinkKind::kData));
    check_link(c.node(1), c.node(2), 3);
    check_link(c.node(2), c.node(1), 3);
    // A node without a secret cannot join either.
    Raw raw(c.port(1));
    auto v = raw_wrong_mac(raw, 0, 1);
    REQUIRE(v.has_value());
    CHECK_FALSE(v->verdict().accepted());
    bad->stop();
  }

  TEST_CASE("tcp: malformed input from a raw socket closes only that connection") {
    // Node 0 is a topology neighbour of node 1 that never starts: the raw socket plays it
    // (it has the lower id, so it is the one that dials).
    auto opt = quick_options();
    opt.control_ring = false;
    Cluster c(Kind::kTcp, small_topology(4, {{1, 2}, {2, 3}, {3, 1}, {0, 1}}), opt, false);
    for (int i = 1; i < 4; ++i) c.node(i).start(c.topology(), i);
    for (int i : {2, 3}) c.node(i).wait_connected(kWait);
    for (int i = 0; i < 100 && !c.node(1).link_up(3, LinkKind::kData); ++i)
      std::this_thread::sleep_for(20ms);
    auto ring_ok = [&](std::int64_t r) {
      check_link(c.node(1), c.node(2), r);
      check_link(c.node(2), c.node(3), r);
      check_link(c.node(3), c.node(1), r);
      check_link(c.node(2), c.node(1), r);
    };
    ring_ok(0);

    std::uint64_t malformed = 0;
    auto expect_malformed = [&](const std::function<void(Raw&)>& send_bad) {
      Raw raw(c.port(1));
      send_bad(raw);
      CHECK(raw.closed_by_node());
      for (int i = 0; i < 200 && c.node(1).stats().malformed == malformed; ++i)
        std::this_thread::sleep_for(10ms);
      CHECK(c.node(1).stats().malformed == malformed + 1);
      malformed = c.node(1).stats().malformed;
      ring_ok(static_cast<std::int64_t>(malformed));
    };
    SUBCASE("before the handshake") {
      // Truncated frame: a prefix announcing 100 bytes, then 10, then end of stream.
      expect_malformed([](Raw& r) {
        wire::Header h = hello(0, 1, "test-run", LinkKind::kData);
        auto head = encode_frame_head(h, 0);
        head.resize(kPrefixBytes + 3);
        r.write(head);
        r.shutdown_send();
      });
      // Garbage bytes.
      expect_malformed([](Raw& r) {
        std::vector<std::uint8_t> g(256);
        for (std::size_t k = 0; k < g.size(); ++k) g[k] = static_cast<std::uint8_t>(k * 37 + 11);
        r.write(g);
      });
      // A length above the maximum frame size.
      expect_malformed([](Raw& r) {
        std::vector<std::uint8_t> p(kPrefixBytes, 0);
        p[5] = 0x10;  // frame_length = 2^40
        p[8] = 16;
        r.write(p);
      });
      // A header that does not parse.
      expect_malformed([](Raw& r) {
        std::vector<std::uint8_t> p(kPrefixBytes + 6, 0xff);
        p.assign(kPrefixBytes, 0);
        p[0] = 10;  // frame_length = 4 + 6
        p[8] = 6;   // header_length = 6
        for (int k = 0; k < 6; ++k) p.push_back(0xff);
        r.write(p);
      });
      // A payload whose length disagrees with the header.
      expect_malformed([](Raw& r) {
        wire::Header h = hello(0, 1, "test-run", LinkKind::kData);
        auto head = encode_frame_head(h, 0);
        std::vector<std::uint8_t> p(head);
        const std::uint64_t frame_length = head.size() - 8 + 5;  // 5 extra payload bytes
        for (int k = 0; k < 8; ++k)
          p[static_cast<std::size_t>(k)] = static_cast<std::uint8_t>(frame_length >> (8 * k));
        for (int k = 0; k < 5; ++k) p.push_back(0);
        r.write(p);
      });
    }
    SUBCASE("after a completed handshake") {
      auto handshake = [](Raw& r) { raw_handshake(r, 0, 1); };
      // Payload length mismatch.
      expect_malformed([&](Raw& r) {
        handshake(r);
        wire::Header m;
        m.set_type(wire::FRAME_MESSAGE);
        m.set_sender(0);
        auto head = encode_frame_head(m, 100);
        m.set_payload_length(100);
        head = encode_frame_head(m, 100);
        head.resize(kPrefixBytes);  // keep the prefix, then a header saying 50
        m.set_payload_length(50);
        std::string hb = m.SerializeAsString();
        const std::uint64_t frame_length = 4 + hb.size() + 100;
        for (int k = 0; k < 8; ++k)
          head[static_cast<std::size_t>(k)] = static_cast<std::uint8_t>(frame_length >> (8 * k));
        for (int k = 0; k < 4; ++k)
          head[static_cast<std::size_t>(8 + k)] = static_cast<std::uint8_t>(hb.size() >> (8 * k));
        head.insert(head.end(), hb.begin(), hb.end());
        head.resize(head.size() + 100, 0);
        r.write(head);
      });
      // Truncated payload: announces 1000 bytes, sends 10, closes.
      expect_malformed([&](Raw& r) {
        handshake(r);
        wire::Header m;
        m.set_type(wire::FRAME_MESSAGE);
        m.set_sender(0);
        auto head = encode_frame_head(m, 1000);
        head.resize(head.size() + 10, 1);
        r.write(head);
        r.shutdown_send();
      });
      // Claims another sender.
      expect_malformed([&](Raw& r) {
        handshake(r);
        wire::Header m;
        m.set_type(wire::FRAME_MESSAGE);
        m.set_sender(2);
        r.write_frame(m);
      });
      CHECK(c.node(1).stats().find(0, LinkKind::kData)->malformed == 3);
      // Valid messages from the raw peer are delivered.
      Raw raw(c.port(1));
      handshake(raw);
      wire::Header m;
      m.set_type(wire::FRAME_MESSAGE);
      m.set_kind(static_cast<std::uint32_t>(MessageKind::kGossip));
      m.set_sender(0);
      m.set_round(42);
      m.set_seq(1);  // sequence numbers start at 1 on a connection
      raw.write_frame(m, {1, 2, 3, 4});
      auto got = c.node(1).take(0, 42, kWait);
      REQUIRE(got.has_value());
      CHECK(got->payload.size() == 4);
    }
  }

  TEST_CASE("a killed and restarted neighbour is reconnected") {
    for (Kind kind : {Kind::kInProc, Kind::kTcp, Kind::kShm}) {
      const std::string kind_name = name(kind);
      CAPTURE(kind_name);
      Cluster c(kind, ring_topology(4));
      check_ring_works(c, 0);
      c.restart(2);
      c.node(2).wait_connected(kWait);
      for (int i : {1, 3}) {
        for (int k = 0; k < 500 && !c.node(i).link_up(2, LinkKind::kData); ++k)
          std::this_thread::sleep_for(10ms);
        CHECK(c.node(i).link_up(2, LinkKind::kData));
        CHECK(c.node(i).stats().find(2, LinkKind::kData)->reconnects >= 1);
      }
      if (kind == Kind::kShm) c.wait_shm();  // the new connections move to it as well
      check_ring_works(c, 1);
      bool saw_down = false;
      for (const auto& e : c.node(1).events())
        if (e.type == LinkEventType::kDown && e.peer == 2) saw_down = true;
      CHECK(saw_down);
      // The old node 2 round-0 messages are gone; round 1 arrived on the new one.
      check_link(c.node(2), c.node(3), 2);
    }
  }

  TEST_CASE("sends while a link is down queue up to the bound, then drop and count") {
    for (Kind kind : {Kind::kInProc, Kind::kTcp, Kind::kShm}) {
      const std::string kind_name = name(kind);
      CAPTURE(kind_name);
      auto opt = quick_options();
      opt.send_queue_messages = 2;
      Cluster c(kind, ring_topology(2), opt, false);
      c.node(0).start(c.topology(), 0);
      Message m;
      CHECK(c.node(0).send(1, m));
      CHECK(c.node(0).send(1, m));
      CHECK_FALSE(c.node(0).send(1, m));  // full: the new message is dropped
      CHECK(c.node(0).stats().drops == 1);
      c.node(1).start(c.topology(), 1);
      c.node(1).wait_connected(kWait);
      CHECK(c.node(1).take(0, 0, kWait).has_value());  // queued ones arrive
      CHECK(c.node(1).take(0, 0, kWait).has_value());
    }
  }

  TEST_CASE("wait_connected names the missing peer and its address") {
    for (Kind kind : {Kind::kInProc, Kind::kTcp, Kind::kShm}) {
      const std::string kind_name = name(kind);
      CAPTURE(kind_name);
      Cluster c(kind, ring_topology(2), quick_options(), false);
      c.node(0).start(c.topology(), 0);
      try {
        c.node(0).wait_connected(300ms);
        FAIL("expected a ProtocolError");
      } catch (const ProtocolError& e) {
        const std::string what = e.what();
        CHECK(what.find("node 1") != std::string::npos);
        if (over_tcp(kind))
          CHECK(what.find("127.0.0.1:" + std::to_string(c.port(1))) != std::string::npos);
      }
    }
  }

  TEST_CASE("stop is idempotent, sends after stop are dropped") {
    for (Kind kind : {Kind::kInProc, Kind::kTcp, Kind::kShm}) {
      const std::string kind_name = name(kind);
      CAPTURE(kind_name);
      Cluster c(kind, ring_topology(3));
      c.node(0).stop();
      c.node(0).stop();
      CHECK_FALSE(c.node(0).send(1, Message{}));
      CHECK_FALSE(c.node(0).take(1, 0, 10ms).has_value());
    }
    TcpTransport never_started;
    never_started.stop();
    never_started.stop();
  }

  TEST_CASE("in-process link model: seeded loss is reproducible and counted") {
    auto run = [](std::uint64_t seed) {
      LinkModel model;
      model.loss = 0.3;
      model.latency_s = 0.001;
      model.bandwidth_Bps = 1e9;
      model.seed = seed;
      InProcNetwork net(model);
      const Topology t = ring_topology(2);
      auto a = net.make_transport(quick_options());
      auto b = net.make_transport(quick_options());
      a->start(t, 0);
      b->start(t, 1);
      a->wait_connected(kWait);
      std::vector<std::int64_t> delivered;
      for (int r = 0; r < 100; ++r) {
        Message m;
        m.round = r;
        m.payload = Payload::copy_of(std::vector<std::uint8_t>(100, 1));
        a->send(1, std::move(m));
      }
      const auto drops = a->stats().drops;
      for (std::uint64_t k = 0; k < 100 - drops; ++k) {
        auto m = b->take(MessageFilter{}, kWait);
        REQUIRE(m.has_value());
        delivered.push_back(m->round);
      }
      CHECK_FALSE(b->take(MessageFilter{}, 20ms).has_value());
      CHECK(std::is_sorted(delivered.begin(), delivered.end()));  // links are FIFO
      return delivered;
    };
    const auto a = run(1), b = run(1), c = run(2);
    CHECK(a == b);
    CHECK(a != c);
    CHECK(a.size() > 40);
    CHECK(a.size() < 95);
  }

  TEST_CASE("frame codec rejects bad prefixes and mismatched headers") {
    Prefix p;
    std::vector<std::uint8_t> b(kPrefixBytes, 0);
    CHECK_FALSE(parse_prefix(b.data(), 1000, p).empty());  // header length 0
    b[0] = 100;
    b[8] = 200;
    CHECK_FALSE(parse_prefix(b.data(), 1000, p).empty());  // header longer than frame
    b[8] = 10;
    CHECK(parse_prefix(b.data(), 1000, p).empty());
    CHECK(p.payload_length() == 86);
    CHECK_FALSE(parse_prefix(b.data(), 99, p).empty());  // above the maximum
    wire::Header h;
    h.set_type(wire::FRAME_MESSAGE);
    auto head = encode_frame_head(h, 7);
    REQUIRE(parse_prefix(head.data(), 1000, p).empty());
    wire::Header back;
    CHECK(parse_header(head.data() + kPrefixBytes, p, back).empty());
    p.frame_length += 1;
    CHECK_FALSE(parse_header(head.data() + kPrefixBytes, p, back).empty());
  }
}
