#include "rumor/gossip/driver.hpp"

#include <algorithm>
#include <iterator>
#include <limits>
#include <tuple>

#include "rumor/common/error.hpp"
#include "rumor/common/log.hpp"

namespace rumor::gossip {

void Traffic::add_sent(const net::Message& m) {
  bytes_sent += net::wire_size(m);
  ++msgs_sent;
}

void Traffic::add_recv(const net::Message& m) {
  bytes_recv += net::wire_size(m);
  ++msgs_recv;
}

void Traffic::add_rejected(const net::Message& m, const Refusal& why) {
  ++msgs_rejected;
  // Rounds are shown from 1; the peer's round may be any value, the largest included.
  const std::string round = m.round == std::numeric_limits<std::int64_t>::max()
                                ? std::to_string(m.round) + "+1"
                                : std::to_string(m.round + 1);
  if (rejected[m.sender][why.reason]++ == 0)
    log::warn("refused a ", net::to_string(m.kind), " message from peer ", m.sender, " for round ",
              round, ": ", why.reason, " (", why.detail,
              "); later ones for the same reason are counted, not logged");
}

std::optional<net::Message> answer_rejoin(Method& method, const net::Message& request,
                                          std::int64_t round, Traffic& traffic) {
  try {
    return method.rejoin_offer(request, round);
  } catch (const ProtocolError& e) {
    method.set_peer_down(request.sender, round);  // rejoin_offer may have let it in first
    traffic.add_rejected(request, {"malformed rejoin request", e.what()});
    return std::nullopt;
  }
}

bool accept_rejoin(Method& method, const net::Message& offer, std::int64_t last_round,
                   Traffic& traffic) {
  Refusal why;
  if (offer.round < 0 || offer.round > last_round) {
    why = {"malformed rejoin offer", "round " + std::to_string(offer.round) +
                                         " outside this run's 0.." + std::to_string(last_round)};
  } else {
    try {
      method.rejoin_accept(offer);
      return true;
    } catch (const ProtocolError& e) {
      why = {"malformed rejoin offer", e.what()};
    }
  }
  traffic.add_rejected(offer, why);
  return false;
}

bool accept_leave(Method& method, const net::Message& bye, std::int64_t round,
                  std::int64_t last_round, Traffic& traffic) {
  Refusal why;
  if (bye.round < 0 || bye.round > last_round) {
    why = {"malformed goodbye", "round " + std::to_string(bye.round) + " outside this run's 0.." +
                                    std::to_string(last_round)};
  } else {
    try {
      method.accept_leave(bye, std::max(bye.round, round));
      return true;
    } catch (const ProtocolError& e) {
      why = {"malformed goodbye", e.what()};
    }
  }
  traffic.add_rejected(bye, why);
  method.set_peer_down(bye.sender, round);
  return false;
}

std::uint64_t Traffic::rejected_from(int sender) const {
  std::uint64_t n = 0;
  if (auto it = rejected.find(sender); it != rejected.end())
    for (const auto& [reason, count] : it->second) n += count;
  return n;
}

namespace {

// The gate between the transport and an exchange: true when `m` may be absorbed; a refused
// message is counted and dropped.
bool admit(const PeerIo& p, const net::Message& m) {
  Refusal why;
  try {
    why = p.exchange->check(m);
  } catch (const std::exception& e) {
    why = {"check failed", e.what()};
  }
  if (!why) return true;
  p.traffic->add_rejected(m, why);
  return false;
}

net::MessageFilter filter_of(const Expected& e) {
  net::MessageFilter f;
  f.sender = e.sender;
  f.round = e.round;
  f.kind = e.kind;
  if (!e.any_stage) f.stage = e.stage;
  f.link = e.link;
  return f;
}

void send_all(const PeerIo& p, std::int64_t round, int stage) {
  for (auto& out : p.exchange->produce(round, stage)) {
    p.traffic->add_sent(out.message);
    if (p.sim) out.message.sim_time_s = p.sim->now_s;
    p.transport->send(out.to, std::move(out.message));
  }
}

// `late`: messages given up on earlier (tolerant run_blocking); one that is among them
// counts as late.
void take_early(const PeerIo& p, std::int64_t round, int stage, LateMessages* late = nullptr) {
  if (!p.exchange->absorbs_early()) return;
  net::MessageFilter f;
  f.kind = net::MessageKind::kGossip;
  f.link = net::LinkKind::kData;
  f.max_round = p.exchange->early_round_limit(round);
  std::vector<net::Message> early;
  while (auto m = p.transport->take(f, std::chrono::milliseconds(0))) {
    p.traffic->add_recv(*m);
    if (late && std::erase(late->missed, LateMessages::Key{m->sender, m->round, m->kind}) > 0)
      ++p.traffic->msgs_late;
    if (admit(p, *m)) early.push_back(std::move(*m));
  }
  if (!early.empty()) p.exchange->absorb(round, stage, early);
}

void take_expected(const PeerIo& p, std::int64_t round, int stage,
                   std::chrono::milliseconds timeout) {
  std::vector<net::Message> got;
  for (const auto& e : p.exchange->expect(round, stage)) {
    const net::MessageFilter f = filter_of(e);
    auto m = p.transport->take(f, timeout);
    if (!m) {
      throw ProtocolError(
          "node " + std::to_string(p.transport->self()) + ": no message from peer " +
          std::to_string(e.sender) + " for round " + std::to_string(e.round) + " (" +
          (e.link == net::LinkKind::kData ? "data" : "control") + " link, " +
          net::to_string(e.kind) + ") within " + std::to_string(timeout.count() / 1000.0) +
          " s; is that peer alive? raise network.round_timeout_s if it is slow");
    }
    p.traffic->add_recv(*m);
    if (admit(p, *m)) got.push_back(std::move(*m));
  }
  p.exchange->absorb(round, stage, got);
}

// Simulated time (see SimClock). The inbox is kept sorted by (arrival, sender, round, seq)
// so what a peer sees never depends on the order threads delivered messages in. The mailbox
// is drained under one lock (a take() that finds nothing waits on its condition variable,
// a system call even with no time to wait).
void pull_inbox(const PeerIo& p) {
  auto& inbox = p.sim->inbox;
  auto arrived = p.transport->drain();
  if (arrived.empty()) return;
  inbox.insert(inbox.end(), std::make_move_iterator(arrived.begin()),
               std::make_move_iterator(arrived.end()));
  std::stable_sort(inbox.begin(), inbox.end(), [](const net::Message& a, const net::Message& b) {
    return std::tie(a.sim_time_s, a.sender, a.round, a.seq) <
           std::tie(b.sim_time_s, b.sender, b.round, b.seq);
  });
}

// Moves out of the inbox the gossip messages that have arrived by `until_s`.
std::vector<net::Message> take_arrived(const PeerIo& p, double until_s) {
  std::vector<net::Message> out;
  auto& inbox = p.sim->inbox;
  std::size_t kept = 0;  // the rest close up in place, in order
  for (auto& m : inbox) {
    if (m.kind == net::MessageKind::kGossip && m.link == net::LinkKind::kData &&
        m.sim_time_s <= until_s) {
      p.traffic->add_recv(m);
      if (admit(p, m)) out.push_back(std::move(m));
    } else {
      if (&inbox[kept] != &m) inbox[kept] = std::move(m);
      ++kept;
    }
  }
  inbox.erase(inbox.begin() + static_cast<std::ptrdiff_t>(kept), inbox.end());
  return out;
}

void sim_stage(const PeerIo& p, std::int64_t round, int stage) {
  SimClock& c = *p.sim;
  pull_inbox(p);
  const bool early = p.exchange->absorbs_early();
  if (early) {
    auto got = take_arrived(p, c.now_s);
    if (!got.empty()) p.exchange->absorb(round, stage, got);
  }
  const double limit = c.now_s + c.deadline_s;
  double until = c.now_s;
  bool waited_out = false;
  std::vector<net::Message> got;
  for (const auto& e : p.exchange->expect(round, stage)) {
    const net::MessageFilter f = filter_of(e);
    auto it = std::find_if(c.inbox.begin(), c.inbox.end(),
                           [&](const net::Message& m) { return f.matches(m); });
    if (it == c.inbox.end()) {
      ++p.traffic->msgs_missed;  // lost, or never sent: waited for until the deadline
      waited_out = true;
      continue;
    }
    if (it->sim_time_s > limit) {
      ++p.traffic->msgs_late;
      waited_out = true;
      if (!early) {  // cannot use it later: dropped (it did arrive)
        p.traffic->add_recv(*it);
        c.inbox.erase(it);
      }
      continue;
    }
    until = std::max(until, it->sim_time_s);
    p.traffic->add_recv(*it);
    if (admit(p, *it)) got.push_back(std::move(*it));
    c.inbox.erase(it);
  }
  c.now_s = waited_out ? limit : until;
  p.exchange->absorb(round, stage, got);
  if (!early) {
    // Older messages nobody will ask for (from peers marked down, or dropped rounds).
    std::erase_if(c.inbox, [&](const net::Message& m) { return m.round < round; });
  }
}

}  // namespace

void sim_flush(const PeerIo& p, std::int64_t round, double until_s) {
  if (!p.sim || !p.exchange || !p.exchange->absorbs_early()) return;
  pull_inbox(p);
  auto got = take_arrived(p, until_s);
  if (got.empty()) return;
  p.sim->now_s = std::max(p.sim->now_s, got.back().sim_time_s);
  p.exchange->absorb(round, 0, got);
}

std::chrono::milliseconds RoundDeadline::next() const {
  if (!adaptive_ || recent_.size() < 3) return timeout_;
  auto v = recent_;
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2), v.end());
  const auto d =
      std::chrono::milliseconds(static_cast<std::int64_t>(factor_ * v[v.size() / 2] * 1000));
  return std::min(std::max(d, floor_), timeout_);
}

void RoundDeadline::record(double round_seconds) {
  recent_.push_back(round_seconds);
  if (recent_.size() > 16) recent_.erase(recent_.begin());
}

std::optional<net::Message> take_or_give_up(net::Transport& t, const net::MessageFilter& f,
                                            std::chrono::milliseconds timeout,
                                            std::chrono::milliseconds link_down_grace,
                                            const std::function<bool()>& give_up) {
  using clock = std::chrono::steady_clock;
  const auto until = clock::now() + timeout;
  const net::LinkKind link = f.link.value_or(net::LinkKind::kData);
  bool down = false;
  clock::time_point down_since{};
  // Bounded: every pass waits up to 50 ms and the loop ends at `until`.
  while (true) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - clock::now());
    if (auto m = t.take(
            f, std::clamp(left, std::chrono::milliseconds(0), std::chrono::milliseconds(50))))
      return m;
    const auto now = clock::now();
    if (now >= until || (give_up && give_up())) return std::nullopt;
    // A link that went down during the wait lost what was on it, and a message dropped at
    // a sender while it was down is not sent again: give up link_down_grace after the drop,
    // even when the link is up again (a message sent on the new connection before is taken).
    if (!down && !t.link_up(f.sender, link)) {
      down = true;
      down_since = now;
    } else if (down && now - down_since >= link_down_grace) {
      return std::nullopt;
    }
  }
}

namespace {

// Late messages: the ones given up on in earlier rounds that have arrived since.
void take_late(const PeerIo& p, std::int64_t round, LateMessages& late) {
  std::vector<net::Message> got;
  std::erase_if(late.missed, [&](const LateMessages::Key& k) {
    net::MessageFilter f;
    f.sender = k.sender;
    f.round = k.round;
    f.kind = k.kind;
    f.link = net::LinkKind::kData;
    auto m = p.transport->take(f, std::chrono::milliseconds(0));
    if (!m) return k.round + 1000 < round;  // bounded: a dead peer's never come
    p.traffic->add_recv(*m);
    ++p.traffic->msgs_late;
    if (p.exchange->absorbs_early() && admit(p, *m)) got.push_back(std::move(*m));
    return true;
  });
  if (!got.empty()) p.exchange->absorb(round, 0, got);
}

void take_expected_until(const PeerIo& p, std::int64_t round, int stage, const WaitPolicy& w,
                         LateMessages& late, std::vector<int>& missed) {
  using clock = std::chrono::steady_clock;
  const auto until = clock::now() + w.deadline;
  std::vector<net::Message> got;
  for (const auto& e : p.exchange->expect(round, stage)) {
    const net::MessageFilter f = filter_of(e);
    const auto left = std::max(clock::duration::zero(), until - clock::now());
    std::function<bool()> give_up = w.give_up;
    if (w.stop_waiting_for)
      give_up = [&w, sender = e.sender] {
        return (w.give_up && w.give_up()) || w.stop_waiting_for(sender);
      };
    auto m = take_or_give_up(*p.transport, f,
                             std::chrono::duration_cast<std::chrono::milliseconds>(left),
                             w.link_down_grace, give_up);
    if (!m) {
      ++p.traffic->msgs_missed;
      late.missed.push_back({e.sender, e.round, e.kind});
      missed.push_back(e.sender);
      continue;
    }
    p.traffic->add_recv(*m);
    if (admit(p, *m)) got.push_back(std::move(*m));
  }
  p.exchange->absorb(round, stage, got);
}

}  // namespace

std::vector<int> run_blocking(const PeerIo& p, std::int64_t round, const WaitPolicy& w,
                              LateMessages& late) {
  if (w.fail_on_missing) {
    run_blocking(p, round, w.deadline);
    return {};
  }
  std::vector<int> missed;
  take_late(p, round, late);
  const int stages = p.exchange->stages(round);
  for (int s = 0; s < stages; ++s) {
    send_all(p, round, s);
    take_early(p, round, s, &late);
    take_expected_until(p, round, s, w, late, missed);
  }
  std::sort(missed.begin(), missed.end());
  missed.erase(std::unique(missed.begin(), missed.end()), missed.end());
  return missed;
}

void run_blocking(const PeerIo& p, std::int64_t round, std::chrono::milliseconds timeout) {
  const int stages = p.exchange->stages(round);
  for (int s = 0; s < stages; ++s) {
    send_all(p, round, s);
    take_early(p, round, s);
    take_expected(p, round, s, timeout);
  }
}

int phased_stages(const std::vector<PeerIo>& peers, std::int64_t round) {
  int stages = 0;
  for (const auto& p : peers)
    if (p.exchange) stages = std::max(stages, p.exchange->stages(round));
  return stages;
}

void send_first_stage(const PeerIo& peer, std::int64_t round) {
  if (peer.exchange) send_all(peer, round, 0);
}

void run_phased(const std::vector<PeerIo>& peers, std::int64_t round, ThreadPool& pool,
                std::chrono::milliseconds timeout, bool first_sent,
                const std::function<void(std::size_t)>& then) {
  const int stages = phased_stages(peers, round);
  for (int s = 0; s < stages; ++s) {
    if (s > 0 || !first_sent)
      pool.parallel_for(peers.size(), [&](std::size_t i) {
        if (peers[i].exchange) send_all(peers[i], round, s);
      });
    pool.parallel_for(peers.size(), [&](std::size_t i) {
      if (peers[i].exchange) {
        if (peers[i].sim) {
          sim_stage(peers[i], round, s);
        } else {
          take_early(peers[i], round, s);
          take_expected(peers[i], round, s, timeout);
        }
      }
      if (then && s + 1 == stages) then(i);
    });
  }
  if (then && stages == 0) pool.parallel_for(peers.size(), then);
}

}  // namespace rumor::gossip
