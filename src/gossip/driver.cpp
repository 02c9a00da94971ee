#include "rumor/gossip/driver.hpp"

#include "rumor/common/error.hpp"

namespace rumor::gossip {

void Traffic::add_sent(const net::Message& m) {
  bytes_sent += net::wire_size(m);
  ++msgs_sent;
}

void Traffic::add_recv(const net::Message& m) {
  bytes_recv += net::wire_size(m);
  ++msgs_recv;
}

namespace {

void send_all(const PeerIo& p, std::int64_t round, int stage) {
  for (auto& out : p.exchange->produce(round, stage)) {
    p.traffic->add_sent(out.message);
    p.transport->send(out.to, std::move(out.message));
  }
}

void take_early(const PeerIo& p, std::int64_t round, int stage) {
  if (!p.exchange->absorbs_early()) return;
  net::MessageFilter f;
  f.kind = net::kind::kGossip;
  f.link = net::LinkKind::kData;
  std::vector<net::Message> early;
  while (auto m = p.transport->take(f, std::chrono::milliseconds(0))) {
    p.traffic->add_recv(*m);
    early.push_back(std::move(*m));
  }
  if (!early.empty()) p.exchange->absorb(round, stage, early);
}

void take_expected(const PeerIo& p, std::int64_t round, int stage,
                   std::chrono::milliseconds timeout) {
  std::vector<net::Message> got;
  for (const auto& e : p.exchange->expect(round, stage)) {
    net::MessageFilter f;
    f.sender = e.sender;
    f.round = e.round;
    f.kind = e.kind;
    f.link = e.link;
    auto m = p.transport->take(f, timeout);
    if (!m) {
      throw ProtocolError(
          "node " + std::to_string(p.transport->self()) + ": no message from peer " +
          std::to_string(e.sender) + " for round " + std::to_string(e.round) + " (" +
          (e.link == net::LinkKind::kData ? "data" : "control") + " link, kind " +
          std::to_string(e.kind) + ") within " + std::to_string(timeout.count() / 1000.0) +
          " s; is that peer alive? raise network.round_timeout_s if it is slow");
    }
    p.traffic->add_recv(*m);
    got.push_back(std::move(*m));
  }
  p.exchange->absorb(round, stage, got);
}

}  // namespace

void run_blocking(const PeerIo& p, std::int64_t round, std::chrono::milliseconds timeout) {
  const int stages = p.exchange->stages(round);
  for (int s = 0; s < stages; ++s) {
    send_all(p, round, s);
    take_early(p, round, s);
    take_expected(p, round, s, timeout);
  }
}

void run_phased(const std::vector<PeerIo>& peers, std::int64_t round, ThreadPool& pool,
                std::chrono::milliseconds timeout) {
  int stages = 0;
  for (const auto& p : peers)
    if (p.exchange) stages = std::max(stages, p.exchange->stages(round));
  for (int s = 0; s < stages; ++s) {
    pool.parallel_for(peers.size(), [&](std::size_t i) {
      if (peers[i].exchange) send_all(peers[i], round, s);
    });
    pool.parallel_for(peers.size(), [&](std::size_t i) {
      if (!peers[i].exchange) return;
      take_early(peers[i], round, s);
      take_expected(peers[i], round, s, timeout);
    });
  }
}

}  // namespace rumor::gossip
