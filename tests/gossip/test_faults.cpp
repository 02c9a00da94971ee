// Faults at the method level: lost and late messages (robust push-sum), peers marked down,
// and the rejoin hand-over. A hand-rolled synchronous driver decides what each message
// goes through, so every case is deterministic.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <map>

#include "harness.hpp"
#include "rumor/common/error.hpp"

using namespace rumor;
using namespace rumor::gossip;
using namespace rumor::gossip::testing;

namespace {

// A transport whose one data link is down for the first `down_looks` looks, then up again;
// nothing ever arrives (the message sent before the reconnect was lost with the link).
class FlappingLink : public net::Transport {
 public:
  explicit FlappingLink(int down_looks) : down_looks_(down_looks) {}
  void start(const Topology&, int) override {}
  void wait_connected(std::optional<std::chrono::milliseconds>) override {}
  bool send(int, net::Message) override { return true; }
  void stop() override {}
  net::TransportStats stats() const override { return {}; }
  bool link_up(int, net::LinkKind) const override { return looks_++ >= down_looks_; }

 private:
  int down_looks_;
  mutable int looks_ = 0;
};

// N methods on vectors; messages are routed by hand.
struct Net {
  Topology topology;
  std::vector<std::vector<float>> models;
  std::vector<std::unique_ptr<Method>> methods;
  std::vector<bool> alive;
  std::map<std::int64_t, std::vector<std::pair<int, net::Message>>> in_flight;  // by due round
  std::string method_name, codec;
  nlohmann::json params;
  // As MethodContext::lossy_links (the in-process loss model sets it); false: links lose
  // nothing on their own, and with notify_losses a lost message is reported to its sender
  // between rounds, as the runtime reports a dropped send or a broken link.
  bool lossy_links;
  bool notify_losses = false;

  Net(Topology t, std::string method, nlohmann::json p = nlohmann::json::object(),
      std::string codec_spec = "fp32", std::size_t dim = 12, bool lossy = true)
      : topology(std::move(t)),
        method_name(std::move(method)),
        codec(std::move(codec_spec)),
        params(std::move(p)),
        lossy_links(lossy) {
    const int n = topology.size();
    models.resize(n);
    alive.assign(n, true);
    for (int i = 0; i < n; ++i) {
      Rng rng = Rng::derive(11, static_cast<std::uint64_t>(i));
      models[i].resize(dim);
      for (auto& v : models[i]) v = static_cast<float>(rng.uniform() * 2 - 1);
      methods.push_back(make(i));
    }
  }

  std::unique_ptr<Method> make(int i) {
    MethodContext ctx;
    ctx.self = i;
    ctx.topology = &topology;
    ctx.seed = 11;
    ctx.codec = codec::make_codec(codec);
    ctx.params = params;
    ctx.identical_init = false;
    ctx.lossy_links = lossy_links;
    auto m = make_method(method_name, ctx);
    m->init(models[i]);
    return m;
  }

  // One round: every live node produces; fate(from, to) says when a message arrives
  // (0: this round, k > 0: k rounds late, < 0: lost); each live node absorbs what is due.
  // Returns how many expected messages were missing (the driver's deadline would pass).
  template <typename Fate>
  int round(std::int64_t r, Fate fate) {
    const int n = topology.size();
    std::vector<std::pair<int, int>> lost;
    for (int i = 0; i < n; ++i) {
      if (!alive[i]) continue;
      for (auto& out : methods[i]->produce(r, 0)) {
        out.message.sender = i;
        const int delay = fate(i, out.to);
        if (delay < 0) lost.push_back({i, out.to});
        if (delay >= 0 && alive[out.to])
          in_flight[r + delay].push_back({out.to, std::move(out.message)});
      }
    }
    std::vector<std::vector<net::Message>> inbox(n);
    for (auto& [to, m] : in_flight[r]) inbox[to].push_back(std::move(m));
    in_flight.erase(r);
    int missing = 0;
    for (int i = 0; i < n; ++i) {
      if (!alive[i]) continue;
      for (const auto& e : methods[i]->expect(r, 0)) {
        bool got = false;
        for (const auto& m : inbox[i]) got = got || (m.sender == e.sender && m.round == e.round);
        missing += got ? 0 : 1;
      }
      // Late messages of earlier rounds reach only methods that absorb them.
      if (!methods[i]->absorbs_early())
        std::erase_if(inbox[i], [r](const net::Message& m) { return m.round != r; });
      methods[i]->absorb(r, 0, inbox[i]);
    }
    if (notify_losses)
      for (const auto& [from, to] : lost) methods[from]->delivery_failed(to);
    return missing;
  }
  int round(std::int64_t r) {
    return round(r, [](int, int) { return 0; });
  }

  // Sum over every node (dead ones too) of its numerator x = p z, all coordinates: what
  // push-sum without local steps conserves.
  double total_mass() const {
    double s = 0;
    for (std::size_t i = 0; i < methods.size(); ++i)
      for (float v : models[i]) s += methods[i]->weight() * v;
    return s;
  }
  // The rejoin hand-shake of node `node` with `peers` at `round` (messages passed directly).
  void rejoin(int node, const std::vector<int>& peers, bool from_checkpoint, std::int64_t round) {
    for (int j : peers) {
      auto req = methods[node]->rejoin_request(j, from_checkpoint);
      req.sender = node;
      auto offer = methods[j]->rejoin_offer(req, round);
      offer.sender = j;
      methods[node]->rejoin_accept(offer);
    }
  }
  double total_weight() const {
    double s = 0;
    for (std::size_t i = 0; i < methods.size(); ++i)
      if (alive[i]) s += methods[i]->weight();
    return s;
  }
  // Max over live pairs of the largest coordinate difference.
  double spread() const {
    double worst = 0;
    for (std::size_t i = 0; i < models.size(); ++i)
      for (std::size_t j = 0; j < models.size(); ++j)
        if (alive[i] && alive[j])
          for (std::size_t k = 0; k < models[i].size(); ++k)
            worst = std::max(worst, static_cast<double>(std::abs(models[i][k] - models[j][k])));
    return worst;
  }
};

// Deterministic loss: a message is lost with probability `p`, drawn from (seed, round, edge).
struct Lossy {
  double p;
  std::int64_t r = 0;
  int operator()(int from, int to) const {
    Rng rng = Rng::derive(99, static_cast<std::uint64_t>(r), static_cast<std::uint64_t>(from),
                          static_cast<std::uint64_t>(to));
    return rng.uniform() < p ? -1 : 0;
  }
};

double run_lossy(Net& net, int rounds, double loss) {
  for (int r = 0; r < rounds; ++r) net.round(r, Lossy{loss, r});
  return net.total_weight();
}

}  // namespace

TEST_SUITE("gossip") {
  TEST_CASE("robust sgp keeps the total weight at n under 10% message loss") {
    for (const std::string topo : {"exponential", "ring"}) {
      CAPTURE(topo);
      Net robust(gen(topo, 16), "sgp");
      Net plain(gen(topo, 16), "sgp", {{"robust", false}});
      std::vector<double> mean0(robust.models[0].size(), 0.0);
      for (const auto& m : robust.models)
        for (std::size_t k = 0; k < m.size(); ++k) mean0[k] += m[k] / 16.0;
      run_lossy(robust, 40, 0.1);
      const double plain_w = run_lossy(plain, 40, 0.1);
      // The sums in flight are delivered by the next loss-free message on every edge (the
      // exponential graph uses each edge once per period of 4 rounds).
      for (int r = 40; r < 48; ++r) {
        robust.round(r);
        plain.round(r);
      }
      MESSAGE(topo, "16, 10% loss, 40 rounds: total weight robust ", robust.total_weight(),
              ", plain ", plain.total_weight());
      CHECK(std::abs(robust.total_weight() - 16.0) < 1e-9);
      // Plain push-sum lost the weight of every lost message for good.
      CHECK(plain_w < 16.0 - 0.5);
      CHECK(std::abs(plain.total_weight() - plain_w) < 1e-9);
      // Robust push-sum still converges to the exact initial average.
      for (int r = 48; r < 200; ++r) robust.round(r, Lossy{0.1, r});
      for (int r = 200; r < 208; ++r) robust.round(r);
      CHECK(std::abs(robust.total_weight() - 16.0) < 1e-9);
      for (const auto& m : robust.models)
        for (std::size_t k = 0; k < m.size(); ++k)
          CHECK(m[k] == doctest::Approx(mean0[k]).epsilon(1e-4));
    }
  }

  TEST_CASE("robust sgp on loss-free links sends fp32 shares and repairs a reported loss") {
    const auto topo = gen("exponential", 16);
    // Fault-free: the same numbers as plain push-sum, at half the bytes of fp64 sums.
    Net tracked(topo, "sgp", {}, "fp32", 12, false), plain(topo, "sgp", {{"robust", false}});
    Net sums(topo, "sgp");
    for (int r = 0; r < 12; ++r) {
      tracked.round(r);
      plain.round(r);
      sums.round(r);
    }
    for (int i = 0; i < 16; ++i) {
      CHECK(std::memcmp(tracked.models[i].data(), plain.models[i].data(), 12 * 4) == 0);
      CHECK(tracked.methods[i]->weight() == plain.methods[i]->weight());
    }
    const auto m_tracked = tracked.methods[0]->produce(12, 0);
    const auto m_sums = sums.methods[0]->produce(12, 0);
    REQUIRE(!m_tracked.empty());
    CHECK(m_tracked[0].message.payload.size() * 2 < m_sums[0].message.payload.size() + 24);
    // Losses reported to the sender are repaired by the running sums it then sends once;
    // unreported, they are lost for good (what the loss model's sums on every message are for).
    Net told(topo, "sgp", {}, "fp32", 12, false), untold(topo, "sgp", {}, "fp32", 12, false);
    told.notify_losses = true;
    run_lossy(told, 40, 0.1);
    const double untold_w = run_lossy(untold, 40, 0.1);
    for (int r = 40; r < 48; ++r) {
      told.round(r);
      untold.round(r);
    }
    CHECK(std::abs(told.total_weight() - 16.0) < 1e-9);
    CHECK(untold_w < 16.0 - 0.5);
  }

  TEST_CASE(
      "robust sgp on loss-free links: repairs across the sums' fp32 blocks keep the average") {
    // Reported losses over 100 rounds: the running sums gather each block of rounds in fp32
    // and fold it into fp64, and a repair's sums must hold every share of the open block.
    Net net(gen("exponential", 16), "sgp", {}, "fp32", 12, false);
    net.notify_losses = true;
    std::vector<double> mean0(12, 0.0);
    for (const auto& m : net.models)
      for (std::size_t k = 0; k < m.size(); ++k) mean0[k] += m[k] / 16.0;
    run_lossy(net, 100, 0.1);
    for (int r = 100; r < 300; ++r) REQUIRE(net.round(r) == 0);
    CHECK(std::abs(net.total_weight() - 16.0) < 1e-9);
    for (const auto& m : net.models)
      for (std::size_t k = 0; k < m.size(); ++k)
        CHECK(m[k] == doctest::Approx(mean0[k]).epsilon(1e-4));
  }

  TEST_CASE("robust sgp: each edge's sums are its own, though out-edges share them while equal") {
    Net net(gen("ring", 8), "sgp", {}, "fp32", 12, false);  // loss-free links: sums kept
    auto sums = [&net](int node, const std::string& name) {
      for (const auto& b : net.methods[node]->state_buffers())
        if (b.name == name) return std::vector<float>(b.data.begin(), b.data.end());
      FAIL("no state buffer " << name << " at node " << node);
      return std::vector<float>{};
    };
    for (int r = 0; r < 40; ++r) net.round(r);  // past the first fp32 block of the sums
    // Fault-free: what node 2 pushed on each edge is what its neighbours applied, bit for bit.
    CHECK(sums(2, "sgp_sigma_to_1") == sums(1, "sgp_rho_from_2"));
    CHECK(sums(2, "sgp_sigma_to_3") == sums(3, "sgp_rho_from_2"));
    CHECK(sums(2, "sgp_sigma_to_1") == sums(2, "sgp_sigma_to_3"));
    // Node 3 dies; node 2 pushes to node 1 alone from then on: the edge to 3 keeps its sums.
    const auto to_3 = sums(2, "sgp_sigma_to_3");
    net.alive[3] = false;
    net.methods[2]->set_peer_down(3, 40);
    net.methods[4]->set_peer_down(3, 40);
    for (int r = 40; r < 75; ++r) net.round(r);
    CHECK(sums(2, "sgp_sigma_to_3") == to_3);
    CHECK(sums(2, "sgp_sigma_to_1") != to_3);
    CHECK(sums(2, "sgp_sigma_to_1") == sums(1, "sgp_rho_from_2"));
  }

  TEST_CASE("robust sgp absorbs late and reordered messages without counting them twice") {
    Net net(gen("exponential", 8), "sgp", {{"overlap", true}, {"tau", 3}});
    // Every third message arrives two rounds late, so newer sums overtake older ones.
    std::int64_t count = 0;
    for (int r = 0; r < 30; ++r) net.round(r, [&](int, int) { return ++count % 3 == 0 ? 2 : 0; });
    for (int r = 30; r < 40; ++r) net.round(r);
    CHECK(std::abs(net.total_weight() - 8.0) < 1e-9);
  }

  TEST_CASE("robust sgp under loss is deterministic") {
    Net a(gen("exponential", 8), "sgp"), b(gen("exponential", 8), "sgp");
    run_lossy(a, 20, 0.2);
    run_lossy(b, 20, 0.2);
    for (int i = 0; i < 8; ++i) {
      CHECK(a.methods[i]->weight() == b.methods[i]->weight());
      CHECK(std::memcmp(a.models[i].data(), b.models[i].data(), a.models[i].size() * 4) == 0);
    }
  }

  TEST_CASE("robust sgp refuses a lossy codec and says what to do") {
    CHECK_THROWS_WITH_AS(Net(gen("ring", 4), "sgp", nlohmann::json::object(), "fp16"),
                         doctest::Contains("method.robust false"), ConfigError);
    CHECK_NOTHROW(Net(gen("ring", 4), "sgp", {{"robust", false}}, "fp16"));
  }

  TEST_CASE("robust sgp running sums survive a checkpoint round-trip") {
    Net a(gen("exponential", 8), "sgp");
    run_lossy(a, 6, 0.2);
    // Copy node 3's state into a fresh method, then run both nets on: same results.
    Net b(gen("exponential", 8), "sgp");
    for (int i = 0; i < 8; ++i) {
      b.models[i] = a.models[i];
      b.methods[i] = b.make(i);
      auto from = a.methods[i]->state_buffers();
      auto to = b.methods[i]->state_buffers();
      REQUIRE(from.size() == to.size());
      for (std::size_t k = 0; k < from.size(); ++k) {
        CHECK(from[k].name == to[k].name);
        to[k].restore(std::vector<float>(from[k].data.begin(), from[k].data.end()));
      }
      b.methods[i]->load_state(nlohmann::json::parse(a.methods[i]->save_state().dump()));
    }
    for (int r = 6; r < 12; ++r) {
      a.round(r, Lossy{0.2, r});
      b.round(r, Lossy{0.2, r});
    }
    for (int i = 0; i < 8; ++i) CHECK(a.methods[i]->weight() == b.methods[i]->weight());
    // A crafted state naming an edge this node does not have is refused by name.
    auto bad = a.methods[0]->save_state();
    bad["edges"].push_back({{"to", 5}, {"w", 1.0}});
    CHECK_THROWS_WITH_AS(b.methods[0]->load_state(bad), doctest::Contains("peer 5"), ProtocolError);
  }

  TEST_CASE("a peer marked down is left out: nobody waits for it, survivors reach consensus") {
    for (const std::string method : {"dpsgd", "qgm", "sgp", "choco", "squarm"}) {
      CAPTURE(method);
      const bool compressed = method == "choco" || method == "squarm";
      Net net(gen("ring", 8), method,
              compressed ? nlohmann::json{{"gamma", 0.4}} : nlohmann::json::object(),
              compressed ? "topk:0.5" : "fp32");
      for (int r = 0; r < 5; ++r) CHECK(net.round(r) == 0);
      const double w_before = net.total_weight();
      // Node 3 dies after round 4; its neighbours learn it before round 5.
      net.alive[3] = false;
      net.methods[2]->set_peer_down(3, 5);
      net.methods[4]->set_peer_down(3, 5);
      CHECK(net.methods[2]->peer_is_down(3));
      const double survivors_w = net.total_weight();
      for (int r = 5; r < 400; ++r) REQUIRE(net.round(r) == 0);
      CHECK(net.spread() < (compressed ? 1e-2 : 1e-4));
      if (method == "sgp") {
        // Its neighbours kept the shares they would have sent: survivors keep their mass.
        CHECK(std::abs(net.total_weight() - survivors_w) < 1e-9);
        CHECK(survivors_w < w_before);
      }
    }
  }

  TEST_CASE("graceful leave: push-sum hands its mass on, live Metropolis mixing keeps the mean") {
    for (const std::string method : {"sgp", "dpsgd"}) {
      CAPTURE(method);
      // Lossy sgp: running sums on the wire, some of them lost before the leave.
      Net net(gen("ring", 6), method, nlohmann::json::object(), "fp32", 12, method == "sgp");
      for (auto& m : net.methods) m->use_live_mixing(std::vector<int>(6, 2));
      for (int r = 0; r < 5; ++r) net.round(r, Lossy{0.3, r});
      const double w_before = net.total_weight();  // node 3 included
      // Node 3 leaves before round 5: its goodbyes go to 2 and 4, who tell their degree.
      for (auto& o : net.methods[3]->leave(5)) {
        o.message.sender = 3;
        REQUIRE(o.message.kind == net::MessageKind::kBye);
        net.methods[o.to]->accept_leave(o.message, 5);
      }
      net.alive[3] = false;
      for (int i : {2, 4})
        for (int j : {i - 1, i, i + 1}) net.methods[j]->note_degree(i, 6, 1);
      // Whatever was in flight to or from 3 is settled by the goodbye's running sums.
      for (auto& [due, msgs] : net.in_flight)
        std::erase_if(msgs, [](const auto& m) { return m.first == 3 || m.second.sender == 3; });
      // The goodbye also settles messages lost on 3's links: nothing less than before.
      if (method == "sgp") CHECK(net.total_weight() >= w_before - 1e-12);
      std::vector<double> mean_before(12, 0.0);
      for (int i : {0, 1, 2, 4, 5})
        for (int k = 0; k < 12; ++k) mean_before[k] += net.models[i][k] / 5.0;
      for (int r = 5; r < 600; ++r) REQUIRE(net.round(r) == 0);
      CHECK(net.spread() < 1e-4);
      if (method == "dpsgd")  // doubly stochastic on the live graph: the mean stays
        for (int k = 0; k < 12; ++k) CHECK(std::abs(net.models[0][k] - mean_before[k]) < 1e-4);
      // Once the other links' next messages repaired their losses: all 6 nodes' weight.
      if (method == "sgp") CHECK(std::abs(net.total_weight() - 6.0) < 1e-9);
    }
  }

  TEST_CASE("a goodbye with bad values or sizes is refused, and the leaver is left out") {
    Net net(gen("ring", 4), "sgp", nlohmann::json::object(), "fp32", 12, false);
    for (int r = 0; r < 3; ++r) net.round(r);
    auto byes = net.methods[1]->leave(3);
    REQUIRE(byes.size() == 2);
    auto bad = byes[0].message;
    bad.sender = 1;
    bad.scalars[0] = std::numeric_limits<double>::quiet_NaN();
    Traffic traffic;
    CHECK_FALSE(accept_leave(*net.methods[byes[0].to], bad, 3, 100, traffic));
    CHECK(traffic.msgs_rejected == 1);
    CHECK(net.methods[byes[0].to]->peer_is_down(1));
    auto cut = byes[1].message;
    cut.sender = 1;
    cut.payload = net::Payload::take(std::vector<std::uint8_t>(5, 0));
    CHECK_FALSE(accept_leave(*net.methods[byes[1].to], cut, 3, 100, traffic));
    CHECK(traffic.msgs_rejected == 2);
  }

  TEST_CASE("allreduce cannot leave a peer out and says so") {
    Net net(gen("ring", 4), "allreduce");
    CHECK_THROWS_WITH_AS(net.methods[0]->set_peer_down(1, 3), doctest::Contains("cannot continue"),
                         ProtocolError);
  }

  TEST_CASE("rejoin without a checkpoint: neighbours hand over their model and push-sum mass") {
    for (const std::string method : {"dpsgd", "qgm", "sgp", "choco"}) {
      CAPTURE(method);
      const bool compressed = method == "choco";
      Net net(gen("ring", 8), method,
              compressed ? nlohmann::json{{"gamma", 0.4}} : nlohmann::json::object(),
              compressed ? "topk:0.5" : "fp32");
      // 10% loss before the death too (robust sgp repairs it).
      for (int r = 0; r < 10; ++r) net.round(r, method == "sgp" ? Lossy{0.1, r} : Lossy{0.0, r});
      net.alive[3] = false;
      net.methods[2]->set_peer_down(3, 10);
      net.methods[4]->set_peer_down(3, 10);
      for (int r = 10; r < 20; ++r) net.round(r);
      const double w_survivors = net.total_weight();
      // Node 3 restarts from scratch (a fresh model) and asks both neighbours.
      std::fill(net.models[3].begin(), net.models[3].end(), 100.0f);
      net.methods[3] = net.make(3);
      std::vector<float> expect_model(net.models[3].size(), 0.0f);
      for (int j : {2, 4}) {
        auto req = net.methods[3]->rejoin_request(j, false);
        req.sender = 3;
        CHECK(req.kind == net::MessageKind::kRejoinRequest);
        if (method != "sgp")
          for (std::size_t k = 0; k < expect_model.size(); ++k)
            expect_model[k] += net.models[j][k] / 2;
        auto offer = net.methods[j]->rejoin_offer(req, 20);
        offer.sender = j;
        CHECK(offer.kind == net::MessageKind::kRejoinOffer);
        CHECK(offer.round == 20);
        CHECK_FALSE(net.methods[j]->peer_is_down(3));
        net.methods[3]->rejoin_accept(offer);
      }
      net.alive[3] = true;
      if (method == "sgp") {
        // The hand-over moves mass, it does not create any.
        CHECK(std::abs(net.total_weight() - w_survivors) < 1e-9);
        CHECK(net.methods[3]->weight() > 0);
      } else {
        for (std::size_t k = 0; k < expect_model.size(); ++k)
          CHECK(net.models[3][k] == doctest::Approx(expect_model[k]).epsilon(1e-6));
      }
      for (int r = 20; r < 400; ++r) REQUIRE(net.round(r) == 0);
      if (method == "sgp") CHECK(std::abs(net.total_weight() - w_survivors) < 1e-9);
      CHECK(net.spread() < (compressed ? 1e-2 : 1e-4));
      // The restarted node is back near the others: nothing of the fresh start (100) is left.
      CHECK(std::abs(net.models[3][0]) < 2.0);
    }
  }

  TEST_CASE(
      "rejoin from a checkpoint rebuilds the state at the crash: the total weight is n again") {
    Net net(gen("ring", 8), "sgp");
    const double mass0 = net.total_mass();
    for (int r = 0; r < 6; ++r) net.round(r);
    // Node 3 saves its state, runs two more rounds, dies, and comes back from the save.
    auto saved_buffers = net.methods[3]->state_buffers();
    std::vector<std::vector<float>> saved;
    for (const auto& b : saved_buffers) saved.emplace_back(b.data.begin(), b.data.end());
    const auto saved_state = net.methods[3]->save_state();
    const auto saved_model = net.models[3];
    for (int r = 6; r < 8; ++r) net.round(r);
    net.alive[3] = false;
    net.methods[2]->set_peer_down(3, 8);
    net.methods[4]->set_peer_down(3, 8);
    for (int r = 8; r < 12; ++r) net.round(r);
    net.models[3] = saved_model;
    net.methods[3] = net.make(3);
    auto bufs = net.methods[3]->state_buffers();
    for (std::size_t k = 0; k < bufs.size(); ++k) bufs[k].restore(saved[k]);
    net.methods[3]->load_state(saved_state);
    // Restored, node 3 still holds what it pushed after the save and lacks what it got.
    CHECK(std::abs(net.total_mass() - mass0) > 1e-3);
    const double before = 8.0;
    net.rejoin(3, {2, 4}, true, 12);
    net.alive[3] = true;
    CHECK(std::abs(net.total_weight() - before) < 1e-9);
    CHECK(std::abs(net.total_mass() - mass0) < 1e-4);
    for (int r = 12; r < 300; ++r) REQUIRE(net.round(r) == 0);
    // No stale running sum injects or removes mass once it is back.
    CHECK(std::abs(net.total_weight() - before) < 1e-9);
    CHECK(std::abs(net.total_mass() - mass0) < 1e-4);
    CHECK(net.spread() < 1e-4);
  }
}

TEST_SUITE("gossip") {
  TEST_CASE(
      "run_blocking with a deadline: missing messages are counted, late ones absorbed or dropped") {
    for (const std::string method : {"sgp", "dpsgd"}) {
      CAPTURE(method);
      Sim sim(gen("ring", 4), method, "fp32", 8);
      WaitPolicy w;
      w.deadline = std::chrono::milliseconds(20);
      w.fail_on_missing = false;
      std::vector<LateMessages> late(4);
      auto io = [&](int i) {
        return PeerIo{sim.methods[i].get(), sim.transports[i].get(), &sim.traffic[i]};
      };
      // Round 0, one node after the other: node 0 finds nothing yet, node 1 misses node 2...
      CHECK(run_blocking(io(0), 0, w, late[0]) == std::vector<int>{1, 3});
      CHECK(run_blocking(io(1), 0, w, late[1]) == std::vector<int>{2});
      CHECK(run_blocking(io(2), 0, w, late[2]) == std::vector<int>{3});
      CHECK(run_blocking(io(3), 0, w, late[3]).empty());
      CHECK(sim.traffic[0].msgs_missed == 2);
      // Round 1 in reverse order: node 3 waits for nobody, and the round-0 messages that
      // came after their deadline are taken as late.
      for (int i = 3; i >= 0; --i) run_blocking(io(i), 1, w, late[i]);
      CHECK(sim.traffic[0].msgs_late == 2);
      CHECK(sim.traffic[1].msgs_late == 1);
      if (method == "sgp") {
        // Push-sum absorbed them: once every message is in, the mass is n.
        for (int i = 0; i < 4; ++i) run_blocking(io(i), 2, w, late[i]);
        // What is still in flight (the last senders' messages) is delivered.
        for (int i = 0; i < 4; ++i) {
          auto rest = sim.transports[i]->drain();
          sim.methods[i]->absorb(3, 0, rest);
        }
        double total = 0;
        for (const auto& m : sim.methods) total += m->weight();
        CHECK(std::abs(total - 4.0) < 1e-9);
      }
    }
  }

  TEST_CASE("run_blocking with fail_on_missing names the peer that sent nothing") {
    Sim sim(gen("ring", 4), "dpsgd", "fp32", 8);
    WaitPolicy w;
    w.deadline = std::chrono::milliseconds(20);
    LateMessages late;
    CHECK_THROWS_WITH_AS(
        run_blocking(PeerIo{sim.methods[0].get(), sim.transports[0].get(), &sim.traffic[0]}, 0, w,
                     late),
        doctest::Contains("no message from peer 1"), ProtocolError);
  }
}

TEST_SUITE("gossip") {
  TEST_CASE("round deadline: fixed is the timeout, adaptive follows the median of recent rounds") {
    using ms = std::chrono::milliseconds;
    RoundDeadline fixed(ms(5000));
    fixed.record(0.01);
    CHECK(fixed.next() == ms(5000));
    RoundDeadline a(ms(5000), true, 3.0, ms(20));
    CHECK(a.next() == ms(5000));  // nothing measured yet
    for (double s : {0.1, 0.1, 0.1}) a.record(s);
    CHECK(a.next() == ms(300));
    a.record(4.0);  // one slow round does not move the median
    CHECK(a.next() == ms(300));
    for (int i = 0; i < 16; ++i) a.record(0.001);
    CHECK(a.next() == ms(20));  // the floor
    for (int i = 0; i < 16; ++i) a.record(100.0);
    CHECK(a.next() == ms(5000));  // at most the timeout
  }
}

TEST_SUITE("gossip") {
  TEST_CASE("robust sgp rejoin on a directed time-varying graph: one-way neighbours offer too") {
    Net net(gen("exponential", 8), "sgp");
    for (int r = 0; r < 9; ++r) net.round(r, Lossy{0.1, r});
    const auto peers = net.topology.peers(3);  // in- and out-neighbours over a period
    net.alive[3] = false;
    for (int j : peers) net.methods[j]->set_peer_down(3, 9);
    for (int r = 9; r < 18; ++r) REQUIRE(net.round(r) == 0);
    const double w = net.total_weight();
    net.methods[3] = net.make(3);
    net.rejoin(3, peers, false, 18);
    net.alive[3] = true;
    CHECK(std::abs(net.total_weight() - w) < 1e-9);
    for (int r = 18; r < 200; ++r) REQUIRE(net.round(r) == 0);
    CHECK(std::abs(net.total_weight() - w) < 1e-9);
    CHECK(net.spread() < 1e-4);
  }

  TEST_CASE("a wait gives up on a sender whose link dropped, even once it is up again") {
    // Without giving up, the wait would run to the timeout: give_up ends it after 400 polls
    // of 50 ms, far past the 1 ms grace, and counts as a failure below.
    for (int down_looks : {1, 3}) {
      CAPTURE(down_looks);
      FlappingLink t(down_looks);
      net::MessageFilter f;
      f.sender = 1;
      f.round = 0;
      int polls = 0;
      const auto m = take_or_give_up(t, f, std::chrono::minutes(10), std::chrono::milliseconds(1),
                                     [&polls] { return ++polls >= 400; });
      CHECK_FALSE(m.has_value());
      CHECK(polls < 400);
    }
  }
}
