// The in-process link model in simulated time: arrival stamps, serial links, per-link
// overrides, seeded loss. Nothing here waits: delivery is immediate.
#include <doctest/doctest.h>

#include "net_fixture.hpp"
#include "rumor/net/inproc.hpp"

using namespace rumor;
using namespace rumor::net;
using namespace rumor::net::testing;

namespace {

Message sized(std::int64_t round, std::size_t bytes, double send_s,
              LinkKind link = LinkKind::kData) {
  Message m;
  m.round = round;
  m.link = link;
  m.sim_time_s = send_s;
  m.payload = Payload::copy_of(std::vector<std::uint8_t>(bytes, 7));
  return m;
}

struct SimNet {
  InProcNetwork net;
  std::vector<std::unique_ptr<Transport>> t;
  SimNet(const LinkModel& model, const Topology& topo) : net(model) {
    for (int i = 0; i < topo.size(); ++i) t.push_back(net.make_transport(quick_options()));
    for (int i = 0; i < topo.size(); ++i) t[i]->start(topo, i);
    for (int i = 0; i < topo.size(); ++i) t[i]->wait_connected(kWait);
  }
  // The next message from `from` on `link`; delivery is immediate in simulated time.
  Message take(int to, int from, LinkKind link = LinkKind::kData) {
    MessageFilter f;
    f.sender = from;
    f.link = link;
    auto m = t[to]->take(f, 0ms);
    REQUIRE(m.has_value());
    return std::move(*m);
  }
};

}  // namespace

TEST_SUITE("net") {
  TEST_CASE("simulated links: arrival = send + size / bandwidth + latency, serial per link") {
    LinkModel model;
    model.simulated = true;
    model.latency_s = 0.01;
    model.bandwidth_Bps = 1e6;
    SimNet s(model, ring_topology(3));
    s.t[0]->send(1, sized(0, 1000, 1.0));
    s.t[0]->send(1, sized(1, 1000, 1.0));  // same link, same time: waits for the first
    s.t[0]->send(2, sized(0, 1000, 1.0));  // another link: in parallel
    const double tx = static_cast<double>(wire_size(sized(0, 1000, 0))) / 1e6;
    CHECK(s.take(1, 0).sim_time_s == doctest::Approx(1.0 + tx + 0.01));
    CHECK(s.take(1, 0).sim_time_s == doctest::Approx(1.0 + 2 * tx + 0.01));
    CHECK(s.take(2, 0).sim_time_s == doctest::Approx(1.0 + tx + 0.01));
    // A link that was idle starts at the send time, not where it last stopped.
    s.t[0]->send(1, sized(2, 1000, 5.0));
    CHECK(s.take(1, 0).sim_time_s == doctest::Approx(5.0 + tx + 0.01));
  }

  TEST_CASE("simulated links: overrides apply to their link, control links use the defaults") {
    LinkModel model;
    model.simulated = true;
    model.latency_s = 0.01;
    model.overrides[{0, 1}] = LinkParams{0.5, 0.0, 0.0};
    SimNet s(model, ring_topology(3));
    s.t[0]->send(1, sized(0, 10, 0.0));
    s.t[1]->send(0, sized(0, 10, 0.0));
    s.t[0]->send(2, sized(0, 10, 0.0));
    s.t[0]->send(1, sized(0, 10, 0.0, LinkKind::kControl));
    CHECK(s.take(1, 0).sim_time_s == doctest::Approx(0.5));
    CHECK(s.take(0, 1).sim_time_s == doctest::Approx(0.01));  // directed override
    CHECK(s.take(2, 0).sim_time_s == doctest::Approx(0.01));
    CHECK(s.take(1, 0, LinkKind::kControl).sim_time_s == doctest::Approx(0.01));
  }

  TEST_CASE("simulated links: seeded loss on data links only, and a lossless switch") {
    auto delivered = [](std::uint64_t seed, bool lossless) {
      LinkModel model;
      model.simulated = true;
      model.loss = 0.3;
      model.seed = seed;
      SimNet s(model, ring_topology(2));
      s.net.set_lossless(lossless);
      std::vector<std::int64_t> got;
      for (int r = 0; r < 200; ++r) s.t[0]->send(1, sized(r, 16, r));
      for (int r = 0; r < 50; ++r) s.t[0]->send(1, sized(r, 16, r, LinkKind::kControl));
      MessageFilter data;
      data.link = LinkKind::kData;
      while (auto m = s.t[1]->take(data, 0ms)) got.push_back(m->round);
      MessageFilter control;
      control.link = LinkKind::kControl;
      int ctrl = 0;
      while (s.t[1]->take(control, 0ms)) ++ctrl;
      CHECK(ctrl == 50);
      CHECK(s.t[0]->stats().drops == 200 - got.size());
      return got;
    };
    const auto a = delivered(1, false);
    CHECK(a == delivered(1, false));
    CHECK(a != delivered(2, false));
    CHECK(a.size() > 110);
    CHECK(a.size() < 170);
    CHECK(delivered(1, true).size() == 200);
  }
}
