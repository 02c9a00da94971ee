// What a hostile or broken neighbour can send, beyond the gossip gate of test_methods: rejoin
// requests and offers that the method cannot use, notices it never sends, and side values at
// the edges of their types. Most cases were found by the fuzz targets (fuzz/gossip).
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <memory>

#include "harness.hpp"
#include "rumor/gossip/driver.hpp"

using namespace rumor;
using namespace rumor::gossip;
using namespace rumor::gossip::testing;

namespace {

bool finite(const std::vector<float>& v) {
  for (float x : v)
    if (!std::isfinite(x)) return false;
  return true;
}

// Node 0's rejoin offer at round 3 to node 1, which asks without a checkpoint.
net::Message offer_to_node1(Sim& sim) {
  net::Message req = sim.methods[1]->rejoin_request(0, false);
  req.sender = 1;
  net::Message offer = sim.methods[0]->rejoin_offer(req, 3);
  offer.sender = 0;
  return offer;
}

// The offer is refused, counted against node 0, and node 1's model is left as it was.
void check_refused(Sim& sim, const net::Message& offer) {
  const std::vector<float> before = sim.models[1];
  Traffic traffic;
  CHECK_FALSE(accept_rejoin(*sim.methods[1], offer, 100, traffic));
  CHECK(traffic.rejected_from(0) == 1);
  CHECK(sim.models[1] == before);
}

// An event-triggered method's "nothing this round" notice from node 0 (codec tag 0, as in
// the harness's runs).
net::Message not_triggered_notice() {
  net::Message m;
  m.kind = net::MessageKind::kGossip;
  m.sender = 0;
  m.not_triggered = true;
  return m;
}

}  // namespace

TEST_SUITE("gossip") {
  TEST_CASE("a rejoin offer of the wrong size is refused and counted, and changes nothing") {
    Sim sim(gen("ring", 4), "sgp", "fp32", 8);
    net::Message offer = offer_to_node1(sim);
    offer.payload = net::Payload::copy_of(std::vector<std::uint8_t>(5, 0));
    check_refused(sim, offer);
  }

  TEST_CASE("a rejoin offer for a round outside the run is refused") {
    Sim sim(gen("ring", 4), "dpsgd", "fp32", 8);
    net::Message offer = offer_to_node1(sim);
    Traffic traffic;
    for (std::int64_t r :
         {std::int64_t{-1}, std::int64_t{101}, std::numeric_limits<std::int64_t>::max()}) {
      offer.round = r;
      CHECK_FALSE(accept_rejoin(*sim.methods[1], offer, 100, traffic));
    }
    CHECK(traffic.rejected_from(0) == 3);
    offer.round = 3;
    CHECK(accept_rejoin(*sim.methods[1], offer, 100, traffic));
  }

  TEST_CASE("a malformed rejoin request is refused and its sender stays out of the mixing") {
    Sim sim(gen("ring", 4), "sgp", "fp32", 8);
    net::Message req = sim.methods[0]->rejoin_request(1, false);
    req.sender = 0;
    req.payload = net::Payload();  // robust push-sum requests carry the running sums
    Traffic traffic;
    CHECK_FALSE(answer_rejoin(*sim.methods[1], req, 5, traffic).has_value());
    CHECK(traffic.rejected_from(0) == 1);
    CHECK(sim.methods[1]->peer_is_down(0));
  }

  TEST_CASE("a refusal names the largest round a peer can send without overflowing") {
    // Under UBSan (tools/sanitize.sh) round + 1 would stop here.
    net::Message m;
    m.sender = 2;
    m.round = std::numeric_limits<std::int64_t>::max();
    Traffic traffic;
    traffic.add_rejected(m, {"round too far ahead", "test"});
    CHECK(traffic.rejected_from(2) == 1);
  }

  TEST_CASE("a 'not triggered' notice is refused by methods that never send one") {
    // Found by fuzz_gossip_dpsgd: the gate let the empty notice through and absorb() threw.
    for (const char* method : {"dpsgd", "gt", "qgm"}) {
      CAPTURE(method);
      Sim sim(gen("ring", 4), method, "fp32", 8);
      CHECK(sim.methods[1]->check(not_triggered_notice()).reason ==
            "unexpected not-triggered notice");
    }
    Sim choco(gen("ring", 4), "choco", "topk:0.5", 8);
    CHECK_FALSE(choco.methods[1]->check(not_triggered_notice()));
  }

  TEST_CASE("rejoin offers with values that are not finite are refused, the model kept") {
    // Found by fuzz_gossip_local: the default hand-over averaged NaN into the model.
    for (const char* method : {"local", "dpsgd", "choco"}) {
      CAPTURE(method);
      Sim sim(gen("ring", 4), method, std::string(method) == "choco" ? "topk:0.5" : "fp32", 8);
      net::Message offer = offer_to_node1(sim);
      auto v = offer.payload.to_floats();
      v[2] = std::numeric_limits<float>::quiet_NaN();
      offer.payload = net::Payload::share(std::make_shared<const std::vector<float>>(v));
      check_refused(sim, offer);
    }
  }

  TEST_CASE("robust sgp refuses rejoin running sums beyond what the rounds allow") {
    Sim sim(gen("ring", 4), "sgp", "fp32", 8);
    net::Message offer = offer_to_node1(sim);
    // Payload: half of the model (fp32), then the running sum towards node 1 (fp64).
    std::vector<std::uint8_t> bytes(offer.payload.data(),
                                    offer.payload.data() + offer.payload.size());
    const double huge = 1e300;
    std::memcpy(bytes.data() + 8 * sizeof(float), &huge, sizeof huge);
    offer.payload = net::Payload::take(std::move(bytes));
    check_refused(sim, offer);
    // A request whose running sums are not finite is refused as well.
    net::Message bad = sim.methods[0]->rejoin_request(1, false);
    bad.sender = 0;
    std::vector<double> nan(8, std::numeric_limits<double>::quiet_NaN());
    bad.payload = net::Payload::share(std::make_shared<const std::vector<double>>(nan));
    Traffic traffic;
    CHECK_FALSE(answer_rejoin(*sim.methods[1], bad, 3, traffic).has_value());
  }

  TEST_CASE("a push-sum weight near zero in a rejoin offer leaves the model finite") {
    // Found by fuzz_gossip_sgp: z = x / p overflowed to infinity for p = 1e-300.
    Sim sim(gen("ring", 4), "sgp", "fp32", 8);
    net::Message offer = offer_to_node1(sim);
    offer.scalars[0] = 1e-300;
    Traffic traffic;
    CHECK(accept_rejoin(*sim.methods[1], offer, 100, traffic));
    CHECK(finite(sim.models[1]));
  }
}
