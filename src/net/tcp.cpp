// TCP transport on Boost.Asio 1.74: the public TcpTransport (owner threads).
//
// The pieces (all internal, all on the one network thread):
//   tcp_impl       the io_context, its thread, the links and the link state changes
//   tcp_connector  listening, accepting, dialling with backoff, admission to a link
//   tcp_session    one connection: handshake, reader and coalesced writer, heartbeats
//   tcp_handshake  the handshake as a state machine
//   tcp_link       one link's send queue and counters (shared with the owner under a mutex)
#include "rumor/net/tcp.hpp"

#include <thread>

#include "rumor/common/error.hpp"
#include "rumor/common/log.hpp"
#include "shm_link.hpp"
#include "tcp_impl.hpp"
#include "tcp_session.hpp"
#include "tls.hpp"

namespace rumor::net {

using std::chrono::milliseconds;

TcpTransport::TcpTransport(TransportOptions options)
    : impl_(std::make_shared<Impl>(*this, std::move(options))) {}

TcpTransport::~TcpTransport() {
  stop();
}

int TcpTransport::bind(const std::string& host, int port) {
  return impl_->connector.bind(host, port);
}

int TcpTransport::port() const {
  return impl_->connector.port();
}

void TcpTransport::start(const Topology& topology, int self) {
  auto& im = *impl_;
  if (im.started) throw Error("TcpTransport::start called twice");
  if (self < 0 || self >= topology.size())
    throw TopologyError("node id " + std::to_string(self) + " outside 0.." +
                        std::to_string(topology.size() - 1) + " of topology '" + topology.name() +
                        "'");
  if (im.options.tls) {
    try {
      im.tls = std::make_shared<TlsContext>(im.options, self);
    } catch (const ConfigError& e) {
      throw ConfigError("node " + std::to_string(self) + ": " + e.what());
    }
  }
  im.topology = std::make_unique<Topology>(topology);
  im.self = self_ = self;
  data_peers_ = topology.peers(self);
  control_peers_ = im.options.control_ring ? topology.control_peers(self) : std::vector<int>{};
  auto add_link = [&](int peer, LinkKind kind) {
    auto link = std::make_unique<Link>(im.ioc, peer, kind, self < peer);
    link->stats.peer = peer;
    link->stats.link = kind;
    const NodeInfo& info = topology.node(peer);
    link->address = info.host + ":" + std::to_string(info.port);
    if (link->dialer) im.connector.resolve(*link, info);
    link->backoff = im.options.retry_min;
    link->wanted = !(im.on_demand && kind == LinkKind::kData);
    im.links[{peer, static_cast<int>(kind)}] = std::move(link);
  };
  for (int p : data_peers_) add_link(p, LinkKind::kData);
  for (int p : control_peers_) add_link(p, LinkKind::kControl);

  if (!im.connector.listening()) {
    const NodeInfo& me = topology.node(self);
    const std::string host = im.options.listen_host.empty() ? me.host : im.options.listen_host;
    const int port = im.options.listen_port >= 0 ? im.options.listen_port : me.port;
    try {
      bind(host, port);
    } catch (const Error& e) {
      throw Error("node " + std::to_string(self) + " " + e.what());
    }
  }
  im.started = true;
  im.started_at = std::chrono::steady_clock::now();
  im.work.emplace(im.ioc.get_executor());
  asio::post(im.ioc, [&im] {
    im.guarded("start", [&] {
      im.connector.accept();
      for (auto& [key, link] : im.links)
        if (link->dialer && link->wanted) im.connector.dial(*link);
    });
  });
  im.thread = std::thread([&im] { im.run_network_thread(); });
}

void TcpTransport::open_links_on_demand() {
  if (impl_->started) throw Error("TcpTransport::open_links_on_demand after start");
  impl_->on_demand = true;
}

void TcpTransport::open_link(int peer) {
  auto& im = *impl_;
  Link* link = im.started ? im.find(peer, LinkKind::kData) : nullptr;
  if (!link)
    throw ProtocolError("node " + std::to_string(self_) + " cannot open a link to node " +
                        std::to_string(peer) + ": not a data neighbour" +
                        (im.started ? "" : " (transport not started)"));
  {
    std::lock_guard lock(link->mu);
    if (link->wanted) return;
    link->wanted = true;
  }
  if (link->dialer)
    asio::post(im.ioc, [&im, link] {
      im.guarded("open link", [&] {
        if (!im.stopping && !link->session) im.connector.dial(*link);
      });
    });
}

void TcpTransport::wait_connected(std::optional<std::chrono::milliseconds> timeout) {
  auto& im = *impl_;
  if (!im.started) throw Error("wait_connected before start");
  const auto deadline =
      std::chrono::steady_clock::now() + timeout.value_or(im.options.connect_timeout);
  auto missing = [&]() -> Link* {
    for (auto& [key, link] : im.links) {
      std::lock_guard lock(link->mu);
      if (link->wanted && !link->up) return link.get();
    }
    return nullptr;
  };
  std::unique_lock lock(im.up_mutex);
  while (Link* link = missing()) {
    if (im.up_cv.wait_until(lock, deadline) == std::cv_status::timeout && missing()) {
      link = missing();
      std::string last;
      {
        std::lock_guard l(link->mu);
        last = link->last_error;
      }
      const auto ms =
          std::chrono::duration_cast<milliseconds>(timeout.value_or(im.options.connect_timeout));
      std::string msg = "node " + std::to_string(im.self) + ": no " + to_string(link->kind) +
                        " link to node " + std::to_string(link->peer) + " at " + link->address +
                        " within " + std::to_string(ms.count()) + " ms";
      if (!link->dialer) msg += " (node " + std::to_string(link->peer) + " dials this node)";
      if (!last.empty()) msg += "; last failure: " + last;
      msg += ". Check that the node runs with the same topology, run id and secret.";
      throw ProtocolError(msg);
    }
  }
}

bool TcpTransport::send(int to, Message message) {
  auto& im = *impl_;
  Link* link = im.started ? im.find(to, message.link) : nullptr;
  if (!link)
    throw ProtocolError("node " + std::to_string(self_) + " cannot send to node " +
                        std::to_string(to) + ": not a " + to_string(message.link) + " neighbour" +
                        (im.started ? "" : " (transport not started)"));
  if (im.on_demand && message.link == LinkKind::kData) open_link(to);
  Outgoing o;
  o.app = true;
  o.payload = std::move(message.payload);
  std::shared_ptr<ShmLink> shm;
  {
    std::lock_guard lock(link->mu);
    const std::size_t bytes = o.payload.size();
    if (im.stopping || link->queue.size() >= im.options.send_queue_messages ||
        link->queued_bytes + bytes > im.options.send_queue_bytes) {
      link->stats.drops += 1;
      return false;
    }
    wire::Header h = message_header(message, self_, ++link->next_seq);
    o.head = encode_frame_head(h, bytes);
    link->queued_bytes += o.bytes();
    link->queue.push_back(std::move(o));
    shm = link->shm;
    if (!shm && link->up && !link->wake_posted) {
      link->wake_posted = true;
      asio::post(im.ioc, [&im, link] { im.guarded("wake", [&] { im.wake(*link); }); });
    }
  }
  // Shared memory: this thread writes the queue into the ring, no network-thread hop.
  if (shm) shm->send_now();
  return true;
}

std::optional<Message> TcpTransport::receive(const MessageFilter& filter,
                                             std::chrono::milliseconds timeout) {
  using std::chrono::milliseconds;
  if (auto m = mailbox_.take(filter, milliseconds(0))) return m;
  std::shared_ptr<ShmLink> shm;
  Link* link = impl_->started && filter.sender != MessageFilter::kAnySender &&
                       filter.link == LinkKind::kData && timeout.count() > 0
                   ? impl_->find(filter.sender, LinkKind::kData)
                   : nullptr;
  if (link) {
    std::lock_guard lock(link->mu);
    shm = link->shm;
  }
  if (!shm) return mailbox_.take(filter, timeout);
  const auto until = std::chrono::steady_clock::now() + timeout;
  std::optional<Message> got;
  shm->receive_until(until, [&] {
    got = mailbox_.take(filter, milliseconds(0));
    return got.has_value() || mailbox_.closed();
  });
  if (got) return got;
  // The link stopped (its messages may come over TCP again), or the time is up.
  const auto left =
      std::chrono::duration_cast<milliseconds>(until - std::chrono::steady_clock::now());
  return mailbox_.take(filter, std::max(left, milliseconds(0)));
}

bool TcpTransport::flush(std::chrono::milliseconds deadline) {
  const auto until = std::chrono::steady_clock::now() + deadline;
  // Bounded: polls every 2 ms until `until`.
  while (true) {
    bool pending = false;
    for (const auto& [key, link] : impl_->links) {
      std::lock_guard lock(link->mu);
      pending = pending || (link->up && (!link->queue.empty() || link->writing > 0));
    }
    if (!pending) return true;
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

void TcpTransport::stop() {
  auto& im = *impl_;
  if (im.stopped) return;
  im.stopped = true;
  if (im.started) {
    asio::post(im.ioc, [&im] { im.guarded("stop", [&] { im.close_all(); }); });
    im.work.reset();
    if (im.thread.joinable()) im.thread.join();
  } else {
    im.connector.close();
  }
  im.stopping = true;
  for (auto& [key, link] : im.links) {
    std::lock_guard lock(link->mu);
    for (const auto& o : link->queue) link->stats.drops += o.app ? 1 : 0;
    link->queue.clear();
    link->queued_bytes = 0;
    link->up = false;
  }
  mailbox_.close();
}

TransportStats TcpTransport::stats() const {
  auto& im = *impl_;
  TransportStats out;
  for (const auto& [key, link] : im.links) {
    std::lock_guard lock(link->mu);
    LinkStats s = link->stats;
    s.up = link->up;
    out.add(s);
  }
  out.refused_handshakes = im.refused_total;
  out.malformed = im.malformed_total;
  out.handler_errors = im.handler_errors_total;
  out.busy_refused = im.busy_total;
  out.handshake_timeouts = im.handshake_timeouts_total;
  return out;
}

void TcpTransport::close_link(int peer, LinkKind kind, const std::string& why) {
  auto& im = *impl_;
  Link* link = im.started ? im.find(peer, kind) : nullptr;
  if (!link) return;
  asio::post(im.ioc, [&im, link, why] {
    im.guarded("close link", [&] {
      if (!link->session || link->session->state() != Session::State::kEstablished) return;
      log::warn(im.who(), ": closing the ", to_string(link->kind), " link to node ", link->peer,
                " (", why, ")");
      link->session->say_bye("closed by this node: " + why);
    });
  });
}

bool TcpTransport::link_up(int peer, LinkKind link) const {
  Link* l = impl_->find(peer, link);
  if (!l) return false;
  std::lock_guard lock(l->mu);
  return l->up;
}

}  // namespace rumor::net
