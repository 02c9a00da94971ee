#pragma once
// Byzantine attackers for experiments (faults.byzantine): a Byzantine node trains honestly
// and absorbs its neighbours' messages like any node, but what it sends them is an attack
// vector in model space, encoded with the run's codec so that it passes every check of the
// gate (right size, finite values):
//
//   sign-flip  -x              the negation of the model it would have sent
//   gaussian   x + N(0, sigma^2 I)   its model plus noise (seeded by seed, node, round)
//   alie       mu + z sd       "A little is enough" (Baruch, Baruch, Goldberg 2019):
//                              coordinate-wise mean and standard deviation (population, /n)
//                              of the models its honest neighbours sent it in the last
//                              round it absorbed (round t-1 when sending in round t). That is
//                              all it knows: it sees no other node's messages and nothing
//                              of round t before sending; it knows which of its neighbours
//                              are Byzantine (colluders are left out). Before it has heard
//                              from any honest neighbour it sends its own model.
//   zero       0               an all-zero model
//
// Attacks are defined on models, so only methods whose messages are models (the averaging
// methods, which declare method.aggregation: dpsgd, qgm) take them; others are refused.
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "rumor/codec/codec.hpp"
#include "rumor/gossip/method.hpp"

namespace rumor::run {

enum class Attack { kSignFlip, kGaussian, kAlie, kZero };

struct ByzantineOptions {
  std::vector<int> nodes;
  Attack attack = Attack::kSignFlip;
  double sigma = 1.0;  // gaussian: standard deviation of the noise per coordinate
  double z = 1.0;      // alie: standard deviations added to the mean

  bool contains(int id) const;
  // faults.byzantine (null: no attackers). Throws ConfigError naming `where`, the key and
  // what to change: unknown keys or attacks, ids outside 0..nodes-1, repeated ids, or a
  // method whose messages are not models.
  static std::optional<ByzantineOptions> parse(const nlohmann::json& v, int nodes,
                                               const gossip::MethodInfo& method,
                                               const std::string& where);
};

std::string to_string(Attack a);

// The attack vector: `honest` is the model the node would have sent, `observed` the models
// its honest neighbours sent it last (alie), `noise_seed` seeds the gaussian noise.
void craft_attack(const ByzantineOptions& o, std::span<const float> honest,
                  const std::vector<std::vector<float>>& observed, std::uint64_t noise_seed,
                  std::span<float> out);

// Wraps a node's method: produce() replaces the payload of every gossip message by the
// attack, encoded with the run's codec; absorb() keeps what honest neighbours sent (alie)
// and hands everything on, so the node itself trains honestly.
class ByzantineSender : public gossip::Exchange {
 public:
  ByzantineSender(gossip::Exchange& inner, ByzantineOptions options, int self,
                  std::shared_ptr<const codec::Codec> codec, std::size_t dim, std::uint64_t seed);

  int stages(std::int64_t round) const override { return inner_.stages(round); }
  std::vector<gossip::Outgoing> produce(std::int64_t round, int stage) override;
  std::vector<gossip::Expected> expect(std::int64_t round, int stage) const override {
    return inner_.expect(round, stage);
  }
  gossip::Refusal check(const net::Message& m) override { return inner_.check(m); }
  void absorb(std::int64_t round, int stage, std::vector<net::Message>& received) override;
  bool absorbs_early() const override { return inner_.absorbs_early(); }
  std::int64_t early_round_limit(std::int64_t round) const override {
    return inner_.early_round_limit(round);
  }

 private:
  gossip::Exchange& inner_;
  ByzantineOptions options_;
  int self_;
  std::shared_ptr<const codec::Codec> codec_;
  std::uint64_t seed_;
  std::unique_ptr<codec::Encoder> encoder_;
  std::unique_ptr<codec::Decoder> decoder_;
  std::vector<float> honest_, attack_;
  std::vector<std::vector<float>> observed_;  // alie: honest neighbours' last models
};

}  // namespace rumor::run
