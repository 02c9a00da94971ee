// The shared-memory path: the segment and its rings, what a segment name must be, and a
// raw neighbour that writes hostile bytes into the ring of an accepted offer.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <functional>
#include <numeric>
#include <thread>

#include "net_fixture.hpp"
#include "raw_peer.hpp"
#include "rumor/common/error.hpp"
#include "rumor/net/shm_ring.hpp"

using namespace rumor;
using namespace rumor::net;
using namespace rumor::net::testing;

namespace {

bool name_exists(const std::string& name) {
  const int fd = ::shm_open(name.c_str(), O_RDONLY, 0);
  if (fd >= 0) ::close(fd);
  return fd >= 0;
}

std::vector<std::uint8_t> bytes(std::size_t n, std::uint8_t first) {
  std::vector<std::uint8_t> v(n);
  std::iota(v.begin(), v.end(), first);
  return v;
}

constexpr const char* kSecret = "net-test-shm-secret";

// Node 1 of a 2-node ring over shared memory, with a raw socket playing node 0 (the dialer):
// handshake with the secret, then an offer of `seg`; returns once node 1 has accepted it.
void raw_offer(Raw& raw, ShmSegment& seg) {
  raw_handshake(raw, 0, 1, kSecret);
  wire::Header offer;
  offer.set_type(wire::FRAME_SHM);
  offer.mutable_shm()->set_step(wire::Shm::SHM_OFFER);
  offer.mutable_shm()->set_name(seg.name());
  offer.mutable_shm()->set_ring_bytes(seg.ring_bytes());
  raw.write_frame(offer);
  std::optional<wire::Header> h;
  for (int i = 0; i < 10; ++i) {  // heartbeats may come first
    h = raw.read_frame();
    if (!h || h->type() == wire::FRAME_SHM) break;
  }
  REQUIRE(h.has_value());
  REQUIRE(h->shm().step() == wire::Shm::SHM_ACCEPT);
  CHECK(h->shm().nonce() == seg.own_nonce());  // it read what this side wrote
  seg.unlink();
  wire::Header confirm;
  confirm.set_type(wire::FRAME_SHM);
  confirm.mutable_shm()->set_step(wire::Shm::SHM_CONFIRM);
  confirm.mutable_shm()->set_nonce(seg.peer_nonce());
  raw.write_frame(confirm);
}

// Writes a whole frame into the ring and rings the node.
void ring_write(ShmSegment& seg, RingWriter& w, const std::vector<std::uint8_t>& frame) {
  std::size_t off = 0;
  for (int i = 0; i < 100000 && off < frame.size(); ++i) {
    off += w.write(std::span<const std::uint8_t>(frame).subspan(off));
    seg.peer_bell().ring();
    if (off < frame.size()) std::this_thread::sleep_for(1ms);
  }
  REQUIRE(off == frame.size());
}

std::vector<std::uint8_t> message_frame(int sender, std::int64_t round, std::uint64_t seq,
                                        const std::vector<std::uint8_t>& payload) {
  Message m;
  m.round = round;
  wire::Header h = message_header(m, sender, seq);
  auto f = encode_frame_head(h, payload.size());
  f.insert(f.end(), payload.begin(), payload.end());
  return f;
}

}  // namespace

TEST_SUITE("net") {
  TEST_CASE("shm segment: both rings carry bytes across their end, and the name goes") {
    ShmSegment a = ShmSegment::create(kShmMinRing);
    REQUIRE(ShmSegment::valid_name(a.name()));
    ShmSegment b = ShmSegment::open(a.name(), kShmMinRing);
    CHECK(a.peer_nonce() == b.own_nonce());
    CHECK(b.peer_nonce() == a.own_nonce());
    CHECK(a.own_nonce() != b.own_nonce());
    CHECK(name_exists(a.name()));
    a.unlink();
    CHECK_FALSE(name_exists(a.name()));  // nothing left behind once both mapped it
    for (int dir = 0; dir < 2; ++dir) {
      CAPTURE(dir);
      RingWriter w = dir == 0 ? a.writer() : b.writer();
      RingReader r = dir == 0 ? b.reader() : a.reader();
      CHECK(r.available() == 0);
      for (int rep = 0; rep < 5; ++rep) {  // 3000-byte pieces: every other one wraps
        const auto in = bytes(3000, static_cast<std::uint8_t>(rep));
        CHECK(w.write(in) == 3000);
        CHECK(w.space() == kShmMinRing - 3000);
        CHECK(w.write(in) == kShmMinRing - 3000);  // only what fits
        std::vector<std::uint8_t> out(3000);
        CHECK(r.read(out.data(), out.size()) == 3000);
        CHECK(out == in);
        CHECK(r.skip(kShmMinRing) == kShmMinRing - 3000);
        CHECK(r.available() == 0);
      }
    }
  }

  TEST_CASE("shm segment: a segment this node did not get from a rumor peer is refused") {
    for (const std::string bad :
         {"/etc/passwd", "rumor-1-00000000000000000000000000000000",
          "/rumor-1-../../../../dev/zero00000000000", "/rumor-x-00000000000000000000000000000000",
          "/rumor-1-0000000000000000000000000000000", "/rumor-1-0000000000000000000000000000000G",
          "/rumor--00000000000000000000000000000000"}) {
      CAPTURE(bad);
      CHECK_FALSE(ShmSegment::valid_name(bad));
      CHECK_THROWS_AS(ShmSegment::open(bad, kShmMinRing), ProtocolError);
    }
    // Well formed, but absent.
    CHECK_THROWS_AS(ShmSegment::open("/rumor-1-0123456789abcdef0123456789abcdef", kShmMinRing),
                    ProtocolError);
    // Another size than both ends agreed on; a ring size that is not a power of two.
    ShmSegment a = ShmSegment::create(kShmMinRing);
    CHECK_THROWS_AS(ShmSegment::open(a.name(), 2 * kShmMinRing), ProtocolError);
    CHECK_THROWS_AS(ShmSegment::open(a.name(), kShmMinRing + 1), ProtocolError);
    // Readable by other users.
    const std::string open_name =
        "/rumor-" + std::to_string(::getpid()) + "-" + std::string(32, 'a');
    const int fd = ::shm_open(open_name.c_str(), O_RDWR | O_CREAT | O_EXCL, 0644);
    REQUIRE(fd >= 0);
    ::fchmod(fd, 0644);  // whatever the umask
    REQUIRE(::ftruncate(fd, static_cast<off_t>(4096 + 2 * kShmMinRing)) == 0);
    ::close(fd);
    try {
      ShmSegment::open(open_name, kShmMinRing);
      FAIL("a segment open to other users was mapped");
    } catch (const ProtocolError& e) {
      CHECK(std::string(e.what()).find("other users") != std::string::npos);
    }
    ::shm_unlink(open_name.c_str());
  }

  TEST_CASE("shm ring: counters the peer could not have written are bad input") {
    std::vector<std::uint8_t> data(kShmMinRing);
    std::atomic<std::uint64_t> head{0}, tail{0};
    RingReader r(data.data(), data.size(), &head, &tail);
    RingWriter w(data.data(), data.size(), &head, &tail);
    tail = kShmMinRing + 1;  // more than a ring ahead
    CHECK_THROWS_AS(r.available(), ProtocolError);
    head = 5;  // the reader past what was written
    CHECK_THROWS_AS(w.space(), ProtocolError);
    head = 0;
    tail = 0;
    CHECK(w.write(bytes(10, 0)) == 10);
    CHECK(r.available() == 10);
  }

  TEST_CASE("shm ring: the reader rings for space only when the writer asked, once") {
    ShmSegment a = ShmSegment::create(kShmMinRing);
    ShmSegment b = ShmSegment::open(a.name(), kShmMinRing);
    RingWriter w = a.writer();
    RingReader r = b.reader();
    std::vector<std::uint8_t> out(kShmMinRing);
    CHECK(w.write(bytes(100, 0)) == 100);
    CHECK(r.read(out.data(), 100) == 100);
    CHECK_FALSE(r.space_wanted());   // the writer never found the ring full
    CHECK_FALSE(w.ask_for_space());  // not full: write again instead of waiting
    CHECK(r.space_wanted());         // ...but the ask stands once made
    CHECK(w.write(bytes(kShmMinRing, 0)) == kShmMinRing);
    CHECK(w.ask_for_space());  // full: wait for the bell
    CHECK(r.read(out.data(), 10) == 10);
    CHECK(r.space_wanted());
    CHECK_FALSE(r.space_wanted());  // taken: one ring per ask
    // Without the flag (a ring made by hand), the reader always rings.
    std::vector<std::uint8_t> data(kShmMinRing);
    std::atomic<std::uint64_t> head{0}, tail{0};
    RingReader plain(data.data(), data.size(), &head, &tail);
    CHECK(plain.space_wanted());
  }

  TEST_CASE("shm: both ends sending at once through a small ring lose and reorder nothing") {
    Cluster c(Kind::kShm, ring_topology(2));  // waits until the data link is on the ring
    constexpr int kMessages = 40;
    // Each 40,000-float payload is 2.4 rings: every message waits for space several times.
    auto payload = [](int from, int k) {
      std::vector<float> v(40000);
      for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(from * 1000003 + k + i);
      return v;
    };
    std::atomic<int> queued{0};
    auto sender = [&](int from) {
      for (int k = 0; k < kMessages; ++k) {
        Message m;
        m.round = k;
        m.payload = Payload::share(std::make_shared<const std::vector<float>>(payload(from, k)));
        if (c.node(from).send(1 - from, std::move(m))) ++queued;
      }
    };
    std::thread t0(sender, 0), t1(sender, 1);
    for (int k = 0; k < kMessages; ++k)
      for (int to : {0, 1}) {
        auto m = c.node(to).take(1 - to, k, kWait);
        REQUIRE(m.has_value());
        CHECK(m->payload.to_floats() == payload(1 - to, k));
      }
    t0.join();
    t1.join();
    CHECK(queued == 2 * kMessages);
    for (int i : {0, 1}) {
      const auto s = c.node(i).stats();
      CHECK(s.data_msgs_recv == kMessages);
      CHECK(s.find(1 - i, LinkKind::kData)->shm);
      CHECK(s.malformed == 0);
    }
  }

  TEST_CASE("shm: hostile bytes in the ring close only that connection, counted") {
    auto opt = quick_options();
    opt.control_ring = false;
    opt.secret = kSecret;
    opt.max_frame_bytes = 1 << 20;
    Cluster c(Kind::kShm, ring_topology(2), opt, false);
    c.node(1).start(c.topology(), 1);
    auto malformed = [&] { return c.node(1).stats().malformed; };
    std::uint64_t seen = 0;
    auto expect_malformed = [&](const std::function<void(ShmSegment&, RingWriter&)>& bad) {
      Raw raw(c.port(1));
      ShmSegment seg = ShmSegment::create(kTestRingBytes);
      raw_offer(raw, seg);
      RingWriter w = seg.writer();
      // A good message first: the path works, so what follows is refused for its bytes.
      ring_write(seg, w, message_frame(0, 7, 1, bytes(100000, 3)));
      auto got = c.node(1).take(0, 7, kWait);
      REQUIRE(got.has_value());
      CHECK(got->payload.size() == 100000);
      CHECK(c.node(1).stats().find(0, LinkKind::kData)->shm);
      bad(seg, w);
      CHECK(raw.closed_by_node());
      CHECK(eventually([&] { return malformed() == seen + 1; }));
      seen = malformed();
    };
    SUBCASE("a frame over max_frame_bytes") {
      expect_malformed([](ShmSegment& seg, RingWriter& w) {
        Message m;
        wire::Header h = message_header(m, 0, 2);
        ring_write(seg, w, encode_frame_head(h, (1 << 20) + 1));  // the payload never comes
      });
    }
    SUBCASE("a header that does not parse") {
      expect_malformed([](ShmSegment& seg, RingWriter& w) {
        std::vector<std::uint8_t> f(kPrefixBytes + 16, 0xff);  // 16 header bytes of 0xff
        std::fill(f.begin(), f.begin() + kPrefixBytes, 0);
        f[0] = 20;  // frame length: 4 + 16
        f[8] = 16;  // header length
        ring_write(seg, w, f);
      });
    }
    SUBCASE("a message claiming another sender") {
      expect_malformed([](ShmSegment& seg, RingWriter& w) {
        ring_write(seg, w, message_frame(1, 8, 2, bytes(10, 0)));
      });
    }
    SUBCASE("a replayed sequence number is refused unread, the link stays") {
      Raw raw(c.port(1));
      ShmSegment seg = ShmSegment::create(kTestRingBytes);
      raw_offer(raw, seg);
      RingWriter w = seg.writer();
      ring_write(seg, w, message_frame(0, 1, 5, bytes(10, 0)));
      ring_write(seg, w, message_frame(0, 2, 5, bytes(200000, 0)));  // larger than the ring
      ring_write(seg, w, message_frame(0, 3, 6, bytes(10, 0)));
      CHECK(c.node(1).take(0, 1, kWait).has_value());
      CHECK(c.node(1).take(0, 3, kWait).has_value());
      CHECK_FALSE(c.node(1).take(0, 2, 10ms).has_value());
      CHECK(c.node(1).stats().find(0, LinkKind::kData)->rejected_seq == 1);
      CHECK(malformed() == 0);
    }
  }

  TEST_CASE("shm: off on either end, or no run secret, keeps the data links on TCP") {
    for (int variant = 0; variant < 2; ++variant) {
      CAPTURE(variant);
      auto opt = quick_options();
      Cluster c(variant == 0 ? Kind::kShm : Kind::kTcp, ring_topology(3), opt, false);
      // Variant 0: node 0 has shm off. Variant 1: shm on everywhere, but no secret.
      for (int i = 0; i < 3; ++i) {
        TransportOptions o = for_kind(Kind::kShm, opt);
        if (variant == 0 && i == 0) o.shm = false;
        if (variant == 1) o.secret.clear();
        c.replace(i, nullptr);  // frees its port
        auto t = std::make_unique<TcpTransport>(o);
        t->bind("127.0.0.1", c.port(i));
        t->start(c.topology(), i);
        c.replace(i, std::move(t));
      }
      for (int i = 0; i < 3; ++i) c.node(i).wait_connected(kWait);
      check_ring_works(c, 0);
      for (int i = 0; i < 3; ++i) {
        for (const auto& l : c.node(i).stats().links) {
          const bool touches_0 = i == 0 || l.peer == 0;
          CHECK(l.shm == (variant == 0 && !touches_0 && l.link == LinkKind::kData));
        }
      }
    }
  }

  TEST_CASE("shm: a node that stops leaves no segment, its neighbour sees a clean down") {
    Cluster c(Kind::kShm, ring_topology(2));
    check_link(c.node(0), c.node(1), 0);
    c.node(1).stop();
    CHECK(eventually([&] { return !c.node(0).link_up(1, LinkKind::kData); }));
    bool clean = false;
    for (const auto& e : c.node(0).events())
      if (e.type == LinkEventType::kDown && e.peer == 1 && e.link == LinkKind::kData)
        clean = e.clean;
    CHECK(clean);
    const std::string mine = "rumor-" + std::to_string(::getpid()) + "-";
    for (const auto& e : std::filesystem::directory_iterator("/dev/shm"))
      CHECK_MESSAGE(e.path().filename().string().rfind(mine, 0) != 0, e.path());
  }
}
