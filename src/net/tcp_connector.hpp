#pragma once
// The dialler and acceptor of a TcpTransport (internal): the listening socket, the accept
// loop, connection attempts with exponential backoff, and the admission of an accepted
// connection to a link (non-neighbours and wrong-direction dials are refused).
#include <chrono>
#include <string>

#include "asio.hpp"
#include "rumor/net/tcp.hpp"
#include "tcp_link.hpp"

namespace rumor {
struct NodeInfo;
}

namespace rumor::net {

class Connector {
 public:
  explicit Connector(TcpTransport::Impl& impl);

  // Owner thread, before start(): binds and listens; returns the bound port. Throws Error.
  int bind(const std::string& host, int port);
  int port() const;
  bool listening() const { return acceptor_.is_open(); }
  // Stops accepting (network thread once started; the owner before).
  void close();
  // Owner thread, before start(): the endpoint a dialer link connects to. Throws
  // TopologyError when the host does not resolve.
  void resolve(Link& link, const NodeInfo& peer);

  // Network thread.
  void accept();
  void dial(Link& link);
  void schedule_dial(Link& link, std::chrono::milliseconds delay);
  // A dial or its handshake failed: report it once past the connect deadline, retry later.
  void on_dial_failed(Link& link, const std::string& reason);
  // The link an accepted connection from `peer` asks for; null with `error` set when refused.
  Link* admit(int peer, LinkKind kind, std::string& error) const;

 private:
  void on_accepted(tcp::socket socket);

  TcpTransport::Impl& impl_;
  tcp::acceptor acceptor_;
};

}  // namespace rumor::net
