#pragma once
// TCP transport: one process per node, Boost.Asio behind a pimpl, one network thread.
//
// Connections: for each link the node with the lower id dials, the other accepts (data links
// at start, or on demand: open_links_on_demand()). The dialer retries with exponential
// backoff (options.retry_min..retry_max) for as long as the link is down, so a restarted
// neighbour is found again. Every connection starts with a handshake
// (magic, version, run id, node ids, link kind; HMAC-SHA256 challenge-response both ways when
// options.secret is set); a failed handshake is refused, logged and counted, and the node's
// other links carry on. Bytes that do not parse close that connection and bump `malformed`;
// a handler that throws on the network thread (e.g. the event handler) closes that connection
// and bumps `handler_errors`. Either way the link goes down and is redialled.
#include <memory>

#include "rumor/net/transport.hpp"

namespace rumor::net {

class TcpTransport final : public Transport {
 public:
  explicit TcpTransport(TransportOptions options = {});
  ~TcpTransport() override;

  // Binds the listening socket before start() (host, port; port 0 picks a free one) and
  // returns the bound port. Lets tests and launchers learn ports before building the
  // topology. Optional: start() binds the topology's endpoint when bind() was not called.
  int bind(const std::string& host, int port);
  // The bound port (after bind() or start()).
  int port() const;

  // Data links on demand (peer sampling: peers drawn afresh each round), called before
  // start(): no data link is dialled at start; one opens when open_link() names it or send()
  // first uses it, and then stays (redialled like any other). Connections from every data
  // peer of the topology are admitted, authenticated as always. wait_connected() waits for
  // the control ring and the data links opened so far.
  void open_links_on_demand();
  // Opens the data link to `peer` (owner thread, after start(); idempotent): this node dials
  // it when it has the lower id, else the peer's dial is waited for.
  void open_link(int peer);

  void start(const Topology& topology, int self) override;
  void wait_connected(std::optional<std::chrono::milliseconds> timeout = {}) override;
  bool send(int to, Message message) override;
  bool flush(std::chrono::milliseconds deadline) override;
  void stop() override;
  TransportStats stats() const override;
  bool link_up(int peer, LinkKind link) const override;
  void close_link(int peer, LinkKind link, const std::string& why) override;

  struct Impl;

 protected:
  // A take that names one sender on the data plane whose link runs through shared memory
  // reads that ring on the calling thread (ShmLink::receive_until); others wait on the mailbox.
  std::optional<Message> receive(const MessageFilter& filter,
                                 std::chrono::milliseconds timeout) override;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace rumor::net
