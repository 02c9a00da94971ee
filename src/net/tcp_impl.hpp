#pragma once
// The network-side state of a TcpTransport (internal): the io_context and its thread, the
// links (fixed at start), the live sessions, and the link state changes sessions report.
//
// Threads: the members marked "network thread" and every function but deliver(),
// count_rejected() and the counters run on the network thread (asserted in debug builds); the
// public TcpTransport methods use only the parts under each Link's mutex and the atomics.
#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <optional>
#include <thread>

#include "asio.hpp"
#include "frame.hpp"
#include "net_thread.hpp"
#include "rumor/net/tcp.hpp"
#include "rumor/topology/topology.hpp"
#include "tcp_connector.hpp"
#include "tcp_link.hpp"

namespace rumor::net {

class Session;
class TlsContext;

struct TcpTransport::Impl {
  Impl(TcpTransport& o, TransportOptions opt) : owner(o), options(std::move(opt)) {}

  TcpTransport& owner;
  TransportOptions options;
  asio::io_context ioc{1};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  NetThreadCheck net_thread;
  Connector connector{*this};
  std::map<std::pair<int, int>, std::unique_ptr<Link>> links;  // (peer, kind); fixed at start
  std::vector<std::weak_ptr<Session>> sessions;                // network thread: for stop()
  std::shared_ptr<BufferPool> pool = std::make_shared<BufferPool>();
  std::unique_ptr<Topology> topology;
  std::shared_ptr<TlsContext> tls;  // network.tls; made at start
  int self = -1;
  std::chrono::steady_clock::time_point started_at;
  std::thread thread;
  bool started = false;
  bool on_demand = false;  // data links open on demand (TcpTransport::open_links_on_demand)
  bool stopped = false;
  std::atomic<bool> stopping{false};
  std::atomic<std::uint64_t> refused_total{0};
  std::atomic<std::uint64_t> malformed_total{0};
  std::atomic<std::uint64_t> handler_errors_total{0};
  std::atomic<std::uint64_t> busy_total{0};
  std::atomic<std::uint64_t> handshake_timeouts_total{0};
  std::size_t pending_handshakes = 0;  // network thread: accepted, not yet authenticated
  std::mutex up_mutex;
  std::condition_variable up_cv;

  Link* find(int peer, LinkKind kind) const {
    auto it = links.find({peer, static_cast<int>(kind)});
    return it == links.end() ? nullptr : it->second.get();
  }
  std::string who() const { return "node " + std::to_string(self); }

  // The network thread's body: runs the io_context until stop().
  void run_network_thread();
  // Runs a handler body that belongs to no session; an exception is logged, not propagated.
  template <typename F>
  void guarded(const char* where, F&& body) noexcept {
    net_thread.assert_on_net_thread();
    run_guarded(body, [&](const char* what) { log_unguarded(where, what); });
  }
  void log_unguarded(const char* where, const std::string& what) noexcept;

  // Network thread: sessions and link state.
  void track(const std::shared_ptr<Session>& s);
  void attach(Link& link, const std::shared_ptr<Session>& s);
  void on_session_closed(Session& s, const std::string& reason);
  void wake(Link& link);
  void refused(int peer, LinkKind kind, const std::string& reason);
  void count_malformed(Link* link, const std::string& reason, const std::string& from);
  void count_handler_error(Link* link, const char* where, const std::string& what,
                           const std::string& from);
  void close_all();
  // Adds one to a transport total and, when `link` is known, to that link's counter.
  void bump(std::atomic<std::uint64_t>& total, Link* link, std::uint64_t LinkStats::*counter);
  void emit(LinkEvent event) { owner.emit(std::move(event)); }
  void deliver(Message m) { owner.mailbox_.push(std::move(m)); }
  std::size_t buffered_from(int peer) const { return owner.mailbox_.bytes_from(peer); }
  std::int64_t current_round() const { return owner.current_round(); }
  // Counts a message refused before the mailbox; logs the first of each (link, reason).
  // Any thread (the shared-memory ring's reader is not always the network thread).
  void count_rejected(Link& link, std::uint64_t LinkStats::*counter, const std::string& detail);
  // An accepted connection that did not finish its handshake in time (logged, counted).
  void count_handshake_timeout(const std::string& from);
};

}  // namespace rumor::net
