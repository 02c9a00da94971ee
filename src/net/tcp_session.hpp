#pragma once
// One TCP connection of a TcpTransport: handshake, then framing (internal).
//
// A session is enable_shared_from_this and kept alive only by its pending handlers and by
// Link::session. After the handshake it runs one reader chain (prefix, header, payload in
// pieces) and one writer chain: one write outstanding, and everything queued meanwhile goes
// out in the next gather write (coalesced), handshake and heartbeat frames first. Every
// handler runs on the network thread and is guarded: an exception thrown in it (or in a
// handler it calls, such as the event handler) closes this session and nothing else.
// With network.tls the connection first runs a TLS 1.3 handshake (tcp_session_tls.cpp) and
// everything after it, the rumor handshake included, goes through the TLS stream.
// Between co-located peers a data link's messages then move to a shared-memory ring
// (shm_link.hpp); the connection keeps the handshake, heartbeats and bye.
#include <array>
#include <atomic>
#include <chrono>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "asio.hpp"
#include "frame.hpp"
#include "peak_scan.hpp"
#include "rumor/net/tcp.hpp"
#include "shm_link.hpp"
#include "tcp_handshake.hpp"
#include "tcp_link.hpp"
#include "tls.hpp"

namespace rumor::net {

class Session : public std::enable_shared_from_this<Session>, private ShmHost {
 public:
  using Impl = TcpTransport::Impl;
  using Clock = std::chrono::steady_clock;
  enum class State { kHandshake, kEstablished, kClosed };

  // `link`: the dialer's link; null for an accepted connection (known after its HELLO).
  Session(Impl& impl, tcp::socket socket, Link* link);
  // Stops the shared-memory path first: its doorbell thread calls this session.
  ~Session() override;

  State state() const { return state_; }
  Link* link() const { return link_; }
  // The remote address (host:port) once the connection is open.
  const std::string& remote() const { return remote_; }
  // An accepted connection: counted in Impl::pending_handshakes until it is established or
  // closed.
  void count_as_pending();
  tcp::socket& socket() { return socket_; }

  void arm_handshake_timer();
  // Dialer: connects the socket, then start()s.
  void connect(const tcp::endpoint& endpoint);
  // The connection is open: start the handshake.
  void start();
  // The dialed socket is connected to itself (TCP simultaneous open on one port).
  bool connected_to_itself() const;
  // Writes whatever is queued (handshake frames first, then the link queue).
  void kick();
  // kick() as a handler of its own (posted by send()): an exception closes this session.
  void kick_guarded() noexcept;
  // Closes the connection. `malformed`: bad input from the remote side (counted).
  void fail(const std::string& reason, bool malformed);
  // fail() from any thread: posted to the network thread.
  void fail_later(const std::string& reason, bool malformed);
  // Clean stop: tell the peer, then close once that is written. Never throws: stop() waits
  // for every session to close. `reason`: logged here as the close's.
  void say_bye(const std::string& reason = "transport stopped") noexcept;
  bool peer_bye() const { return peer_bye_; }

 private:
  // Runs one handler body; an exception closes this session instead of escaping to the
  // io_context (which would leave the session half-updated).
  template <typename F>
  void guarded(const char* where, F&& body) noexcept;
  // Runs f on the stream the frames go through: the TLS stream, or the socket itself.
  template <typename F>
  void on_stream(F&& f) {
    if (tls_) {
      f(*tls_);
    } else {
      f(socket_);
    }
  }
  // The rumor handshake: the dialer's HELLO, then the reader.
  void open_handshake();
  void start_tls();
  void on_tls_handshake(boost::system::error_code ec);
  void on_handler_error(const char* where, const std::string& what) noexcept;

  std::string endpoint_text() const;
  void push_internal(wire::Header h);
  void take_queued();
  void write_inflight();
  void on_written(boost::system::error_code ec, std::size_t n);
  void arm_heartbeat();
  void arm_bye_linger();
  void on_heartbeat_timer();

  std::uint64_t frame_limit() const;
  template <typename Next>
  void read(asio::mutable_buffer buffer, const char* truncated, Next next);
  void read_prefix();
  void read_header();
  void on_header();
  // Why an application message may not go to the mailbox (seen from its header): the
  // LinkStats counter to bump, or null. Records its sequence number.
  std::uint64_t LinkStats::*refusal(const wire::Header& h, std::uint64_t payload_bytes,
                                    std::string& detail);
  void skip_payload();
  void end_pending();
  void read_payload();
  void on_frame(Payload payload);
  void on_message(const wire::Header& h, Payload payload, std::uint64_t frame_bytes);
  // A checked message to the mailbox, counted (any thread).
  void hand_over(const wire::Header& h, Payload payload, std::uint64_t frame_bytes);
  void on_handshake_frame();
  void established();
  void serve_join(wire::Header verdict);
  void refuse(const std::string& reason, int claimed_peer, LinkKind kind);
  // Why a message header may not be taken at all (bad input), or empty.
  std::string message_error(const wire::Header& h) const;

  // Shared memory (shm_link.hpp): offer, answer, fall back to TCP (logged once per link).
  bool co_located() const;
  void offer_shm();
  void accept_shm(const wire::Shm& offer);
  void on_shm_frame();
  void shm_fallback(const std::string& why);
  ShmLink::Post shm_post();
  ShmAdmit admit_ring_message(const Prefix& prefix, const wire::Header& header) override;
  void deliver_ring_message(const wire::Header& header, Payload payload,
                            std::uint64_t frame_bytes) override;
  void ring_failed(const std::string& reason) override;

  Impl& impl_;
  tcp::socket socket_;
  std::unique_ptr<TlsStream> tls_;  // network.tls: over socket_ (destroyed before it)
  const bool dialer_;
  Link* link_;
  Handshake handshake_;
  asio::steady_timer handshake_timer_;
  asio::steady_timer heartbeat_timer_;
  State state_ = State::kHandshake;
  std::string remote_ = "?";

  // Reader.
  std::array<std::uint8_t, kPrefixBytes> prefix_buf_{};
  Prefix prefix_;
  std::vector<std::uint8_t> header_buf_;
  wire::Header header_;
  Payload payload_;
  std::uint8_t* rx_ptr_ = nullptr;
  std::size_t rx_done_ = 0;
  PeakScan peak_;  // of the payload so far
  // Of this connection, over TCP and the ring alike: sequence numbers must increase.
  std::atomic<std::uint64_t> last_seq_{0};
  std::uint64_t skip_left_ = 0;  // payload bytes of a refused message still to read past
  std::vector<std::uint8_t> skip_buf_;
  bool pending_ = false;

  // Writer.
  std::deque<Outgoing> internal_;  // handshake and heartbeat frames
  std::vector<Outgoing> inflight_;
  std::vector<asio::const_buffer> buffers_;
  bool writing_ = false;
  bool close_after_write_ = false;
  bool drain_before_close_ = false;  // close only once the internal frames are all written
  bool peer_bye_ = false;
  std::string close_reason_;
  std::atomic<Clock::time_point> last_recv_;  // the ring's doorbell thread sets it too
  Clock::time_point last_send_;

  // The shared-memory path of this data link while offered or active (null: all on TCP).
  std::shared_ptr<ShmLink> shm_;
};

}  // namespace rumor::net
