#include "down_notices.hpp"

#include <chrono>
#include <utility>

#include "rumor/common/log.hpp"

namespace rumor::run {
namespace {

using net::MessageKind;

net::MessageFilter notice_filter(int sender) {
  net::MessageFilter f;
  f.sender = sender;
  f.kind = MessageKind::kPeerDown;
  f.link = net::LinkKind::kData;
  return f;
}

std::uint64_t reconnects_of(const net::Transport& t, int j) {
  const net::TransportStats s = t.stats();
  const net::LinkStats* l = s.find(j, net::LinkKind::kData);
  return l ? l->reconnects : 0;
}

// The reason a notice gives (bytes from a peer: any value may come).
const char* reason_text(const net::Message& m) {
  using Reason = DownNotices::Reason;
  const double code = m.scalars.empty() ? 0.0 : m.scalars[0];
  if (code == static_cast<double>(Reason::kLinkGone)) return "its link to this node was gone";
  if (code == static_cast<double>(Reason::kRefused))
    return "it refused network.max_rejects of this node's messages";
  if (code == static_cast<double>(Reason::kTold)) return "this node had left it out";
  return "no reason given";
}

}  // namespace

void DownNotices::leave_out(int j, std::int64_t from, Reason reason, const std::string& why) {
  if (sent_.count(j)) return;
  log::warn("leaving peer ", j, " out of the mixing from round ", from + 1, " (", why,
            "); telling it so");
  if (!method_.peer_is_down(j)) method_.set_peer_down(j, from);
  tell(j, from, reason);
}

void DownNotices::tell(int j, std::int64_t from, Reason reason) {
  net::Message m;
  m.kind = MessageKind::kPeerDown;
  m.round = from;
  m.scalars = {static_cast<double>(reason)};
  m.link = net::LinkKind::kData;
  t_.send(j, std::move(m));  // queued while the link is down: it goes once it is up
  sent_[j] = {from, reason, reconnects_of(t_, j)};
}

bool DownNotices::told_by(int j) {
  if (told_.count(j)) return true;
  auto m = t_.take(notice_filter(j), std::chrono::milliseconds(0));
  if (!m) return false;
  told_.emplace(j, std::move(*m));
  return true;
}

void DownNotices::apply(const net::Message& notice, std::int64_t r) {
  const int i = notice.sender;
  // Already out: by this node's own notice (this one crossed it or answers it), or while
  // rejoining (the rejoin hand-over decides).
  if (method_.peer_is_down(i)) return;
  log::warn("peer ", i, " left this node out of the mixing (", reason_text(notice),
            "); leaving it out too from round ", r + 1);
  method_.set_peer_down(i, r);
  tell(i, r, Reason::kTold);
}

void DownNotices::boundary(std::int64_t r) {
  for (const auto& [i, notice] : std::exchange(told_, {})) apply(notice, r);
  const auto any = notice_filter(net::MessageFilter::kAnySender);
  while (auto notice = t_.take(any, std::chrono::milliseconds(0))) apply(*notice, r);
  // Told again after a reconnect: the notice may have gone down with the old connection.
  for (auto& [j, told] : sent_) {
    if (!t_.link_up(j, net::LinkKind::kData)) continue;
    if (reconnects_of(t_, j) != told.reconnects) tell(j, told.from, told.reason);
  }
}

}  // namespace rumor::run
