#include "rejoin.hpp"

#include <algorithm>

#include "rumor/common/error.hpp"
#include "rumor/common/log.hpp"
#include "rumor/gossip/driver.hpp"

namespace rumor::run {

using net::MessageKind;
using std::chrono::milliseconds;

namespace {
net::MessageFilter data_filter(int sender, MessageKind kind) {
  net::MessageFilter f;
  f.sender = sender;
  f.kind = kind;
  f.link = net::LinkKind::kData;
  return f;
}
}  // namespace

std::optional<net::Message> take_data(net::Transport& t, int sender, MessageKind kind,
                                      milliseconds timeout) {
  return gossip::take_or_give_up(t, data_filter(sender, kind), timeout, std::chrono::seconds(1));
}

void Rejoin::answer(const net::Message& req, std::int64_t r) {
  gossip::Method& method = peer_.method();
  const int j = req.sender;
  peer_.traffic().add_recv(req);
  auto offer = gossip::answer_rejoin(method, req, r, peer_.traffic());
  method.set_peer_down(j, r);  // out of the mixing until the round j confirms
  up_at_.erase(j);
  if (!offer) return;  // refused: j waits for it in vain and goes on without this node
  peer_.traffic().add_sent(*offer);
  t_.send(j, std::move(*offer));
  auto confirm = take_data(t_, j, MessageKind::kRejoinConfirm, 2 * timeout_);
  if (!confirm) {
    log::warn("peer ", j, " asked to rejoin before round ", r + 1,
              " but did not confirm; it stays out of the mixing");
    return;
  }
  up_at_[j] = std::max(confirm->round, r);
  log::info("peer ", j, " rejoins: back in the mixing from round ", up_at_[j] + 1);
}

void Rejoin::serve(std::int64_t r, std::optional<std::pair<int, milliseconds>> hold) {
  std::optional<net::Message> held;
  if (hold) {
    held = t_.take(data_filter(hold->first, MessageKind::kRejoinRequest), hold->second);
    if (!held)
      log::warn("peer ", hold->first, " did not ask to rejoin before round ", r + 1, " within ",
                hold->second.count() / 1000.0, " s; going on without it");
  }
  auto next = [&]() -> std::optional<net::Message> {
    if (held) return std::exchange(held, std::nullopt);
    return t_.take(data_filter(net::MessageFilter::kAnySender, MessageKind::kRejoinRequest),
                   milliseconds(0));
  };
  while (auto req = next()) answer(*req, r);
  for (auto it = up_at_.begin(); it != up_at_.end();) {
    if (it->second <= r) {
      peer_.method().set_peer_up(it->first, r);
      it = up_at_.erase(it);
    } else {
      ++it;
    }
  }
}

std::int64_t Rejoin::rejoin(bool from_checkpoint) {
  gossip::Method& method = peer_.method();
  const auto peers = peer_.topology().peers(peer_.id());
  std::vector<int> asked;
  for (int j : peers) {
    if (!t_.link_up(j, net::LinkKind::kData)) continue;
    auto req = method.rejoin_request(j, from_checkpoint);
    peer_.traffic().add_sent(req);
    t_.send(j, std::move(req));
    asked.push_back(j);
  }
  std::vector<net::Message> offers;
  for (int j : asked) {
    // A neighbour answers at its next round boundary; it may itself wait a deadline first.
    if (auto m = take_data(t_, j, MessageKind::kRejoinOffer, 2 * timeout_)) {
      peer_.traffic().add_recv(*m);
      offers.push_back(std::move(*m));
    } else {
      log::warn("rejoin: no offer from peer ", j, "; it stays out of the mixing");
    }
  }
  // An offer the method cannot use is refused (counted); its neighbour stays out.
  std::erase_if(offers, [&](const net::Message& o) {
    return !gossip::accept_rejoin(method, o, peer_.rounds(), peer_.traffic());
  });
  if (offers.empty())
    throw ProtocolError("node " + std::to_string(peer_.id()) +
                        ": cannot rejoin, no neighbour answered with a usable offer (are the "
                        "others still running, with on_peer_failure continue and the same "
                        "config?)");
  // Down notices that came before a neighbour's offer were meant for this peer's earlier
  // life (down_notices.hpp): one connection delivers in order, so they are here by now.
  for (const auto& o : offers)
    for (int k = 0; k < 1024; ++k)  // bounded: a neighbour sends one per reconnect
      if (!t_.take(data_filter(o.sender, MessageKind::kPeerDown), milliseconds(0))) break;
  std::int64_t start = 0;
  for (const auto& o : offers) start = std::max(start, o.round);
  std::vector<int> offered;
  for (const auto& o : offers) {
    offered.push_back(o.sender);
    net::Message confirm;
    confirm.kind = MessageKind::kRejoinConfirm;
    confirm.round = start;
    t_.send(o.sender, std::move(confirm));
  }
  for (int j : peers)
    if (std::find(offered.begin(), offered.end(), j) == offered.end())
      method.set_peer_down(j, start);
  log::info("rejoined with ", offers.size(), " offer(s)",
            from_checkpoint ? " (own checkpoint)" : "", "; starting at round ", start + 1);
  return start;
}

}  // namespace rumor::run
