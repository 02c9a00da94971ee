#pragma once
// In-process transport: many nodes in one process, the same interface and semantics as TCP
// (handshake checks, per-link counters, queues, drops), without sockets.
//
// An InProcNetwork connects the transports it made. Messages are handed over by pointer (the
// payload is shared, never copied). With a LinkModel, each link delivers after
// latency + size / bandwidth (links are serial: a message waits for the previous one on the
// same link), and loses a message with probability `loss`, drawn from Rng::derive(seed,
// from, to, seq) so runs with the same seed lose the same messages.
#include <memory>

#include "rumor/net/transport.hpp"

namespace rumor::net {

struct LinkModel {
  double latency_s = 0.0;      // one-way delay per message
  double bandwidth_Bps = 0.0;  // bytes per second per link; 0 = unlimited
  double loss = 0.0;           // probability that a data message is lost (never control)
  std::uint64_t seed = 0;
  bool active() const { return latency_s > 0 || bandwidth_Bps > 0 || loss > 0; }
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

  struct State;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace rumor::net
