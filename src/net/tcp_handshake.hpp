#pragma once
// The connection handshake of the TCP transport as a state machine (internal).
//
//   dialer:   writes HELLO                 -> kAwaitHello
//             HELLO checked, writes AUTH   -> kAwaitVerdict
//             VERDICT accepted             -> kDone
//   acceptor:                                 kAwaitHello
//             HELLO admitted, writes HELLO -> kAwaitAuth
//             AUTH checked, writes VERDICT -> kDone
// Each side's HELLO carries a fresh nonce; with a shared secret each side answers the other's
// nonce with an HMAC (the acceptor in its HELLO, the dialer in its AUTH). A check that fails
// is refused: a VERDICT with the reason, then the connection closes. The machine does no I/O;
// the session writes the frames it returns and acts on the outcome.
// A join dialer (`rumor node --join`, Hello.join) runs the same exchange with an empty run id
// and no link; once its AUTH checks out, the acceptor writes the run's settings
// (FRAME_SETTINGS) and closes.
#include <functional>
#include <optional>
#include <string>

#include "frame.hpp"
#include "rumor/net/transport.hpp"
#include "tcp_link.hpp"
#include "wire.pb.h"

namespace rumor::net {

enum class HandshakeStage { kAwaitHello, kAwaitAuth, kAwaitVerdict, kDone };

// What the session does with one handshake frame: write `reply` (if any), then act.
struct HandshakeStep {
  // kServeJoin: an authenticated join dialer; write the run's settings, then close.
  enum class Action { kContinue, kEstablished, kRefuse, kFail, kServeJoin };
  Action action = Action::kContinue;
  std::optional<wire::Header> reply;
  std::string reason;      // kRefuse, kFail
  bool malformed = false;  // kFail: bad input from the peer (counted)
  bool warn = false;       // kFail: worth a warning (the peer refused this node)
  int peer = -1;           // kRefuse: the node the connection claimed to be
  LinkKind kind = LinkKind::kData;
};

// Acceptor side: the link a HELLO from `peer` asks for, or null with `error` saying why the
// connection is refused (not a neighbour, wrong direction).
using AdmitFn = std::function<Link*(int peer, LinkKind kind, std::string& error)>;

// The HELLO frame of either side; `mac` is set only when non-empty (the acceptor's answer).
// `shm`: this node would move the link's messages to shared memory (shm_wanted).
wire::Header make_hello(const std::string& run_id, int self, int target, LinkKind kind,
                        const std::string& nonce, const std::string& mac = {}, bool shm = false);

class Handshake {
 public:
  // `link`: the dialer's link; null on the acceptor side (found from the peer's HELLO).
  Handshake(const TransportOptions& options, int self, Link* link);

  HandshakeStage stage() const { return stage_; }
  // The link of this connection: the dialer's, or the acceptor's once the HELLO is admitted.
  Link* link() const { return link_; }
  // TLS with certificates: the node the peer's certificate names. An acceptor refuses a
  // HELLO that claims another node.
  void set_certified_peer(int peer) { certified_peer_ = peer; }
  // The peer's HELLO said it would move this link's messages to shared memory.
  bool peer_shm() const { return peer_shm_; }
  // Dialer: the first frame on the connection.
  wire::Header open() const;
  // The next frame from the peer (parsed, before the handshake is done).
  HandshakeStep on_frame(const wire::Header& h, const AdmitFn& admit);

 private:
  HandshakeStep acceptor_hello(const wire::Header& h, const AdmitFn& admit);
  HandshakeStep join_hello(const wire::Hello& hello);
  HandshakeStep join_auth(const wire::Header& h);
  HandshakeStep acceptor_auth(const wire::Header& h);
  HandshakeStep dialer_hello(const wire::Header& h);
  HandshakeStep dialer_verdict(const wire::Header& h);
  HandshakeStep refuse(std::string reason, int peer, LinkKind kind) const;
  std::string mac(const char* role, int dialer, int acceptor, const std::string& challenge,
                  const std::string& response) const;

  const TransportOptions& options_;
  const int self_;
  const bool dialer_;
  Link* link_;
  HandshakeStage stage_ = HandshakeStage::kAwaitHello;
  std::string nonce_;       // ours: the challenge the peer answers
  std::string peer_nonce_;  // the peer's: the challenge this node answers
  // The node the peer's TLS certificate names; -1: no certificate to hold the peer to.
  int certified_peer_ = -1;
  bool peer_shm_ = false;
  bool join_ = false;  // the dialer asks for the run's settings (join_hello)
};

// HMAC of the join exchange: its own roles, no run id, no link, dialer -1.
std::string join_mac(const std::string& secret, const char* role, int acceptor,
                     const std::string& challenge, const std::string& response);

// `rumor node --join`, the dialer's side (no I/O): the join HELLO; the acceptor's HELLO
// checked (its answer to this side's challenge) and answered with AUTH; then its VERDICT.
// Throws ProtocolError saying what the acceptor did wrong or why it refused.
class JoinDialer {
 public:
  explicit JoinDialer(std::string secret) : secret_(std::move(secret)), nonce_(random_nonce()) {}
  wire::Header open() const;
  // The acceptor's first frame (its HELLO, or a VERDICT refusing): the AUTH to write.
  wire::Header on_hello(const wire::Header& h);
  // Non-empty after on_hello: the acceptor's answer to this side's challenge was wrong, so
  // nothing it sends may be trusted.
  const std::string& distrust() const { return distrust_; }
  void on_verdict(const wire::Header& h) const;
  int acceptor() const { return acceptor_; }

 private:
  std::string secret_;
  std::string nonce_;
  int acceptor_ = -1;
  std::string distrust_;
};

}  // namespace rumor::net
