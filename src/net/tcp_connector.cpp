#include "tcp_connector.hpp"

#include <algorithm>

#include "rumor/common/error.hpp"
#include "rumor/common/log.hpp"
#include "rumor/topology/topology.hpp"
#include "tcp_impl.hpp"
#include "tcp_session.hpp"

namespace rumor::net {

using std::chrono::milliseconds;

Connector::Connector(TcpTransport::Impl& impl) : impl_(impl), acceptor_(impl.ioc) {}

int Connector::bind(const std::string& host, int port) {
  try {
    tcp::endpoint ep(asio::ip::make_address(host), static_cast<unsigned short>(port));
    acceptor_.open(ep.protocol());
    acceptor_.set_option(tcp::acceptor::reuse_address(true));
    acceptor_.bind(ep);
    acceptor_.listen(asio::socket_base::max_listen_connections);
  } catch (const boost::system::system_error& e) {
    close();
    throw Error("cannot listen on " + host + ":" + std::to_string(port) + ": " + e.what() +
                " (is another process using the port? is the host an address of this machine?)");
  }
  return Connector::port();
}

int Connector::port() const {
  boost::system::error_code ec;
  auto ep = acceptor_.local_endpoint(ec);
  return ec ? -1 : ep.port();
}

void Connector::close() {
  boost::system::error_code ignored;
  acceptor_.close(ignored);
}

void Connector::resolve(Link& link, const NodeInfo& peer) {
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(peer.host, ec);
  if (!ec) {
    link.endpoint = tcp::endpoint(addr, static_cast<unsigned short>(peer.port));
    return;
  }
  tcp::resolver resolver(impl_.ioc);
  auto results = resolver.resolve(peer.host, std::to_string(peer.port), ec);
  if (ec || results.empty())
    throw TopologyError("node " + std::to_string(impl_.self) + ": cannot resolve host '" +
                        peer.host + "' of node " + std::to_string(link.peer) + ": " + ec.message());
  link.endpoint = results.begin()->endpoint();
}

void Connector::accept() {
  impl_.net_thread.assert_on_net_thread();
  acceptor_.async_accept([this](boost::system::error_code ec, tcp::socket socket) {
    impl_.guarded("accept", [&] {
      if (impl_.stopping || !acceptor_.is_open()) return;
      if (!ec) {
        on_accepted(std::move(socket));
        accept();
        return;
      }
      // E.g. out of file descriptors: back off instead of spinning.
      log::warn(impl_.who(), ": accept failed: ", ec.message());
      auto t = std::make_shared<asio::steady_timer>(impl_.ioc, milliseconds(100));
      t->async_wait([this, t](boost::system::error_code e) {
        impl_.guarded("accept backoff", [&] {
          if (!e && !impl_.stopping) accept();
        });
      });
    });
  });
}

void Connector::on_accepted(tcp::socket socket) {
  if (impl_.pending_handshakes >= impl_.options.max_pending_handshakes) {
    // Bounded: connections that have not authenticated cost memory and a timer each.
    impl_.refused_total += 1;
    if (impl_.busy_total++ == 0) {
      boost::system::error_code ec;
      const auto ep = socket.remote_endpoint(ec);
      log::warn(impl_.who(), ": ", impl_.options.max_pending_handshakes,
                " connections are already in their handshake; closed one more from ",
                ec ? std::string("?") : ep.address().to_string() + ":" + std::to_string(ep.port()),
                " at once (network.max_pending_handshakes; later ones are counted, not logged)");
    }
    boost::system::error_code ignored;
    socket.close(ignored);
    return;
  }
  auto s = std::make_shared<Session>(impl_, std::move(socket), nullptr);
  impl_.track(s);
  s->count_as_pending();
  s->arm_handshake_timer();
  s->start();
}

void Connector::dial(Link& link) {
  impl_.net_thread.assert_on_net_thread();
  if (impl_.stopping) return;
  auto s = std::make_shared<Session>(impl_, tcp::socket(impl_.ioc), &link);
  impl_.track(s);
  s->arm_handshake_timer();
  s->connect(link.endpoint);
}

void Connector::schedule_dial(Link& link, milliseconds delay) {
  impl_.net_thread.assert_on_net_thread();
  if (impl_.stopping) return;
  link.retry.expires_after(delay);
  link.retry.async_wait([this, &link](boost::system::error_code ec) {
    impl_.guarded("redial", [&] {
      if (!ec && !impl_.stopping && !link.session) dial(link);
    });
  });
}

void Connector::on_dial_failed(Link& link, const std::string& reason) {
  impl_.net_thread.assert_on_net_thread();
  {
    std::lock_guard lock(link.mu);
    link.last_error = reason;
  }
  // Retry first: a throwing event handler below must not leave the link undialled.
  link.backoff = std::clamp(link.backoff * 2, impl_.options.retry_min, impl_.options.retry_max);
  schedule_dial(link, link.backoff);
  if (!link.deadline_reported &&
      Session::Clock::now() - impl_.started_at > impl_.options.connect_timeout) {
    link.deadline_reported = true;
    const std::string msg = impl_.who() + " cannot reach node " + std::to_string(link.peer) + " (" +
                            to_string(link.kind) + " link) at " + link.address + ": " + reason;
    log::warn(msg, "; still retrying");
    impl_.emit({LinkEventType::kConnectFailed, link.peer, link.kind, msg});
  }
}

Link* Connector::admit(int peer, LinkKind kind, std::string& error) const {
  impl_.net_thread.assert_on_net_thread();
  Link* link = impl_.find(peer, kind);
  if (!link) {
    error = "node " + std::to_string(peer) + " is not a " + to_string(kind) +
            " neighbour of node " + std::to_string(impl_.self);
    return nullptr;
  }
  if (link->dialer) {
    error = "node " + std::to_string(peer) + " dialed, but node " + std::to_string(impl_.self) +
            " dials that link (lower id dials)";
    return nullptr;
  }
  // Without a secret nothing tells the real peer from one that only claims its id: the
  // connected one stays. With a secret, a connection that authenticates replaces it (attach).
  if (impl_.options.secret.empty() && link->session &&
      link->session->state() == Session::State::kEstablished) {
    error = "node " + std::to_string(peer) + " is already connected (from " +
            link->session->remote() +
            ") and without a shared secret this connection cannot prove it is that node";
    return nullptr;
  }
  return link;
}

}  // namespace rumor::net
