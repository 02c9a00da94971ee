#include "leave.hpp"

#include <algorithm>

#include "rejoin.hpp"
#include "rumor/common/log.hpp"
#include "rumor/gossip/driver.hpp"

namespace rumor::run {

using net::MessageKind;
using std::chrono::milliseconds;

void GracefulLeave::request(std::int64_t round) {
  if (!leave_at_ || round < *leave_at_) leave_at_ = round;
}

void GracefulLeave::take_notices() {
  net::MessageFilter f;
  f.kind = MessageKind::kLeave;
  f.link = net::LinkKind::kData;
  for (int k = 0; k < 4096; ++k) {  // bounded: one notice per neighbour and connection
    auto m = t_.take(f, milliseconds(0));
    if (!m) break;
    // A notice for a round outside the run is a peer's bad bytes: counted, not used.
    if (m->round < 1 || m->round > peer_.rounds() || !m->payload.empty() || !m->scalars.empty()) {
      peer_.traffic().add_rejected(
          *m, {"malformed leave notice", "round " + std::to_string(m->round) + ", " +
                                             std::to_string(m->payload.size()) + " bytes"});
      continue;
    }
    peer_.traffic().add_recv(*m);
    auto [it, fresh] = notices_.emplace(m->sender, m->round);
    if (!fresh) it->second = std::min(it->second, m->round);
  }
}

bool GracefulLeave::leaving(int j, std::int64_t r) {
  take_notices();
  auto it = notices_.find(j);
  return it != notices_.end() && it->second <= r;
}

std::vector<int> GracefulLeave::boundary(std::int64_t r) {
  gossip::Method& method = peer_.method();
  if (leave_at_ && !announced_ && *leave_at_ <= r + 1) {
    announced_ = true;
    for (int j : peer_.topology().peers(peer_.id())) {
      if (method.peer_is_down(j)) continue;
      net::Message m;
      m.kind = MessageKind::kLeave;
      m.round = r + 1;
      peer_.traffic().add_sent(m);
      t_.send(j, std::move(m));
    }
    leave_at_ = r + 1;
    peer_.log("leaving the run: round " + std::to_string(r + 1) + " is the last one it runs");
  }
  take_notices();
  std::vector<int> out;
  for (auto it = notices_.begin(); it != notices_.end();) {
    if (it->second > r) {
      ++it;
      continue;
    }
    if (!method.peer_is_down(it->first)) {
      apply_goodbye(it->first, r);
      out.push_back(it->first);
    }
    it = notices_.erase(it);
  }
  return out;
}

void GracefulLeave::apply_goodbye(int j, std::int64_t r) {
  auto bye = take_data(t_, j, MessageKind::kBye, timeout_);
  if (!bye) {
    log::warn("peer ", j, " said it leaves before round ", r + 1,
              " but sent no goodbye; what it held is lost");
    peer_.method().set_peer_down(j, r);
    return;
  }
  peer_.traffic().add_recv(*bye);
  gossip::accept_leave(peer_.method(), *bye, r, peer_.rounds(), peer_.traffic());
  log::info("peer ", j, " left the run; out of the mixing from round ", r + 1);
  peer_.log("peer " + std::to_string(j) + " left; its goodbye taken before round " +
            std::to_string(r + 1));
}

bool GracefulLeave::leaves_after(std::int64_t r) {
  if (!leave_at_ || !announced_ || r + 1 < *leave_at_) return false;
  for (auto& o : peer_.method().leave(r + 1)) {
    peer_.traffic().add_sent(o.message);
    t_.send(o.to, std::move(o.message));
  }
  log::info("left the run after round ", r + 1, " (graceful leave): goodbyes sent");
  peer_.log("left the run after round " + std::to_string(r + 1));
  return true;
}

}  // namespace rumor::run
