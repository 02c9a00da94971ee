#pragma once
// Exact averages over TCP (consensus distance, model.pt) take every node on the control
// ring: once a node was gone they are off (no-average notices). They come back once every
// node is reachable on the ring again, at an evaluation round E every node agreed on:
//   1. node 0 proposes E, an evaluation round far enough ahead, to the next node on the ring;
//   2. each node still before E whose control link to the next is up passes it on; one that
//      is not drops it (node 0 proposes again after a retry interval);
//   3. back at node 0 before E, it goes round again as a commitment: every node that gets it
//      before E averages again from E on; no-average notices of rounds before E are stale.
// A node that got the commitment too late (or died since) is missing from the all-reduce of
// round E, which then fails within the round timeout and turns the averages off again, as any
// death does: a bounded cost, never a hang.
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>

#include "rumor/net/transport.hpp"

namespace rumor::run {

class AverageResume {
 public:
  using Clock = std::chrono::steady_clock;
  struct Options {
    int self = 0, nodes = 1;
    std::int64_t eval_every = 1, rounds = 0;
    std::chrono::milliseconds retry{10000};  // node 0: between proposals
    std::function<Clock::time_point()> now = [] { return Clock::now(); };
  };
  AverageResume(net::Transport& t, Options o) : t_(t), o_(std::move(o)) {}

  // The boundary before round r while exact averages are off: true when they are on again
  // from round r.
  bool boundary(std::int64_t r);

 private:
  bool eval_round(std::int64_t r) const;
  void pass(std::int64_t r, std::int64_t e, std::uint32_t stage);
  void take(const net::Message& m, std::int64_t r);
  void drop_stale_notices(std::int64_t e);

  net::Transport& t_;
  Options o_;
  std::optional<std::int64_t> resume_at_;
  Clock::time_point next_try_{};
};

}  // namespace rumor::run
