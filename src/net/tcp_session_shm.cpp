// The shared-memory path of a session's data link (shm_link.hpp): offer, answer, fallback,
// and the checks the ring's messages go through (the socket's own).
#include "rumor/common/error.hpp"
#include "rumor/common/log.hpp"
#include "tcp_impl.hpp"
#include "tcp_session.hpp"

namespace rumor::net {

// Both ends on this host: a loopback peer, or a peer at this socket's own address. Only a
// pre-filter: the nonces read back through the segment are the proof.
bool Session::co_located() const {
  boost::system::error_code e1, e2;
  const auto local = socket_.local_endpoint(e1);
  const auto remote = socket_.remote_endpoint(e2);
  if (e1 || e2) return false;
  return remote.address().is_loopback() || remote.address() == local.address();
}

ShmLink::Post Session::shm_post() {
  std::weak_ptr<Session> weak = weak_from_this();
  asio::io_context& ioc = impl_.ioc;
  return [weak, &ioc] {
    asio::post(ioc, [weak] {
      auto s = weak.lock();
      if (!s) return;
      s->impl_.net_thread.assert_on_net_thread();
      // As guarded() does (defined with the other handlers).
      run_guarded(
          [&] {
            if (s->shm_ && s->state_ == State::kEstablished) s->shm_->service();
          },
          [&](const char* what) { s->on_handler_error("shared memory", what); });
    });
  };
}

void Session::shm_fallback(const std::string& why) {
  shm_.reset();
  if (link_->shm_reported) return;
  link_->shm_reported = true;
  log::info(impl_.who(), ": data link to node ", link_->peer,
            " stays on TCP (no shared memory): ", why);
}

// Dialer, once established: offers a segment when both sides want one and may share it.
void Session::offer_shm() {
  if (!shm_wanted(impl_.options, link_->kind) || !co_located()) return;
  if (!handshake_.peer_shm()) {
    shm_fallback("node " + std::to_string(link_->peer) +
                 " does not use it (network.shm off, no run secret, or TLS)");
    return;
  }
  wire::Header frame;
  try {
    shm_ = ShmLink::offer(*link_, *this, impl_.options, impl_.pool, shm_post(), frame);
  } catch (const Error& e) {
    shm_fallback(e.what());
    return;
  }
  push_internal(frame);
}

// Acceptor: the dialer's offer, taken or declined (saying why).
void Session::accept_shm(const wire::Shm& offer) {
  if (dialer_ || shm_) {
    fail("shared-memory offer out of turn", true);
    return;
  }
  std::string why;
  if (!shm_wanted(impl_.options, link_->kind)) {
    why = "node " + std::to_string(impl_.self) +
          " does not use it (network.shm off, no run secret, or TLS)";
  } else if (!co_located()) {
    why = "the offer comes from another host";
  }
  wire::Header reply;
  if (why.empty()) {
    try {
      shm_ = ShmLink::accept(*link_, *this, impl_.options, impl_.pool, shm_post(), offer, reply);
    } catch (const Error& e) {
      why = e.what();
    }
  }
  if (!why.empty()) {
    shm_fallback(why);
    reply = ShmLink::decline(why);
  }
  push_internal(reply);
}

void Session::on_shm_frame() {
  const wire::Shm& f = header_.shm();
  if (f.step() == wire::Shm::SHM_OFFER) {
    accept_shm(f);
    return;
  }
  if (!shm_ || shm_->active()) {
    fail("shared-memory setup frame out of turn", true);
    return;
  }
  if (f.step() == wire::Shm::SHM_DECLINE) {
    if (!dialer_) {
      fail("shared-memory decline out of turn", true);
      return;
    }
    shm_fallback("node " + std::to_string(link_->peer) + " declined: " + f.reason());
    kick();  // the messages held for the offer go on over TCP
    return;
  }
  try {
    if (auto reply = shm_->on_frame(f)) push_internal(*reply);
  } catch (const ProtocolError& e) {
    fail(e.what(), true);
    return;
  }
  log::debug(impl_.who(), ": data link to node ", link_->peer, " through shared memory");
  kick();
}

ShmAdmit Session::admit_ring_message(const Prefix& prefix, const wire::Header& h) {
  std::string err = h.type() == wire::FRAME_MESSAGE
                        ? message_error(h)
                        : "frame type " + std::to_string(h.type()) +
                              " in the shared-memory ring (only messages go there)";
  if (!err.empty()) {
    fail_later(err + " (shared-memory ring)", true);
    return ShmAdmit::kClosed;
  }
  last_recv_ = Clock::now();
  std::string detail;
  if (auto counter = refusal(h, prefix.payload_length(), detail)) {
    impl_.count_rejected(*link_, counter, detail);
    std::lock_guard lock(link_->mu);
    link_->stats.bytes_recv += kPrefixBytes + prefix.frame_length - 4;
    return ShmAdmit::kSkip;
  }
  return ShmAdmit::kTake;
}

void Session::deliver_ring_message(const wire::Header& h, Payload payload,
                                   std::uint64_t frame_bytes) {
  last_recv_ = Clock::now();
  hand_over(h, std::move(payload), frame_bytes);  // admit_ring_message checked it
}

void Session::ring_failed(const std::string& reason) {
  fail_later(reason, true);
}

}  // namespace rumor::net
