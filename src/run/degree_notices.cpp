#include "degree_notices.hpp"

#include <chrono>
#include <cmath>

namespace rumor::run {

std::vector<int> initial_live_degrees(const Topology& topology) {
  std::vector<int> out(static_cast<std::size_t>(topology.size()), 0);
  for (int i = 0; i < topology.size(); ++i)
    for (int j : topology.peers(i)) out[static_cast<std::size_t>(i)] += topology.standby(j) ? 0 : 1;
  return out;
}

void DegreeNotices::boundary(std::int64_t r) {
  gossip::Method& method = peer_.method();
  net::MessageFilter f;
  f.kind = net::MessageKind::kDegree;
  f.link = net::LinkKind::kData;
  for (int k = 0; k < 4096; ++k) {  // bounded: one notice per neighbour and change
    auto m = t_.take(f, std::chrono::milliseconds(0));
    if (!m) break;
    // Bytes from a peer: a degree it cannot have, or a round outside the run, is refused.
    const double d = m->scalars.size() == 1 ? m->scalars[0] : -1.0;
    const auto most = static_cast<double>(peer_.topology().peers(m->sender).size());
    if (!(d >= 0 && d <= most && d == std::floor(d)) || m->round < 0 || m->round > peer_.rounds() ||
        !m->payload.empty()) {
      peer_.traffic().add_rejected(
          *m, {"malformed degree notice",
               "degree " + std::to_string(d) + " from round " + std::to_string(m->round)});
      continue;
    }
    peer_.traffic().add_recv(*m);
    method.note_degree(m->sender, m->round, static_cast<int>(d));
  }
  std::vector<int> live;
  for (int j : peer_.topology().peers(peer_.id()))
    if (!method.peer_is_down(j)) live.push_back(j);
  if (!first_ && live == announced_) return;
  const bool changed =
      !first_ || live.size() != static_cast<std::size_t>(initial_live_degrees(
                                    peer_.topology())[static_cast<std::size_t>(peer_.id())]);
  first_ = false;
  announced_ = live;
  if (!changed) return;  // at the start every node knows every other's degree
  const int d = static_cast<int>(live.size());
  method.note_degree(peer_.id(), r + 1, d);
  for (int j : live) {
    net::Message m;
    m.kind = net::MessageKind::kDegree;
    m.round = r + 1;
    m.scalars = {static_cast<double>(d)};
    peer_.traffic().add_sent(m);
    t_.send(j, std::move(m));
  }
}

}  // namespace rumor::run
