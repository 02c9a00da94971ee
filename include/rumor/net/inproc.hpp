#pragma once
// In-process transport: many nodes in one process, the same interface and semantics as TCP
// (handshake checks, per-link counters, queues, drops), without sockets.
//
// An InProcNetwork connects the transports it made. Messages are handed over by pointer (the
// payload is shared, never copied). With a LinkModel, each link delivers after
// latency + size / bandwidth (links are serial: a message waits for the previous one on the
// same link), and loses a data message with probability `loss`, drawn from
// Rng::derive(seed, from, to, seq) so runs with the same seed lose the same messages.
// Real time (default): delivery waits that long. Simulated time: delivery is immediate and
// the message carries its arrival time in Message::sim_time_s (the sender stamps its own
// clock there before sending); drivers compare it with the receiver's clock.
#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <utility>

#include "rumor/net/transport.hpp"

namespace rumor::net {

struct LinkParams {
  double latency_s = 0.0;      // one-way delay per message
  double bandwidth_Bps = 0.0;  // bytes per second per link; 0 = unlimited
  double loss = 0.0;           // probability that a data message is lost (never control)
  bool active() const { return latency_s > 0 || bandwidth_Bps > 0 || loss > 0; }
};

struct LinkModel : LinkParams {
  std::uint64_t seed = 0;
  bool simulated = false;  // simulated time (see above) instead of real delays
  // Per directed link (from, to): replaces the defaults above on data links. Control links
  // (the ring) always use the defaults and never lose messages.
  std::map<std::pair<int, int>, LinkParams> overrides;
  const LinkParams& link(int from, int to) const {
    auto it = overrides.find({from, to});
    return it == overrides.end() ? *this : it->second;
  }
  bool active() const {
    if (LinkParams::active()) return true;
    for (const auto& [k, v] : overrides)
      if (v.active()) return true;
    return false;
  }
  // Arrival of `bytes` sent at `send_s` on a link that is busy until `free_at_s` (updated).
  static double arrival(const LinkParams& p, double send_s, std::uint64_t bytes,
                        double& free_at_s) {
    const double start = std::max(send_s, free_at_s);
    free_at_s = start + (p.bandwidth_Bps > 0 ? static_cast<double>(bytes) / p.bandwidth_Bps : 0.0);
    return free_at_s + p.latency_s;
  }
};

class InProcNetwork {
 public:
  explicit InProcNetwork(LinkModel model = {});
  ~InProcNetwork();
  InProcNetwork(const InProcNetwork&) = delete;
  InProcNetwork& operator=(const InProcNetwork&) = delete;

  // A new transport attached to this network. The network must outlive its transports'
  // use (transports keep it alive through a shared state). A node id may be started again
  // after its previous transport stopped (a restarted peer): neighbours see a reconnect.
  std::unique_ptr<Transport> make_transport(TransportOptions options = {});

  // Turns the loss model off (or on again), e.g. to deliver what is in flight at the end.
  void set_lossless(bool lossless);

  struct State;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace rumor::net
