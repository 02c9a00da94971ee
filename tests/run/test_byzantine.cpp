// Byzantine attackers (faults.byzantine): each attack sends what it claims, passes the
// receivers' gate, leaves the attacker's own training alone; the options are checked; a
// run's summary reports the honest nodes apart.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "rumor/common/error.hpp"
#include "rumor/gossip/method.hpp"
#include "rumor/run/byzantine.hpp"
#include "rumor/run/setup.hpp"
#include "rumor/topology/generators.hpp"
#include "run_harness.hpp"

using namespace rumor;
using nlohmann::json;

namespace {

Topology ring4() {
  GenOptions g;
  g.nodes = 4;
  return generate_topology("ring", g);
}

// Node `self` of a 4-ring running dpsgd on fp32, with its model, wrapped as an attacker.
struct Attacker {
  Topology topology = ring4();
  std::shared_ptr<const codec::Codec> codec = codec::make_codec("fp32");
  std::vector<float> model;
  std::unique_ptr<gossip::Method> method;
  std::unique_ptr<run::ByzantineSender> sender;

  Attacker(run::ByzantineOptions o, std::vector<float> x, int self = 0) : model(std::move(x)) {
    method = gossip::make_method("dpsgd", context(self));
    method->init(model);
    sender =
        std::make_unique<run::ByzantineSender>(*method, std::move(o), self, codec, model.size(), 3);
  }
  gossip::MethodContext context(int self) const {
    gossip::MethodContext ctx;
    ctx.self = self;
    ctx.topology = &topology;
    ctx.codec = codec;
    ctx.seed = 3;
    return ctx;
  }
  // What neighbour `to` decodes from the attacker's message of round r.
  std::vector<float> sent(std::int64_t r, int to = 1) {
    const auto out = sender->produce(r, 0);
    REQUIRE(out.size() == 2);  // both ring neighbours get the attack
    for (const auto& o : out) {
      if (o.to != to) continue;
      std::vector<float> v(model.size());
      codec->make_decoder(model.size())->decode(o.message.payload.bytes(), {3, 0, 0}, v);
      // The receiver's gate takes it: right size, finite values.
      auto receiver = gossip::make_method("dpsgd", context(to));
      std::vector<float> rx(model.size());
      receiver->init(rx);
      net::Message m = o.message;
      m.sender = 0;
      CHECK_FALSE(receiver->check(m));
      return v;
    }
    FAIL("no message to node " << to);
    return {};
  }
  net::Message from(int sender_id, std::vector<float> x, std::int64_t r) const {
    net::Message m;
    m.kind = net::MessageKind::kGossip;
    m.sender = sender_id;
    m.round = r;
    auto bytes = std::make_shared<codec::Bytes>();
    codec->make_encoder(x.size())->encode(x, {3, static_cast<std::uint64_t>(r), 0}, *bytes);
    m.payload = net::Payload::share(std::shared_ptr<const codec::Bytes>(bytes));
    return m;
  }
};

run::ByzantineOptions attack(run::Attack a) {
  run::ByzantineOptions o;
  o.nodes = {0};
  o.attack = a;
  return o;
}

std::string parse_error(const json& v, const std::string& method = "dpsgd") {
  try {
    run::ByzantineOptions::parse(v, 8, gossip::method_info(method), "cfg.json");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_SUITE("run") {
  TEST_CASE("byzantine: sign-flip, zero and gaussian send what they claim") {
    const std::vector<float> x = {1.5f, -2.0f, 0.25f, 4.0f};
    CHECK(Attacker(attack(run::Attack::kSignFlip), x).sent(0) ==
          std::vector<float>{-1.5f, 2.0f, -0.25f, -4.0f});
    CHECK(Attacker(attack(run::Attack::kZero), x).sent(0) == std::vector<float>(4, 0.0f));

    // Gaussian: the model plus N(0, sigma^2) noise, seeded (the same run sends the same).
    auto o = attack(run::Attack::kGaussian);
    o.sigma = 0.5;
    std::vector<float> big(20000, 1.0f);
    const auto v = Attacker(o, big).sent(4);
    double s = 0, s2 = 0;
    for (float y : v) {
      s += y - 1.0;
      s2 += (y - 1.0) * (y - 1.0);
    }
    const double mean = s / 20000, sd = std::sqrt(s2 / 20000 - mean * mean);
    CHECK(std::abs(mean) < 0.02);
    CHECK(sd == doctest::Approx(0.5).epsilon(0.03));
    CHECK(Attacker(o, big).sent(4) == v);
    CHECK(Attacker(o, big).sent(5) != v);
  }

  TEST_CASE("byzantine: alie sends mean + z sd of what honest neighbours sent last round") {
    auto o = attack(run::Attack::kAlie);
    o.nodes = {0, 3};  // node 3 colludes: its message is not counted as honest
    o.z = 2.0;
    Attacker a(o, {5, 5});
    CHECK(a.sent(0) == std::vector<float>{5, 5});  // nothing heard yet: its own model
    std::vector<net::Message> got = {a.from(3, {1000, 1000}, 0), a.from(1, {1, 4}, 0)};
    a.sender->absorb(0, 0, got);
    got = {a.from(1, {1, 2}, 1), a.from(3, {1000, 1000}, 1)};
    a.sender->absorb(1, 0, got);
    // Round 1's only honest neighbour: mean (1, 2), sd 0.
    CHECK(a.sent(2) == std::vector<float>{1, 2});
    Attacker c(attack(run::Attack::kAlie), {0, 0}, 2);  // node 2: neighbours 1 and 3
    got = {c.from(1, {1, 2}, 0), c.from(3, {3, 6}, 0)};
    c.sender->absorb(0, 0, got);
    // Node 3 is honest here: mean (2, 4), population sd (1, 2), z = 1.
    CHECK(c.sent(1) == std::vector<float>{3, 6});
  }

  TEST_CASE("byzantine: the attacker trains and absorbs honestly") {
    Attacker a(attack(run::Attack::kSignFlip), {1, 1});
    a.sender->produce(0, 0);
    std::vector<net::Message> got = {a.from(1, {4, 4}, 0), a.from(3, {4, 4}, 0)};
    a.sender->absorb(0, 0, got);
    // Ring of 4, Metropolis weights 1/3: (1 + 4 + 4) / 3 = 3 — its own mixing is plain.
    CHECK(a.model[0] == doctest::Approx(3.0));
    CHECK(a.model[1] == doctest::Approx(3.0));
  }

  TEST_CASE("byzantine: options are checked, and only model-averaging methods take them") {
    const auto o = run::ByzantineOptions::parse({{"nodes", {2, 5}}, {"attack", "alie"}, {"z", 1.5}},
                                                8, gossip::method_info("qgm"), "cfg.json");
    REQUIRE(o);
    CHECK(o->nodes == std::vector<int>{2, 5});
    CHECK(o->attack == run::Attack::kAlie);
    CHECK(o->z == 1.5);
    CHECK_FALSE(run::ByzantineOptions::parse(json(), 8, gossip::method_info("sgp"), "c"));
    CHECK(parse_error({{"nodes", {1}}, {"attack", "bitflip"}}).find("sign-flip") !=
          std::string::npos);
    CHECK(parse_error({{"nodes", {8}}, {"attack", "zero"}}).find("0..7") != std::string::npos);
    CHECK(parse_error({{"nodes", {1, 1}}, {"attack", "zero"}}).find("twice") != std::string::npos);
    CHECK(parse_error({{"nodes", json::array()}, {"attack", "zero"}}).find("non-empty") !=
          std::string::npos);
    CHECK(parse_error({{"nodes", {1}}, {"attack", "zero"}, {"siga", 1}}).find("unknown") !=
          std::string::npos);
    CHECK(parse_error({{"nodes", {1}}, {"attack", "gaussian"}, {"sigma", -1}}).find("sigma") !=
          std::string::npos);
    CHECK(parse_error({{"nodes", {1}}, {"attack", "zero"}}, "sgp").find("models") !=
          std::string::npos);
    CHECK(parse_error({{"nodes", {1}}, {"attack", "zero"}}, "choco").find("models") !=
          std::string::npos);
  }

  TEST_CASE("byzantine: the config check refuses robust mixing on sgp and choco (dry run)") {
    auto check = [](const std::string& method, std::vector<std::string> sets) {
      sets.push_back("method.name=" + method);
      try {
        run::check_run_config(run_test::small(method, run_test::ring(8), sets));
      } catch (const ConfigError& e) {
        return std::string(e.what());
      }
      return std::string();
    };
    CHECK(check("sgp", {"method.aggregation=clip"}).find("push-sum") != std::string::npos);
    CHECK(check("choco", {"method.aggregation=median", "codec=topk:0.5"}).find("public copies") !=
          std::string::npos);
    CHECK(check("dpsgd", {"method.aggregation=trimmed-mean"}).empty());
    CHECK(
        check("sgp", {"faults.byzantine={\"nodes\": [1], \"attack\": \"zero\"}"}).find("models") !=
        std::string::npos);
    CHECK(check("dpsgd", {"faults.byzantine={\"nodes\": [1], \"attack\": \"zero\"}"}).empty());
  }

  TEST_CASE("byzantine: a run reports the honest nodes' accuracy apart") {
    const auto cfg =
        run_test::small("dpsgd", {{"gen", "torus"}, {"nodes", 9}},
                        {"method.aggregation=clip", "rounds=30", "eval.every=10",
                         "faults.byzantine={\"nodes\": [0, 4], \"attack\": \"sign-flip\"}"});
    const auto s = run::run_inprocess(cfg, run_test::quiet()).summary;
    REQUIRE(s.contains("honest_mean_acc"));
    CHECK(s["honest_nodes"] == 7);
    CHECK(s["byzantine_nodes"] == json({0, 4}));
    CHECK(s["byzantine_attack"] == "sign-flip");
    double sum = 0;
    for (const auto& [id, acc] : s["last_test_acc_by_node"].items())
      if (id != "0" && id != "4") sum += acc.get<double>();
    CHECK(s["honest_mean_acc"].get<double>() == doctest::Approx(sum / 7));
    CHECK(s["curve"].back().contains("honest_test_acc"));
    // Without attackers nothing is added.
    const auto plain = run::run_inprocess(run_test::small("dpsgd", run_test::ring(4), {"rounds=5"}),
                                          run_test::quiet())
                           .summary;
    CHECK_FALSE(plain.contains("honest_mean_acc"));
  }
}
