#include "tcp_handshake.hpp"

#include "frame.hpp"
#include "rumor/common/error.hpp"
#include "shm_link.hpp"

namespace rumor::net {
namespace {

using Action = HandshakeStep::Action;

HandshakeStep fail(std::string reason, bool malformed) {
  HandshakeStep s;
  s.action = Action::kFail;
  s.reason = std::move(reason);
  s.malformed = malformed;
  return s;
}

// The checks both sides make on the other's HELLO; returns the refusal reason or empty.
std::string check_hello(const wire::Hello& h, const std::string& run_id) {
  if (h.magic() != kMagic) return "bad magic (not a rumor peer)";
  if (h.version() != kProtocolVersion)
    return "protocol version " + std::to_string(h.version()) + ", this node speaks " +
           std::to_string(kProtocolVersion);
  if (h.run_id() != run_id)
    return "run id '" + h.run_id() + "' differs from this node's '" + run_id + "'";
  if (h.nonce().size() != kNonceBytes) return "bad nonce";
  return {};
}

wire::Header verdict_accepted() {
  wire::Header h;
  h.set_type(wire::FRAME_VERDICT);
  h.mutable_verdict()->set_accepted(true);
  return h;
}

}  // namespace

wire::Header make_hello(const std::string& run_id, int self, int target, LinkKind kind,
                        const std::string& nonce, const std::string& mac, bool shm) {
  wire::Header h;
  h.set_type(wire::FRAME_HELLO);
  auto* hello = h.mutable_hello();
  hello->set_magic(kMagic);
  hello->set_version(kProtocolVersion);
  hello->set_run_id(run_id);
  hello->set_node_id(self);
  hello->set_target_id(target);
  hello->set_link(to_wire(kind));
  hello->set_nonce(nonce);
  if (!mac.empty()) hello->set_mac(mac);
  if (shm) hello->set_shm(true);
  return h;
}

Handshake::Handshake(const TransportOptions& options, int self, Link* link)
    : options_(options),
      self_(self),
      dialer_(link != nullptr),
      link_(link),
      nonce_(random_nonce()) {}

wire::Header Handshake::open() const {
  return make_hello(options_.run_id, self_, link_->peer, link_->kind, nonce_, {},
                    shm_wanted(options_, link_->kind));
}

HandshakeStep Handshake::on_frame(const wire::Header& h, const AdmitFn& admit) {
  switch (stage_) {
    case HandshakeStage::kAwaitHello:
      if (dialer_ && h.type() == wire::FRAME_VERDICT) return dialer_verdict(h);
      return dialer_ ? dialer_hello(h) : acceptor_hello(h, admit);
    case HandshakeStage::kAwaitAuth:
      return acceptor_auth(h);
    case HandshakeStage::kAwaitVerdict:
      if (h.type() == wire::FRAME_VERDICT) return dialer_verdict(h);
      break;
    case HandshakeStage::kDone:
      break;
  }
  return fail("unexpected frame type " + std::to_string(h.type()) + " during handshake", true);
}

HandshakeStep Handshake::refuse(std::string reason, int peer, LinkKind kind) const {
  HandshakeStep s;
  s.action = Action::kRefuse;
  s.reason = std::move(reason);
  s.peer = peer;
  s.kind = kind;
  return s;
}

std::string Handshake::mac(const char* role, int dialer, int acceptor, const std::string& challenge,
                           const std::string& response) const {
  return handshake_mac(options_.secret, role, options_.run_id, link_->kind, dialer, acceptor,
                       challenge, response);
}

// Acceptor: the dialer's HELLO. Checked, then admitted to one of this node's links.
HandshakeStep Handshake::acceptor_hello(const wire::Header& h, const AdmitFn& admit) {
  if (h.type() != wire::FRAME_HELLO) return fail("expected a hello frame", true);
  const auto& hello = h.hello();
  if (hello.join()) return join_hello(hello);
  const int peer = hello.node_id();
  const LinkKind kind = from_wire(hello.link());
  std::string err = check_hello(hello, options_.run_id);
  if (err.empty() && hello.target_id() != self_)
    err = "hello addressed to node " + std::to_string(hello.target_id()) + ", this is node " +
          std::to_string(self_);
  if (err.empty() && certified_peer_ >= 0 && peer != certified_peer_)
    err = "its TLS certificate is node " + std::to_string(certified_peer_) + "'s";
  Link* link = err.empty() ? admit(peer, kind, err) : nullptr;
  if (!link) return refuse(err, peer, kind);
  link_ = link;
  peer_nonce_ = hello.nonce();
  peer_shm_ = hello.shm();
  HandshakeStep s;
  const std::string answer =
      options_.secret.empty() ? std::string() : mac("acceptor", peer, self_, peer_nonce_, nonce_);
  s.reply =
      make_hello(options_.run_id, self_, peer, kind, nonce_, answer, shm_wanted(options_, kind));
  stage_ = HandshakeStage::kAwaitAuth;
  return s;
}

// Acceptor: a join dialer's HELLO. Only a node with settings to hand out and a secret to
// check the dialer against answers; its HELLO says nothing of the run (empty run id).
HandshakeStep Handshake::join_hello(const wire::Hello& hello) {
  std::string err = check_hello(hello, "");
  if (err.empty() && (options_.join_settings.empty() || options_.secret.empty()))
    err = "node " + std::to_string(self_) +
          " takes no joins (that needs on_peer_failure continue, a standby node in the "
          "topology and a run secret)";
  if (!err.empty()) return refuse("join request: " + err, -1, LinkKind::kData);
  join_ = true;
  peer_nonce_ = hello.nonce();
  HandshakeStep s;
  s.reply = make_hello("", self_, -1, LinkKind::kControl, nonce_,
                       join_mac(options_.secret, "join-acceptor", self_, peer_nonce_, nonce_));
  s.reply->mutable_hello()->set_join(true);
  stage_ = HandshakeStage::kAwaitAuth;
  return s;
}

// Acceptor: a join dialer's AUTH. Only once it checks out are the settings written.
HandshakeStep Handshake::join_auth(const wire::Header& h) {
  if (h.type() == wire::FRAME_VERDICT && !h.verdict().accepted())
    return fail("a join dialer refused this node: " + h.verdict().reason(), false);
  if (h.type() != wire::FRAME_AUTH) return fail("expected an auth frame", true);
  if (!mac_equal(join_mac(options_.secret, "join-dialer", self_, nonce_, peer_nonce_),
                 h.auth().mac()))
    return refuse("join request: authentication failed (wrong or missing run secret)", -1,
                  LinkKind::kData);
  HandshakeStep s;
  s.reply = verdict_accepted();
  s.action = Action::kServeJoin;
  stage_ = HandshakeStage::kDone;
  return s;
}

// Acceptor: the dialer's AUTH (or its refusal of this node's HELLO).
HandshakeStep Handshake::acceptor_auth(const wire::Header& h) {
  if (join_) return join_auth(h);
  if (h.type() == wire::FRAME_VERDICT && !h.verdict().accepted())
    return fail("refused by node " + std::to_string(link_->peer) + ": " + h.verdict().reason(),
                false);
  if (h.type() != wire::FRAME_AUTH) return fail("expected an auth frame", true);
  if (!options_.secret.empty() &&
      !mac_equal(mac("dialer", link_->peer, self_, nonce_, peer_nonce_), h.auth().mac()))
    return refuse("authentication failed (wrong or missing shared secret)", link_->peer,
                  link_->kind);
  HandshakeStep s;
  s.reply = verdict_accepted();  // written before any message: internal frames go first
  s.action = Action::kEstablished;
  stage_ = HandshakeStage::kDone;
  return s;
}

// Dialer: the acceptor's HELLO. Answers its challenge, then checks its answer to ours.
HandshakeStep Handshake::dialer_hello(const wire::Header& h) {
  if (h.type() != wire::FRAME_HELLO)
    return fail("unexpected frame type " + std::to_string(h.type()) + " during handshake", true);
  const auto& hello = h.hello();
  std::string err = check_hello(hello, options_.run_id);
  if (err.empty() && hello.node_id() != link_->peer)
    err = "answered as node " + std::to_string(hello.node_id()) + ", expected node " +
          std::to_string(link_->peer);
  if (err.empty() && hello.target_id() != self_) err = "hello addressed to another node";
  if (err.empty() && from_wire(hello.link()) != link_->kind) err = "link kind differs";
  if (!err.empty()) return refuse(err, link_->peer, link_->kind);
  peer_nonce_ = hello.nonce();
  peer_shm_ = hello.shm();
  // Answer first, so the acceptor also checks (and counts) a secret mismatch.
  HandshakeStep s;
  s.reply.emplace();
  s.reply->set_type(wire::FRAME_AUTH);
  if (!options_.secret.empty()) {
    s.reply->mutable_auth()->set_mac(mac("dialer", self_, link_->peer, peer_nonce_, nonce_));
    if (!mac_equal(mac("acceptor", self_, link_->peer, nonce_, peer_nonce_), hello.mac()))
      err = "authentication failed (wrong or missing secret)";
  } else if (!hello.mac().empty()) {
    err = "peer authenticates with a secret but this node has none";
  }
  stage_ = HandshakeStage::kAwaitVerdict;
  if (err.empty()) return s;
  HandshakeStep refusal = refuse(err, link_->peer, link_->kind);
  refusal.reply = std::move(s.reply);
  return refusal;
}

// Dialer: the acceptor's VERDICT; an acceptance counts only after the HELLO exchange.
HandshakeStep Handshake::dialer_verdict(const wire::Header& h) {
  if (h.verdict().accepted() && stage_ == HandshakeStage::kAwaitVerdict) {
    stage_ = HandshakeStage::kDone;
    HandshakeStep s;
    s.action = Action::kEstablished;
    return s;
  }
  HandshakeStep s =
      h.verdict().accepted()
          ? fail("verdict before hello", true)
          : fail("refused by node " + std::to_string(link_->peer) + ": " + h.verdict().reason(),
                 false);
  s.warn = true;
  return s;
}

std::string join_mac(const std::string& secret, const char* role, int acceptor,
                     const std::string& challenge, const std::string& response) {
  return handshake_mac(secret, role, "", LinkKind::kControl, -1, acceptor, challenge, response);
}

wire::Header JoinDialer::open() const {
  wire::Header h = make_hello("", -1, -1, LinkKind::kControl, nonce_);
  h.mutable_hello()->set_join(true);
  return h;
}

wire::Header JoinDialer::on_hello(const wire::Header& h) {
  if (h.type() == wire::FRAME_VERDICT) on_verdict(h);
  if (h.type() != wire::FRAME_HELLO || !h.hello().join())
    throw ProtocolError("answered a join request with frame type " + std::to_string(h.type()) +
                        " (not a rumor node that takes joins?)");
  const auto& hello = h.hello();
  if (std::string err = check_hello(hello, ""); !err.empty()) throw ProtocolError(err);
  acceptor_ = hello.node_id();
  // Answered even so, so that the acceptor also checks (and counts) a secret mismatch.
  if (!mac_equal(join_mac(secret_, "join-acceptor", acceptor_, nonce_, hello.nonce()), hello.mac()))
    distrust_ = "node " + std::to_string(acceptor_) +
                " does not prove it holds this run secret (wrong --secret-file?)";
  wire::Header auth;
  auth.set_type(wire::FRAME_AUTH);
  auth.mutable_auth()->set_mac(join_mac(secret_, "join-dialer", acceptor_, hello.nonce(), nonce_));
  return auth;
}

void JoinDialer::on_verdict(const wire::Header& h) const {
  if (h.type() != wire::FRAME_VERDICT)
    throw ProtocolError("sent frame type " + std::to_string(h.type()) + " instead of a verdict");
  if (!h.verdict().accepted()) throw ProtocolError("refused the join: " + h.verdict().reason());
}

}  // namespace rumor::net
