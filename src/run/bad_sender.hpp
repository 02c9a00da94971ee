#pragma once
// Fault injection (faults.bad_node): a node that sends corrupted gossip messages, so that
// runs and tests show its neighbours' gate refusing them while the run goes on. It wraps
// the node's method; everything but the messages it produces passes through unchanged.
#include <cstdint>
#include <string>

#include "rumor/gossip/method.hpp"

namespace rumor::run {

class BadSender : public gossip::Exchange {
 public:
  enum class Corruption { kNan, kHuge, kTruncate, kExtend, kGarbage, kCodecTag, kWeight };
  // Throws ConfigError naming `where` and the valid names.
  static Corruption parse(const std::string& name, const std::string& where);

  // Corrupts what `inner` produces in rounds [first, last] (last < 0: to the end).
  BadSender(gossip::Exchange& inner, Corruption how, std::int64_t first, std::int64_t last,
            std::uint64_t seed);

  int stages(std::int64_t round) const override { return inner_.stages(round); }
  std::vector<gossip::Outgoing> produce(std::int64_t round, int stage) override;
  std::vector<gossip::Expected> expect(std::int64_t round, int stage) const override {
    return inner_.expect(round, stage);
  }
  gossip::Refusal check(const net::Message& m) override { return inner_.check(m); }
  void absorb(std::int64_t round, int stage, std::vector<net::Message>& received) override {
    inner_.absorb(round, stage, received);
  }
  bool absorbs_early() const override { return inner_.absorbs_early(); }
  std::int64_t early_round_limit(std::int64_t round) const override {
    return inner_.early_round_limit(round);
  }

 private:
  void corrupt(net::Message& m, std::int64_t round, int to) const;
  gossip::Exchange& inner_;
  Corruption how_;
  std::int64_t first_, last_;
  std::uint64_t seed_;
};

}  // namespace rumor::run
