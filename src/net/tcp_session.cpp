#include "tcp_session.hpp"

#include <algorithm>

#include "rumor/common/log.hpp"
#include "tcp_connector.hpp"
#include "tcp_impl.hpp"

namespace rumor::net {
namespace {

// At most this much per sendmsg/recv: the kernel then copies a piece that fits the L2
// cache and the receiver takes it while it is still cached. One 40 MB sendmsg measured
// ~35 % below iperf3 here; 256 KB-4 MB pieces were measured, 1 MB did best (BENCHMARKS.md).
constexpr std::size_t kSyscallBytes = 1024 * 1024;
// Asked for (the kernel doubles it for its bookkeeping). Small enough that the bytes a
// piece leaves in the kernel are still cached when the receiver copies them out: against
// 8 MB, the 1e7-float pair measured 1.08 vs 0.95 and 1.25 vs 0.86 GB/s (medians of 6,
// alternating, load 9-19), push-sum 1e6 on 8 nodes no slower (16.2 vs 15.6 ms, 3 pairs).
constexpr int kSendBufferBytes = 1024 * 1024;
// Bounds of one gather write; the rest of the queue goes in the next one.
constexpr std::size_t kMaxFramesPerWrite = 256;
constexpr std::size_t kMaxBytesPerWrite = std::size_t{64} << 20;
// How long a stopping node waits for its bye to be written before it just closes.
constexpr auto kByeLinger = std::chrono::milliseconds(500);

// Asio completion condition for reads: up to kSyscallBytes per recv. Asio's default asks for
// 64 KB at a time: one recv and one reactor pass per 64 KB of a large payload, 10x the
// system calls of the writer's 1 MB pieces (strace of `rumor bench net --mode pair`).
std::size_t read_sized(const boost::system::error_code& ec, std::size_t) {
  return ec ? 0 : kSyscallBytes;
}

}  // namespace

Session::Session(Impl& impl, tcp::socket socket, Link* link)
    : impl_(impl),
      socket_(std::move(socket)),
      dialer_(link != nullptr),
      link_(link),
      handshake_(impl.options, impl.self, link),
      handshake_timer_(impl.ioc),
      heartbeat_timer_(impl.ioc) {}

Session::~Session() {
  if (shm_) shm_->close();
}

template <typename F>
void Session::guarded(const char* where, F&& body) noexcept {
  impl_.net_thread.assert_on_net_thread();
  run_guarded(body, [&](const char* what) { on_handler_error(where, what); });
}

void Session::on_handler_error(const char* where, const std::string& what) noexcept {
  try {
    const bool counted = link_ && (state_ == State::kEstablished || dialer_);
    impl_.count_handler_error(counted ? link_ : nullptr, where, what, remote_);
    fail(std::string("network handler failed in ") + where + ": " + what, false);
  } catch (const std::exception& e) {
    // Closing threw as well (e.g. the event handler again): the session is closed by now.
    impl_.log_unguarded("closing a failed connection", e.what());
  } catch (...) {
    impl_.log_unguarded("closing a failed connection", "unknown exception");
  }
}

void Session::arm_handshake_timer() {
  impl_.net_thread.assert_on_net_thread();
  handshake_timer_.expires_after(impl_.options.handshake_timeout);
  handshake_timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    self->guarded("handshake timer", [&] {
      if (ec || self->state_ != State::kHandshake) return;
      if (!self->dialer_) self->impl_.count_handshake_timeout(self->remote_);
      self->fail("handshake timed out", false);
    });
  });
}

void Session::count_as_pending() {
  pending_ = true;
  ++impl_.pending_handshakes;
}

void Session::end_pending() {
  if (pending_) --impl_.pending_handshakes;
  pending_ = false;
}

void Session::connect(const tcp::endpoint& endpoint) {
  impl_.net_thread.assert_on_net_thread();
  socket_.async_connect(endpoint, [self = shared_from_this()](boost::system::error_code ec) {
    self->guarded("connect", [&] {
      if (self->state_ == State::kClosed) return;
      if (!ec && self->connected_to_itself()) {
        // Dialing a port nobody listens on from the same port (an ephemeral pick) connects
        // the socket to itself and holds the port its owner is about to bind: drop it.
        self->fail("connect to " + self->link_->address +
                       " reached this socket itself (nobody listening yet)",
                   false);
      } else if (!ec) {
        self->start();
      } else if (ec != asio::error::operation_aborted) {
        self->fail("connect to " + self->link_->address + " failed: " + ec.message(), false);
      }
    });
  });
}

bool Session::connected_to_itself() const {
  boost::system::error_code a, b;
  const auto local = socket_.local_endpoint(a);
  const auto remote = socket_.remote_endpoint(b);
  return !a && !b && local == remote;
}

void Session::start() {
  impl_.net_thread.assert_on_net_thread();
  boost::system::error_code ignored;
  socket_.set_option(tcp::no_delay(true), ignored);
  socket_.set_option(asio::socket_base::send_buffer_size(kSendBufferBytes), ignored);
  remote_ = endpoint_text();
  last_recv_ = last_send_ = Clock::now();
  if (impl_.tls) {
    start_tls();
    return;
  }
  open_handshake();
}

void Session::open_handshake() {
  if (dialer_) push_internal(handshake_.open());
  read_prefix();
}

std::string Session::endpoint_text() const {
  boost::system::error_code ec;
  auto ep = socket_.remote_endpoint(ec);
  if (ec) return "?";
  return ep.address().to_string() + ":" + std::to_string(ep.port());
}

void Session::kick() {
  impl_.net_thread.assert_on_net_thread();
  if (shm_ && shm_->active() && state_ == State::kEstablished && !close_after_write_)
    shm_->service();  // the link's messages go through shared memory
  if (writing_ || state_ == State::kClosed) return;
  inflight_.clear();
  while (!internal_.empty()) {
    inflight_.push_back(std::move(internal_.front()));
    internal_.pop_front();
  }
  // With shm_ set the queue waits for the shared-memory path (or goes through it).
  if (state_ == State::kEstablished && !close_after_write_ && !shm_) take_queued();
  if (!inflight_.empty()) write_inflight();
}

void Session::kick_guarded() noexcept {
  guarded("write", [&] { kick(); });
}

// Moves the link's queued messages into the next write (bounded).
void Session::take_queued() {
  impl_.net_thread.assert_on_net_thread();
  std::lock_guard lock(link_->mu);
  link_->wake_posted = false;
  std::size_t bytes = 0;
  while (!link_->queue.empty() && inflight_.size() < kMaxFramesPerWrite &&
         bytes < kMaxBytesPerWrite) {
    const std::size_t n = link_->queue.front().bytes();
    bytes += n;
    link_->queued_bytes -= n;
    link_->writing += link_->queue.front().app ? 1 : 0;
    inflight_.push_back(std::move(link_->queue.front()));
    link_->queue.pop_front();
  }
}

void Session::write_inflight() {
  buffers_.clear();
  for (const auto& o : inflight_) {
    buffers_.emplace_back(o.head.data(), o.head.size());
    if (!o.payload.empty()) buffers_.emplace_back(o.payload.data(), o.payload.size());
  }
  writing_ = true;
  // At most kSyscallBytes per sendmsg (see there).
  on_stream([&](auto& stream) {
    asio::async_write(
        stream, buffers_,
        [](const boost::system::error_code& ec, std::size_t) -> std::size_t {
          return ec ? 0 : kSyscallBytes;
        },
        [self = shared_from_this()](boost::system::error_code ec, std::size_t n) {
          self->guarded("write", [&] { self->on_written(ec, n); });
        });
  });
}

void Session::push_internal(wire::Header h) {
  impl_.net_thread.assert_on_net_thread();
  Outgoing o;
  o.head = encode_frame_head(h, 0);
  internal_.push_back(std::move(o));
  kick();
}

void Session::fail_later(const std::string& reason, bool malformed) {
  asio::post(impl_.ioc, [weak = weak_from_this(), reason, malformed] {
    if (auto s = weak.lock()) s->guarded("close", [&] { s->fail(reason, malformed); });
  });
}

void Session::fail(const std::string& reason, bool malformed) {
  impl_.net_thread.assert_on_net_thread();
  if (state_ == State::kClosed) return;
  const State was = state_;
  state_ = State::kClosed;
  end_pending();
  boost::system::error_code ignored;
  socket_.shutdown(tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
  handshake_timer_.cancel();
  heartbeat_timer_.cancel();
  // Messages taken from the queue but not fully written are lost with the connection.
  std::uint64_t lost = 0;
  for (const auto& o : inflight_) lost += o.app ? 1 : 0;
  if (writing_ && lost > 0 && was == State::kEstablished) {
    std::lock_guard lock(link_->mu);
    link_->stats.drops += lost;
    link_->writing = 0;
  }
  inflight_.clear();
  if (shm_) {
    // What the peer wrote into the ring before it closed comes first, as on TCP.
    if (was == State::kEstablished && !malformed) shm_->drain();
    shm_->close();
  }
  if (malformed) {
    impl_.count_malformed(link_ && (was == State::kEstablished || dialer_) ? link_ : nullptr,
                          reason, remote_);
  }
  if (was == State::kEstablished) {
    impl_.on_session_closed(*this, reason);
  } else if (dialer_ && !impl_.stopping) {
    impl_.connector.on_dial_failed(*link_, reason);
  }
}

// A session in the middle of writing a message is closed at once so stop() never waits on a
// slow peer. A control frame still being written (a heartbeat, a shared-memory setup step)
// goes first and the bye after it: without the bye the peer would see this stop as a
// failure. Either way the connection closes within kByeLinger.
void Session::say_bye(const std::string& reason) noexcept {
  guarded("stop", [&] {
    const bool writing_app =
        writing_ && std::any_of(inflight_.begin(), inflight_.end(), [](auto& o) { return o.app; });
    if (state_ != State::kEstablished || writing_app) {
      fail(reason, false);
      return;
    }
    wire::Header h;
    h.set_type(wire::FRAME_BYE);
    close_after_write_ = true;
    drain_before_close_ = true;
    close_reason_ = reason;
    arm_bye_linger();
    push_internal(h);
  });
}

void Session::arm_bye_linger() {
  handshake_timer_.expires_after(kByeLinger);
  handshake_timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    self->guarded("stop", [&] {
      if (!ec) self->fail(self->close_reason_ + " (the bye was not written in time)", false);
    });
  });
}

void Session::arm_heartbeat() {
  impl_.net_thread.assert_on_net_thread();
  heartbeat_timer_.expires_after(impl_.options.heartbeat_interval);
  heartbeat_timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (ec) return;
    self->guarded("heartbeat", [&] { self->on_heartbeat_timer(); });
  });
}

void Session::on_heartbeat_timer() {
  if (state_ != State::kEstablished) return;
  const auto now = Clock::now();
  const auto timeout = impl_.options.heartbeat_timeout;
  if (timeout.count() > 0 && now - last_recv_.load() > timeout) {
    fail("no traffic or heartbeat for " + std::to_string(timeout.count()) + " ms", false);
    return;
  }
  if (!writing_ && now - last_send_ >= impl_.options.heartbeat_interval) {
    wire::Header h;
    h.set_type(wire::FRAME_HEARTBEAT);
    push_internal(h);
  }
  arm_heartbeat();
}

void Session::on_written(boost::system::error_code ec, std::size_t n) {
  writing_ = false;
  if (state_ == State::kClosed) return;
  if (ec) {
    fail("write failed: " + ec.message(), false);
    return;
  }
  last_send_ = Clock::now();
  if (state_ == State::kEstablished) {
    std::uint64_t msgs = 0;
    for (const auto& o : inflight_) msgs += o.app ? 1 : 0;
    std::lock_guard lock(link_->mu);
    link_->stats.bytes_sent += n;
    link_->stats.msgs_sent += msgs;
    link_->writing -= msgs;  // the shared-memory path may be writing one as well
  }
  inflight_.clear();
  if (close_after_write_ && (!drain_before_close_ || internal_.empty())) {
    fail(close_reason_, false);
    return;
  }
  kick();
}

std::uint64_t Session::frame_limit() const {
  return state_ == State::kEstablished ? impl_.options.max_frame_bytes : kMaxHandshakeFrame;
}

// Reads `buffer` fully, then runs next(*this, bytes). `truncated`: the failure when the stream
// ends inside a frame (bad input); null at a frame boundary, where a close is no fault.
template <typename Next>
void Session::read(asio::mutable_buffer buffer, const char* truncated, Next next) {
  impl_.net_thread.assert_on_net_thread();
  auto handler = [self = shared_from_this(), truncated, next](boost::system::error_code ec,
                                                              std::size_t n) {
    self->guarded("read", [&] {
      if (self->state_ == State::kClosed) return;
      // A TLS peer that closes without a close_notify ends the stream "truncated".
      const bool closed = ec == asio::error::eof || ec == asio::ssl::error::stream_truncated;
      if (ec && truncated) {
        self->fail(truncated + (": " + ec.message()), true);
      } else if (ec) {
        self->fail(closed ? "connection closed by peer" : "read failed: " + ec.message(), false);
      } else {
        self->last_recv_ = Clock::now();
        next(*self, n);
      }
    });
  };
  on_stream(
      [&](auto& stream) { asio::async_read(stream, buffer, read_sized, std::move(handler)); });
}

void Session::read_prefix() {
  read(asio::buffer(prefix_buf_), nullptr, [](Session& s, std::size_t) {
    const std::string err = parse_prefix(s.prefix_buf_.data(), s.frame_limit(), s.prefix_);
    if (err.empty()) {
      s.read_header();
    } else {
      s.fail(err, true);
    }
  });
}

void Session::read_header() {
  header_buf_.resize(prefix_.header_length);
  read(asio::buffer(header_buf_), "truncated frame",
       [](Session& s, std::size_t) { s.on_header(); });
}

void Session::on_header() {
  header_.Clear();
  const std::string err = parse_header(header_buf_.data(), prefix_, header_);
  if (!err.empty()) {
    fail(err, true);
    return;
  }
  const std::uint64_t n = prefix_.payload_length();
  if (state_ == State::kEstablished && header_.type() == wire::FRAME_MESSAGE &&
      header_.sender() == link_->peer && known_kind(header_.kind())) {
    std::string detail;
    if (auto counter = refusal(header_, n, detail)) {
      impl_.count_rejected(*link_, counter, detail);
      {
        std::lock_guard lock(link_->mu);
        link_->stats.bytes_recv += kPrefixBytes + prefix_.frame_length - 4;
      }
      skip_left_ = n;
      skip_payload();
      return;
    }
  }
  if (n == 0) {
    on_frame(Payload());
    return;
  }
  if (state_ != State::kEstablished || header_.type() != wire::FRAME_MESSAGE) {
    fail("payload on a frame that carries none", true);
    return;
  }
  payload_ = impl_.pool->allocate(n, rx_ptr_);
  rx_done_ = 0;
  peak_.reset(payload_.size());
  read_payload();
}

std::uint64_t LinkStats::*Session::refusal(const wire::Header& h, std::uint64_t payload_bytes,
                                           std::string& detail) {
  std::uint64_t last = last_seq_.load();
  do {
    if (h.seq() <= last) {
      detail = "sequence number " + std::to_string(h.seq()) + " after " + std::to_string(last) +
               " on the same connection (a replay?)";
      return &LinkStats::rejected_seq;
    }
  } while (!last_seq_.compare_exchange_weak(last, h.seq()));
  const std::int64_t now = impl_.current_round();
  const std::int64_t ahead = impl_.options.max_rounds_ahead;
  if (ahead > 0 && now != Transport::kNoRound && link_->kind == LinkKind::kData &&
      h.kind() == static_cast<std::uint32_t>(MessageKind::kGossip) && h.round() > now &&
      h.round() - now > ahead) {
    // round > now >= 0 here; unsigned so that the largest round is shown without overflow.
    const std::uint64_t shown = static_cast<std::uint64_t>(h.round()) + 1;
    detail = "gossip for round " + std::to_string(shown) + " while this node is at " +
             std::to_string(now + 1) + " (network.max_rounds_ahead " + std::to_string(ahead) + ")";
    return &LinkStats::rejected_ahead;
  }
  const std::size_t limit = impl_.options.mailbox_bytes;
  if (limit > 0 && impl_.buffered_from(link_->peer) + payload_bytes > limit) {
    detail = std::to_string(payload_bytes) + " payload bytes on top of " +
             std::to_string(impl_.buffered_from(link_->peer)) +
             " already waiting exceed network.mailbox_mb (" + std::to_string(limit) + " bytes)";
    return &LinkStats::rejected_mailbox;
  }
  return nullptr;
}

// Reads past the payload of a refused message in small pieces: nothing of it is kept.
void Session::skip_payload() {
  if (skip_left_ == 0) {
    read_prefix();
    return;
  }
  if (skip_buf_.empty()) skip_buf_.resize(64 * 1024);
  const std::size_t n =
      static_cast<std::size_t>(std::min<std::uint64_t>(skip_buf_.size(), skip_left_));
  read(asio::buffer(skip_buf_.data(), n), "truncated frame payload",
       [](Session& s, std::size_t got) {
         s.skip_left_ -= got;
         s.skip_payload();
       });
}

void Session::read_payload() {
  // Small reads keep the copy out of the socket cache-hot (see kSyscallBytes); each one
  // also refreshes last_recv_ during big frames.
  const std::size_t n = std::min(kSyscallBytes, payload_.size() - rx_done_);
  read(asio::buffer(rx_ptr_ + rx_done_, n), "truncated frame payload",
       [](Session& s, std::size_t got) {
         s.rx_done_ += got;
         s.peak_.advance(s.rx_ptr_, s.rx_done_);  // while the piece is in cache
         if (s.rx_done_ < s.payload_.size()) {
           s.read_payload();
         } else {
           s.payload_.set_fp32_peak(s.peak_.peak());
           s.on_frame(std::exchange(s.payload_, Payload()));
         }
       });
}

void Session::on_frame(Payload payload) {
  if (state_ != State::kEstablished) {
    on_handshake_frame();
    return;
  }
  const std::uint64_t frame_bytes = kPrefixBytes + prefix_.frame_length - 4;
  switch (header_.type()) {
    case wire::FRAME_MESSAGE:
      on_message(header_, std::move(payload), frame_bytes);
      if (state_ == State::kClosed) return;
      break;
    case wire::FRAME_SHM: {
      on_shm_frame();
      if (state_ == State::kClosed) return;
      std::lock_guard lock(link_->mu);
      link_->stats.bytes_recv += frame_bytes;
      break;
    }
    case wire::FRAME_HEARTBEAT:
    case wire::FRAME_BYE: {
      if (header_.type() == wire::FRAME_BYE) peer_bye_ = true;
      std::lock_guard lock(link_->mu);
      link_->stats.bytes_recv += frame_bytes;
      break;
    }
    default:
      fail("unexpected frame type " + std::to_string(header_.type()) + " after handshake", true);
      return;
  }
  read_prefix();
}

std::string Session::message_error(const wire::Header& h) const {
  if (h.sender() != link_->peer)
    return "message claims sender " + std::to_string(h.sender()) + " on the link of node " +
           std::to_string(link_->peer);
  if (!known_kind(h.kind())) return "message of unknown kind " + std::to_string(h.kind());
  return {};
}

// An application message: checked, counted, handed to the mailbox.
void Session::on_message(const wire::Header& h, Payload payload, std::uint64_t frame_bytes) {
  if (const std::string err = message_error(h); !err.empty()) {
    fail(err, true);
    return;
  }
  hand_over(h, std::move(payload), frame_bytes);
}

void Session::hand_over(const wire::Header& h, Payload payload, std::uint64_t frame_bytes) {
  Message m = message_from_header(h, std::move(payload));
  m.link = link_->kind;
  {
    std::lock_guard lock(link_->mu);
    link_->stats.bytes_recv += frame_bytes;
    link_->stats.msgs_recv += 1;
  }
  impl_.deliver(std::move(m));
}

void Session::on_handshake_frame() {
  impl_.net_thread.assert_on_net_thread();
  const HandshakeStep step =
      handshake_.on_frame(header_, [this](int peer, LinkKind kind, std::string& error) {
        return impl_.connector.admit(peer, kind, error);
      });
  link_ = handshake_.link();
  if (step.action == HandshakeStep::Action::kServeJoin) return serve_join(*step.reply);
  if (step.reply) push_internal(*step.reply);
  switch (step.action) {
    case HandshakeStep::Action::kContinue:
      break;
    case HandshakeStep::Action::kEstablished:
      established();
      break;
    case HandshakeStep::Action::kServeJoin:  // served above
      return;
    case HandshakeStep::Action::kRefuse:
      refuse(step.reason, step.peer, step.kind);
      return;
    case HandshakeStep::Action::kFail:
      if (step.warn)
        log::warn(impl_.who(), ": ", to_string(link_->kind), " link to node ", link_->peer, " at ",
                  link_->address, ": ", step.reason);
      fail(step.reason, step.malformed);
      return;
  }
  if (state_ != State::kClosed) read_prefix();
}

void Session::established() {
  impl_.net_thread.assert_on_net_thread();
  state_ = State::kEstablished;
  end_pending();
  handshake_timer_.cancel();
  last_recv_ = Clock::now();
  impl_.attach(*link_, shared_from_this());
  if (dialer_ && state_ == State::kEstablished) offer_shm();
  arm_heartbeat();
}

// An authenticated `rumor node --join` dialer: the VERDICT and the run's settings in one
// write, then the connection closes (it never becomes a link).
void Session::serve_join(wire::Header verdict) {
  impl_.net_thread.assert_on_net_thread();
  Outgoing accepted;
  accepted.head = encode_frame_head(verdict, 0);
  internal_.push_back(std::move(accepted));
  const auto settings = std::make_shared<const std::string>(impl_.options.join_settings);
  wire::Header h;
  h.set_type(wire::FRAME_SETTINGS);
  Outgoing o;
  o.head = encode_frame_head(h, settings->size());
  o.payload =
      Payload(settings, reinterpret_cast<const std::uint8_t*>(settings->data()), settings->size());
  close_after_write_ = true;
  drain_before_close_ = true;  // a write still going (our HELLO) must not close before them
  close_reason_ = "the run's settings handed to a joiner";
  internal_.push_back(std::move(o));
  log::info(impl_.who(), ": handed the run's settings (", settings->size(),
            " bytes) to a joiner at ", remote_);
  kick();
}

void Session::refuse(const std::string& reason, int claimed_peer, LinkKind kind) {
  impl_.net_thread.assert_on_net_thread();
  impl_.refused(claimed_peer, kind, reason + " (from " + remote_ + ")");
  wire::Header h;
  h.set_type(wire::FRAME_VERDICT);
  h.mutable_verdict()->set_accepted(false);
  h.mutable_verdict()->set_reason(reason);
  close_after_write_ = true;
  close_reason_ = "refused: " + reason;
  push_internal(h);
}

}  // namespace rumor::net
