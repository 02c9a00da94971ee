#include "tcp_impl.hpp"

#include "rumor/common/log.hpp"
#include "tcp_session.hpp"

namespace rumor::net {

void TcpTransport::Impl::run_network_thread() {
  net_thread.bind_to_current_thread();
  while (true) {
    try {
      ioc.run();
      return;
    } catch (const std::exception& e) {
      // Last resort: every handler is guarded, so this is a bug. Keep the node's network
      // running rather than silently losing every link.
      log::error(who(), ": BUG: an unguarded network handler threw: ", e.what(),
                 "; the network thread carries on, but some connection state may be stale");
    }
  }
}

void TcpTransport::Impl::log_unguarded(const char* where, const std::string& what) noexcept {
  try {
    log::error(who(), ": network handler '", where, "' failed: ", what);
  } catch (...) {  // logging itself failed (out of memory): nothing left to tell
  }
}

void TcpTransport::Impl::track(const std::shared_ptr<Session>& s) {
  net_thread.assert_on_net_thread();
  std::erase_if(sessions, [](const std::weak_ptr<Session>& w) { return w.expired(); });
  sessions.push_back(s);
}

void TcpTransport::Impl::attach(Link& link, const std::shared_ptr<Session>& s) {
  net_thread.assert_on_net_thread();
  std::shared_ptr<Session> old = std::exchange(link.session, s);
  if (old) {
    // Only an authenticated connection gets here while the peer is connected (admit refuses
    // the others): a restarted peer. Said aloud, never a silent swap.
    log::warn(who(), ": node ", link.peer, " authenticated again on its ", to_string(link.kind),
              " link from ", s->remote(), " (a restarted peer?); it replaces the connection from ",
              old->remote());
    old->fail("replaced by a new authenticated connection from the same peer", false);
  }
  bool reconnect = false;
  {
    std::lock_guard lock(link.mu);
    link.up = true;
    reconnect = link.ever_up;
    if (reconnect) link.stats.reconnects += 1;
    link.ever_up = true;
    link.last_error.clear();
  }
  link.backoff = options.retry_min;
  { std::lock_guard lock(up_mutex); }
  up_cv.notify_all();
  log::debug(who(), ": ", to_string(link.kind), " link to node ", link.peer,
             reconnect ? " up again" : " up");
  emit({LinkEventType::kUp, link.peer, link.kind, reconnect ? "reconnected" : ""});
  s->kick();
}

void TcpTransport::Impl::on_session_closed(Session& s, const std::string& reason) {
  net_thread.assert_on_net_thread();
  Link& link = *s.link();
  if (link.session.get() != &s) return;  // an old connection that was replaced
  auto keep = std::move(link.session);
  std::uint64_t dropped = 0;
  {
    std::lock_guard lock(link.mu);
    link.up = false;
    for (const auto& o : link.queue) dropped += o.app ? 1 : 0;
    link.stats.drops += dropped;
    link.queue.clear();
    link.queued_bytes = 0;
    link.last_error = reason;
  }
  if (stopping) return;
  // Redial first: a throwing event handler below must not leave the link undialled.
  if (link.dialer) {
    link.backoff = options.retry_min;
    connector.schedule_dial(link, options.retry_min);
  }
  const std::string why = s.peer_bye() ? "peer stopped" : reason;
  if (s.peer_bye() && dropped == 0) {
    log::debug(who(), ": ", to_string(link.kind), " link to node ", link.peer, " closed: ", why);
  } else {
    log::warn(who(), ": ", to_string(link.kind), " link to node ", link.peer, " down: ", why,
              dropped ? "; dropped " + std::to_string(dropped) + " queued messages" : "");
  }
  emit({LinkEventType::kDown, link.peer, link.kind, why, s.peer_bye() && dropped == 0});
}

void TcpTransport::Impl::wake(Link& link) {
  net_thread.assert_on_net_thread();
  {
    std::lock_guard lock(link.mu);
    link.wake_posted = false;
  }
  if (link.session && link.session->state() == Session::State::kEstablished)
    link.session->kick_guarded();
}

void TcpTransport::Impl::refused(int peer, LinkKind kind, const std::string& reason) {
  net_thread.assert_on_net_thread();
  bump(refused_total, find(peer, kind), &LinkStats::refused);
  if (peer < 0) {  // a `rumor node --join` request: no link, nobody to tell
    log::warn(who(), ": refused a ", reason);
    return;
  }
  log::warn(who(), ": refused a ", to_string(kind), " connection claiming node ", peer, ": ",
            reason);
  emit({LinkEventType::kRefused, peer, kind, reason});
}

void TcpTransport::Impl::count_rejected(Link& link, std::uint64_t LinkStats::*counter,
                                        const std::string& detail) {
  std::uint64_t before = 0;
  {
    std::lock_guard lock(link.mu);
    before = link.stats.*counter;
    link.stats.*counter += 1;
  }
  if (before == 0)
    log::warn(who(), ": refused a message from node ", link.peer, " on its ", to_string(link.kind),
              " link unread: ", detail, "; later ones for the same reason are counted, not logged");
}

void TcpTransport::Impl::count_handshake_timeout(const std::string& from) {
  net_thread.assert_on_net_thread();
  handshake_timeouts_total += 1;
  refused_total += 1;
  log::warn(who(), ": connection from ", from, " did not complete its handshake within ",
            options.handshake_timeout.count(), " ms; closed");
}

void TcpTransport::Impl::count_malformed(Link* link, const std::string& reason,
                                         const std::string& from) {
  net_thread.assert_on_net_thread();
  bump(malformed_total, link, &LinkStats::malformed);
  log::warn(who(), ": closed connection from ", from,
            link ? " (node " + std::to_string(link->peer) + ")" : std::string(),
            ": bad input: ", reason);
}

void TcpTransport::Impl::count_handler_error(Link* link, const char* where, const std::string& what,
                                             const std::string& from) {
  net_thread.assert_on_net_thread();
  bump(handler_errors_total, link, &LinkStats::handler_errors);
  log::error(who(), ": network handler '", where, "' of the connection with ", from,
             link ? " (node " + std::to_string(link->peer) + ")" : std::string(), " threw: ", what,
             "; closing that connection");
}

void TcpTransport::Impl::bump(std::atomic<std::uint64_t>& total, Link* link,
                              std::uint64_t LinkStats::*counter) {
  total += 1;
  if (link) {
    std::lock_guard lock(link->mu);
    link->stats.*counter += 1;
  }
}

void TcpTransport::Impl::close_all() {
  net_thread.assert_on_net_thread();
  stopping = true;
  connector.close();
  for (auto& [key, link] : links) link->retry.cancel();
  for (auto& w : sessions)
    if (auto s = w.lock()) s->say_bye();
  for (auto& [key, link] : links) link->session.reset();
  sessions.clear();
}

}  // namespace rumor::net
