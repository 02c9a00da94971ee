// The TLS 1.3 handshake of a session (network.tls), before the rumor handshake.
#include "rumor/common/log.hpp"
#include "tcp_impl.hpp"
#include "tcp_session.hpp"

namespace rumor::net {

void Session::start_tls() {
  impl_.net_thread.assert_on_net_thread();
  tls_ = std::make_unique<TlsStream>(socket_, impl_.tls->context());
  const auto role = dialer_ ? asio::ssl::stream_base::client : asio::ssl::stream_base::server;
  tls_->async_handshake(role, [self = shared_from_this()](boost::system::error_code ec) {
    // As guarded() does (defined with the other handlers).
    self->impl_.net_thread.assert_on_net_thread();
    run_guarded([&] { self->on_tls_handshake(ec); },
                [&](const char* what) { self->on_handler_error("TLS handshake", what); });
  });
}

// A connection whose TLS handshake fails or whose peer is not acceptable is refused
// (counted in handshakes_refused); the handshake timer covers a peer that stalls in it.
void Session::on_tls_handshake(boost::system::error_code ec) {
  if (state_ == State::kClosed) return;
  int peer = -1;
  std::string reason =
      ec ? "TLS handshake failed: " + ec.message() +
               " (another run secret, a certificate not accepted, or no TLS on one side)"
         : impl_.tls->check_peer(tls_->native_handle(), peer);
  if (reason.empty() && dialer_ && !impl_.tls->uses_psk() && peer != link_->peer)
    reason = "its TLS certificate is node " + std::to_string(peer) + "'s, not node " +
             std::to_string(link_->peer) + "'s";
  if (reason.empty()) {
    handshake_.set_certified_peer(peer);
    open_handshake();
    return;
  }
  if (dialer_) {
    impl_.refused(link_->peer, link_->kind, reason + " (at " + remote_ + ")");
  } else {
    // The peer has not said who it is yet: counted in the transport's total only.
    impl_.refused_total += 1;
    log::warn(impl_.who(), ": refused a connection from ", remote_, ": ", reason);
  }
  fail(reason, false);
}

}  // namespace rumor::net
