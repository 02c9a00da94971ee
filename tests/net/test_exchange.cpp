// Message exchange over both transports: every node receives exactly what its in-neighbours
// sent, on every topology of topologies/ and on small generated ones.
#include <doctest/doctest.h>

#include <filesystem>
#include <map>
#include <set>
#include <thread>

#include "net_fixture.hpp"
#include "rumor/common/error.hpp"

using namespace rumor;
using namespace rumor::net;
using namespace rumor::net::testing;

namespace {

// The payload node `from` sends to `to` in round r: distinct per (from, to, r) and of a
// length that varies, including empty.
std::vector<float> payload_for(int from, int to, std::int64_t r) {
  const std::size_t len = static_cast<std::size_t>((from * 7 + to * 3 + r) % 5) * 13;
  std::vector<float> v(len);
  for (std::size_t k = 0; k < len; ++k)
    v[k] = static_cast<float>(from * 1000 + to) + static_cast<float>(r) * 0.25f +
           static_cast<float>(k) * 1e-3f;
  return v;
}

// Each node sends one message per round to out_neighbors(i, r) for r over one period, then
// takes exactly in_neighbors(i, r) messages back and checks their contents; finally the
// mailboxes must be empty (nothing extra arrived).
void exchange(Cluster& c, int rounds) {
  const Topology& t = c.topology();
  const int n = t.size();
  for (std::int64_t r = 0; r < rounds; ++r) {
    for (int i = 0; i < n; ++i) {
      for (int j : t.out_neighbors(i, r)) {
        Message m;
        m.round = r;
        m.codec = 0;
        m.scalars = {0.5 * i, static_cast<double>(r)};
        m.not_triggered = (i + j + r) % 3 == 0;
        m.payload =
            Payload::share(std::make_shared<const std::vector<float>>(payload_for(i, j, r)));
        REQUIRE(c.node(i).send(j, std::move(m)));
      }
    }
  }
  for (std::int64_t r = 0; r < rounds; ++r) {
    for (int i = 0; i < n; ++i) {
      for (int j : t.in_neighbors(i, r)) {
        auto m = c.node(i).take(j, r, kWait);
        REQUIRE_MESSAGE(m.has_value(), "node ", i, " missing round ", r, " from ", j);
        CHECK(m->sender == j);
        CHECK(m->link == LinkKind::kData);
        CHECK(m->scalars == std::vector<double>{0.5 * j, static_cast<double>(r)});
        CHECK(m->not_triggered == ((i + j + r) % 3 == 0));
        CHECK(m->payload.to_floats() == payload_for(j, i, r));
      }
    }
  }
  for (int i = 0; i < n; ++i) CHECK_MESSAGE(c.node(i).pending() == 0, "node ", i);
  // Counters agree with what was sent.
  for (int i = 0; i < n; ++i) {
    std::uint64_t expect_sent = 0, expect_recv = 0;
    for (std::int64_t r = 0; r < rounds; ++r) {
      expect_sent += t.out_neighbors(i, r).size();
      expect_recv += t.in_neighbors(i, r).size();
    }
    // The sender counts a message when its write completes, which may be just after the
    // receiver has it: give the counter a bounded moment to catch up.
    for (int k = 0; k < 500 && c.node(i).stats().data_msgs_sent < expect_sent; ++k)
      std::this_thread::sleep_for(10ms);
    const auto s = c.node(i).stats();
    CHECK(s.data_msgs_sent == expect_sent);
    CHECK(s.data_msgs_recv == expect_recv);
    CHECK(s.drops == 0);
  }
}

std::vector<std::string> topology_files() {
  std::vector<std::string> out;
  const std::filesystem::path dir = std::filesystem::path(RUMOR_SOURCE_DIR) / "topologies";
  if (!std::filesystem::exists(dir)) return out;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    if (e.path().extension() == ".json") out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

TEST_SUITE("net") {
  TEST_CASE("every topology file: each node receives exactly its in-neighbours' messages") {
    const auto files = topology_files();
    REQUIRE_FALSE(files.empty());
    for (Kind kind : {Kind::kInProc, Kind::kTcp, Kind::kShm}) {
      for (const auto& f : files) {
        CAPTURE(f);
        const std::string kind_name = name(kind);
        CAPTURE(kind_name);
        const Topology t = load_topology(f);
        Cluster c(kind, t);
        exchange(c, t.period() * 2);
      }
    }
  }

  TEST_CASE("small generated topologies over both transports") {
    std::vector<Topology> ts;
    ts.push_back(ring_topology(2));
    ts.push_back(ring_topology(3));
    ts.push_back(small_topology(4, {{0, 1}, {0, 2}, {0, 3}}));                        // star
    ts.push_back(small_topology(5, {{0, 1}, {1, 2}, {2, 3}, {3, 4}}));                // line
    ts.push_back(small_topology(4, {{0, 1}, {1, 2}, {2, 3}, {3, 0}, {0, 2}}, true));  // directed
    for (Kind kind : {Kind::kInProc, Kind::kTcp, Kind::kShm}) {
      for (const auto& t : ts) {
        CAPTURE(t.name());
        const std::string kind_name = name(kind);
        CAPTURE(kind_name);
        Cluster c(kind, t);
        exchange(c, 3);
      }
    }
  }

  TEST_CASE("control ring traffic is separate and counted apart") {
    for (Kind kind : {Kind::kInProc, Kind::kTcp, Kind::kShm}) {
      const std::string kind_name = name(kind);
      CAPTURE(kind_name);
      // A line: 0-3 are control-ring neighbours but not data neighbours.
      Cluster c(kind, small_topology(4, {{0, 1}, {1, 2}, {2, 3}}));
      CHECK(c.node(0).peers(LinkKind::kControl) == std::vector<int>{1, 3});
      CHECK(c.node(0).peers(LinkKind::kData) == std::vector<int>{1});
      CHECK_THROWS_AS(c.node(0).send(3, Message{}), ProtocolError);
      for (int i = 0; i < 4; ++i) {
        for (int j : c.node(i).peers(LinkKind::kControl)) {
          Message m;
          m.kind = MessageKind::kBarrier;
          m.link = LinkKind::kControl;
          m.round = 7;
          m.payload = Payload::copy_of(std::vector<std::uint8_t>{1, 2, 3});
          REQUIRE(c.node(i).send(j, std::move(m)));
        }
      }
      for (int i = 0; i < 4; ++i) {
        for (int j : c.node(i).peers(LinkKind::kControl)) {
          MessageFilter f;
          f.sender = j;
          f.link = LinkKind::kControl;
          f.kind = MessageKind::kBarrier;
          auto m = c.node(i).take(f, kWait);
          REQUIRE(m.has_value());
          CHECK(m->round == 7);
          CHECK(m->payload.size() == 3);
        }
        for (int k = 0; k < 500 && c.node(i).stats().ctrl_bytes_sent == 0; ++k)
          std::this_thread::sleep_for(10ms);  // counted when the write completes
        const auto s = c.node(i).stats();
        CHECK(s.data_msgs_sent == 0);
        CHECK(s.data_bytes_recv < 200);  // heartbeats at most, no messages
        CHECK(s.ctrl_bytes_sent > 0);
        CHECK(s.ctrl_bytes_recv > 0);
      }
    }
  }

  TEST_CASE("one payload buffer goes to several neighbours without copies (in-process)") {
    Cluster c(Kind::kInProc, small_topology(3, {{0, 1}, {0, 2}}));
    auto v = std::make_shared<const std::vector<float>>(1000, 1.5f);
    const auto p = Payload::share(v);
    for (int j : {1, 2}) {
      Message m;
      m.payload = p;
      REQUIRE(c.node(0).send(j, std::move(m)));
    }
    for (int j : {1, 2}) {
      auto m = c.node(j).take(0, 0, kWait);
      REQUIRE(m.has_value());
      CHECK(m->payload.data() == p.data());  // the very same memory
    }
  }

  TEST_CASE("large payload round trip over TCP and shared memory") {
    std::vector<float> big(3'000'000);
    for (std::size_t k = 0; k < big.size(); ++k) big[k] = static_cast<float>(k % 9973);
    auto v = std::make_shared<const std::vector<float>>(big);
    for (Kind kind : {Kind::kTcp, Kind::kShm}) {
      const std::string kind_name = name(kind);
      CAPTURE(kind_name);
      Cluster c(kind, ring_topology(2));
      for (int rep = 0; rep < 3; ++rep) {
        Message m;
        m.round = rep;
        m.payload = Payload::share(v);
        REQUIRE(c.node(0).send(1, std::move(m)));
      }
      for (int rep = 0; rep < 3; ++rep) {
        auto m = c.node(1).take(0, rep, kWait);
        REQUIRE(m.has_value());
        CHECK(m->payload.to_floats() == big);
      }
    }
  }

  TEST_CASE("shared memory: control links stay on TCP, the byte counts match TCP's") {
    const Topology t = small_topology(4, {{0, 1}, {1, 2}, {2, 3}});
    std::map<Kind, std::vector<TransportStats>> stats;
    TransportOptions o = quick_options();
    o.heartbeat_interval = std::chrono::hours(1);  // no heartbeats: bytes are messages
    o.heartbeat_timeout = 0ms;
    for (Kind kind : {Kind::kTcp, Kind::kShm}) {
      Cluster c(kind, t, o);
      exchange(c, 4);
      for (int i = 0; i < 4; ++i) {
        stats[kind].push_back(c.node(i).stats());
        for (const auto& l : stats[kind].back().links)
          CHECK(l.shm == (kind == Kind::kShm && l.link == LinkKind::kData));
      }
    }
    for (int i = 0; i < 4; ++i) {
      CAPTURE(i);
      CHECK(stats[Kind::kShm][i].data_msgs_recv == stats[Kind::kTcp][i].data_msgs_recv);
      // The same message bytes, plus the shared-memory setup frames (two at most per link).
      const auto a = stats[Kind::kShm][i].data_bytes_recv;
      const auto b = stats[Kind::kTcp][i].data_bytes_recv;
      CHECK(a >= b);
      CHECK(a <= b + 400);
    }
  }

  TEST_CASE("mailbox filters: by round and sender, timeouts, drain") {
    Cluster c(Kind::kInProc, ring_topology(3));
    for (int r : {2, 1, 0}) {
      Message m;
      m.round = r;
      REQUIRE(c.node(0).send(1, m));
      REQUIRE(c.node(2).send(1, m));
    }
    auto m = c.node(1).take(2, 1, kWait);
    REQUIRE(m.has_value());
    CHECK(m->sender == 2);
    CHECK(m->round == 1);
    CHECK_FALSE(c.node(1).take(2, 9, 10ms).has_value());
    CHECK(c.node(1).drain().size() == 5);
    CHECK(c.node(1).pending() == 0);
  }
}
