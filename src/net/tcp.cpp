// TCP transport on Boost.Asio 1.74 (callbacks; every handler runs on the one network thread).
//
// Per link: a Link (fixed after start, owned by Impl) holds the send queue and the counters
// under a mutex, so send() and stats() work from any thread. A Session is one connection:
// handshake, then one reader chain and one writer chain (one write outstanding, later sends
// coalesced into one gather write). Sessions are enable_shared_from_this and kept alive only
// by their pending handlers and by Link::session.
#include <algorithm>
#include <array>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <thread>

#include "asio.hpp"
#include "frame.hpp"
#include "rumor/common/error.hpp"
#include "rumor/common/log.hpp"
#include "rumor/net/tcp.hpp"
#include "rumor/topology/topology.hpp"

namespace rumor::net {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

struct Outgoing {
  std::vector<std::uint8_t> head;
  Payload payload;
  bool app = false;  // an application message (counted in msgs_sent / drops)
};

wire::LinkKind to_wire(LinkKind k) {
  return k == LinkKind::kData ? wire::LINK_DATA : wire::LINK_CONTROL;
}

std::size_t outgoing_bytes(const Outgoing& o) {
  return o.head.size() + o.payload.size();
}

class Session;

struct Link {
  Link(asio::io_context& ioc, int p, LinkKind k, bool d)
      : peer(p), kind(k), dialer(d), retry(ioc) {}
  const int peer;
  const LinkKind kind;
  const bool dialer;  // true: this node dials (lower id dials)
  tcp::endpoint endpoint;
  std::string address;  // host:port, for messages

  mutable std::mutex mu;  // guards everything below up to the network-thread-only part
  std::deque<Outgoing> queue;
  std::size_t queued_bytes = 0;
  std::uint64_t next_seq = 0;
  bool up = false;
  bool ever_up = false;
  bool wake_posted = false;
  LinkStats stats;
  std::string last_error;

  // Network thread only.
  std::shared_ptr<Session> session;
  asio::steady_timer retry;
  milliseconds backoff{0};
  bool deadline_reported = false;
};

}  // namespace

struct TcpTransport::Impl {
  Impl(TcpTransport& o, TransportOptions opt) : owner(o), options(std::move(opt)) {}

  TcpTransport& owner;
  TransportOptions options;
  asio::io_context ioc{1};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  tcp::acceptor acceptor{ioc};
  std::map<std::pair<int, int>, std::unique_ptr<Link>> links;  // (peer, kind); fixed at start
  std::vector<std::weak_ptr<Session>> sessions;                // network thread: for stop()
  std::shared_ptr<BufferPool> pool = std::make_shared<BufferPool>();
  std::unique_ptr<Topology> topology;
  int self = -1;
  Clock::time_point started_at;
  std::thread thread;
  bool started = false;
  bool stopped = false;
  std::atomic<bool> stopping{false};
  std::atomic<std::uint64_t> refused_total{0};
  std::atomic<std::uint64_t> malformed_total{0};
  std::mutex up_mutex;
  std::condition_variable up_cv;

  Link* find(int peer, LinkKind kind) {
    auto it = links.find({peer, static_cast<int>(kind)});
    return it == links.end() ? nullptr : it->second.get();
  }
  std::string who() const { return "node " + std::to_string(self); }

  void accept();
  void dial(Link& link);
  void schedule_dial(Link& link, milliseconds delay);
  void on_dial_failed(Link& link, const std::string& reason);
  void attach(Link& link, const std::shared_ptr<Session>& s);
  void on_session_closed(Session& s, const std::string& reason);
  void wake(Link& link);
  void refused(int peer, LinkKind kind, const std::string& reason);
  void count_malformed(Link* link, const std::string& reason, const std::string& from);
  void close_all();
  void deliver(Message m) { owner.mailbox_.push(std::move(m)); }
};

namespace {

enum class State { kHandshake, kEstablished, kClosed };
// At most this much per sendmsg/recv: the kernel then copies a piece that fits the L2
// cache and the receiver takes it while it is still cached. One 40 MB sendmsg measured
// ~35 % below iperf3 here; 256 KB-4 MB pieces were measured, 1 MB did best (BENCHMARKS.md).
constexpr std::size_t kSyscallBytes = 1024 * 1024;
// Asked for; the kernel caps it at net.core.wmem_max (and doubles it for its bookkeeping).
constexpr int kSendBufferBytes = 8 * 1024 * 1024;

class Session : public std::enable_shared_from_this<Session> {
 public:
  using Impl = TcpTransport::Impl;
  Session(Impl& impl, tcp::socket socket, Link* link)
      : impl_(impl),
        socket_(std::move(socket)),
        dialer_(link != nullptr),
        link_(link),
        handshake_timer_(impl.ioc),
        heartbeat_timer_(impl.ioc) {}

  State state() const { return state_; }
  Link* link() const { return link_; }
  bool dialer() const { return dialer_; }
  tcp::socket& socket() { return socket_; }

  void arm_handshake_timer() {
    handshake_timer_.expires_after(impl_.options.handshake_timeout);
    handshake_timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (!ec && self->state_ == State::kHandshake) self->fail("handshake timed out", false);
    });
  }

  // Connection is open: start the handshake.
  void start() {
    boost::system::error_code ignored;
    socket_.set_option(tcp::no_delay(true), ignored);
    // A send buffer that holds a whole multi-MB message: the network thread writes it in
    // one go instead of waking up each time the receiver drains a piece.
    socket_.set_option(asio::socket_base::send_buffer_size(kSendBufferBytes), ignored);
    remote_ = endpoint_text();
    last_recv_ = last_send_ = Clock::now();
    nonce_ = random_nonce();
    if (dialer_) {
      wire::Header h;
      h.set_type(wire::FRAME_HELLO);
      auto* hello = h.mutable_hello();
      hello->set_magic(kMagic);
      hello->set_version(kProtocolVersion);
      hello->set_run_id(impl_.options.run_id);
      hello->set_node_id(impl_.self);
      hello->set_target_id(link_->peer);
      hello->set_link(to_wire(link_->kind));
      hello->set_nonce(nonce_);
      push_internal(h);
    }
    read_prefix();
  }

  // Network thread: write whatever is queued (handshake frames first, then the link queue).
  void kick() {
    if (writing_ || state_ == State::kClosed) return;
    inflight_.clear();
    while (!internal_.empty()) {
      inflight_.push_back(std::move(internal_.front()));
      internal_.pop_front();
    }
    if (state_ == State::kEstablished && !close_after_write_) {
      std::lock_guard lock(link_->mu);
      link_->wake_posted = false;
      std::size_t bytes = 0;
      // Bound one gather write; the rest goes in the next one.
      while (!link_->queue.empty() && inflight_.size() < 256 && bytes < (64u << 20)) {
        bytes += outgoing_bytes(link_->queue.front());
        link_->queued_bytes -= outgoing_bytes(link_->queue.front());
        inflight_.push_back(std::move(link_->queue.front()));
        link_->queue.pop_front();
      }
    }
    if (inflight_.empty()) return;
    buffers_.clear();
    for (const auto& o : inflight_) {
      buffers_.emplace_back(o.head.data(), o.head.size());
      if (!o.payload.empty()) buffers_.emplace_back(o.payload.data(), o.payload.size());
    }
    writing_ = true;
    // At most kSyscallBytes per sendmsg (see there).
    asio::async_write(
        socket_, buffers_,
        [](const boost::system::error_code& ec, std::size_t) -> std::size_t {
          return ec ? 0 : kSyscallBytes;
        },
        [self = shared_from_this()](boost::system::error_code ec, std::size_t n) {
          self->on_written(ec, n);
        });
  }

  void push_internal(wire::Header& h) {
    Outgoing o;
    o.head = encode_frame_head(h, 0);
    internal_.push_back(std::move(o));
    kick();
  }

  // Closes the connection. `malformed`: bad input from the remote side (counted).
  void fail(const std::string& reason, bool malformed) {
    if (state_ == State::kClosed) return;
    const State was = state_;
    state_ = State::kClosed;
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
    }
    inflight_.clear();
    if (malformed) {
      impl_.count_malformed(link_ && (was == State::kEstablished || dialer_) ? link_ : nullptr,
                            reason, remote_);
    }
    if (was == State::kEstablished) {
      impl_.on_session_closed(*this, reason);
    } else if (dialer_ && !impl_.stopping) {
      impl_.on_dial_failed(*link_, reason);
    }
  }

  // Clean stop: tell the peer, then close once that is written. A session in the middle
  // of a (possibly large) write is closed at once so stop() never waits on a slow peer.
  void say_bye() {
    if (state_ != State::kEstablished || writing_) {
      fail("transport stopped", false);
      return;
    }
    wire::Header h;
    h.set_type(wire::FRAME_BYE);
    close_after_write_ = true;
    close_reason_ = "transport stopped";
    push_internal(h);
  }
  bool peer_bye() const { return peer_bye_; }

  void established() {
    state_ = State::kEstablished;
    handshake_timer_.cancel();
    last_recv_ = Clock::now();
    impl_.attach(*link_, shared_from_this());
    arm_heartbeat();
  }

 private:
  std::string endpoint_text() const {
    boost::system::error_code ec;
    auto ep = socket_.remote_endpoint(ec);
    if (ec) return "?";
    return ep.address().to_string() + ":" + std::to_string(ep.port());
  }

  void arm_heartbeat() {
    heartbeat_timer_.expires_after(impl_.options.heartbeat_interval);
    heartbeat_timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (ec || self->state_ != State::kEstablished) return;
      const auto now = Clock::now();
      const auto timeout = self->impl_.options.heartbeat_timeout;
      if (timeout.count() > 0 && now - self->last_recv_ > timeout) {
        self->fail("no traffic or heartbeat for " + std::to_string(timeout.count()) + " ms", false);
        return;
      }
      if (!self->writing_ && now - self->last_send_ >= self->impl_.options.heartbeat_interval) {
        wire::Header h;
        h.set_type(wire::FRAME_HEARTBEAT);
        self->push_internal(h);
      }
      self->arm_heartbeat();
    });
  }

  void on_written(boost::system::error_code ec, std::size_t n) {
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
    }
    inflight_.clear();
    if (close_after_write_) {
      fail(close_reason_, false);
      return;
    }
    kick();
  }

  std::uint64_t frame_limit() const {
    return state_ == State::kEstablished ? impl_.options.max_frame_bytes : kMaxHandshakeFrame;
  }

  void read_prefix() {
    asio::async_read(socket_, asio::buffer(prefix_buf_),
                     [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
                       if (self->state_ == State::kClosed) return;
                       if (ec) {
                         self->fail(ec == asio::error::eof ? "connection closed by peer"
                                                           : "read failed: " + ec.message(),
                                    false);
                         return;
                       }
                       self->last_recv_ = Clock::now();
                       const std::string err = parse_prefix(self->prefix_buf_.data(),
                                                            self->frame_limit(), self->prefix_);
                       if (!err.empty()) {
                         self->fail(err, true);
                         return;
                       }
                       self->read_header();
                     });
  }

  void read_header() {
    header_buf_.resize(prefix_.header_length);
    asio::async_read(
        socket_, asio::buffer(header_buf_),
        [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
          if (self->state_ == State::kClosed) return;
          if (ec) {
            self->fail("truncated frame: " + ec.message(), true);
            return;
          }
          self->last_recv_ = Clock::now();
          self->header_.Clear();
          const std::string err =
              parse_header(self->header_buf_.data(), self->prefix_, self->header_);
          if (!err.empty()) {
            self->fail(err, true);
            return;
          }
          const std::uint64_t n = self->prefix_.payload_length();
          if (n == 0) {
            self->on_frame(Payload());
            return;
          }
          if (self->state_ != State::kEstablished || self->header_.type() != wire::FRAME_MESSAGE) {
            self->fail("payload on a frame that carries none", true);
            return;
          }
          self->payload_ = self->impl_.pool->allocate(n, self->rx_ptr_);
          self->rx_done_ = 0;
          self->read_payload();
        });
  }

  void read_payload() {
    // Small reads keep the copy out of the socket cache-hot (see kSyscallBytes); each one
    // also refreshes last_recv_ during big frames.
    const std::size_t n = std::min(kSyscallBytes, payload_.size() - rx_done_);
    asio::async_read(socket_, asio::buffer(rx_ptr_ + rx_done_, n),
                     [self = shared_from_this()](boost::system::error_code ec, std::size_t got) {
                       if (self->state_ == State::kClosed) return;
                       if (ec) {
                         self->fail("truncated frame payload: " + ec.message(), true);
                         return;
                       }
                       self->last_recv_ = Clock::now();
                       self->rx_done_ += got;
                       if (self->rx_done_ < self->payload_.size()) {
                         self->read_payload();
                         return;
                       }
                       self->on_frame(std::exchange(self->payload_, Payload()));
                     });
  }

  void on_frame(Payload payload) {
    const std::uint64_t frame_bytes = kPrefixBytes + prefix_.frame_length - 4;
    if (state_ == State::kEstablished) {
      switch (header_.type()) {
        case wire::FRAME_MESSAGE: {
          if (header_.sender() != link_->peer) {
            fail("message claims sender " + std::to_string(header_.sender()) +
                     " on the link of node " + std::to_string(link_->peer),
                 true);
            return;
          }
          Message m = message_from_header(header_, std::move(payload));
          m.link = link_->kind;
          {
            std::lock_guard lock(link_->mu);
            link_->stats.bytes_recv += frame_bytes;
            link_->stats.msgs_recv += 1;
          }
          impl_.deliver(std::move(m));
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
          fail("unexpected frame type " + std::to_string(header_.type()) + " after handshake",
               true);
          return;
      }
      read_prefix();
      return;
    }
    if (dialer_ ? !on_dialer_frame() : !on_acceptor_frame()) return;
    if (state_ != State::kClosed) read_prefix();
  }

  void refuse(const std::string& reason, int claimed_peer, LinkKind kind) {
    impl_.refused(claimed_peer, kind, reason + " (from " + remote_ + ")");
    wire::Header h;
    h.set_type(wire::FRAME_VERDICT);
    h.mutable_verdict()->set_accepted(false);
    h.mutable_verdict()->set_reason(reason);
    close_after_write_ = true;
    close_reason_ = "refused: " + reason;
    push_internal(h);
  }

  static std::string check_hello(const wire::Hello& h, const std::string& run_id) {
    if (h.magic() != kMagic) return "bad magic (not a rumor peer)";
    if (h.version() != kProtocolVersion)
      return "protocol version " + std::to_string(h.version()) + ", this node speaks " +
             std::to_string(kProtocolVersion);
    if (h.run_id() != run_id)
      return "run id '" + h.run_id() + "' differs from this node's '" + run_id + "'";
    if (h.nonce().size() != kNonceBytes) return "bad nonce";
    return {};
  }

  // Acceptor side: HELLO from the dialer, then AUTH. Returns false once closed.
  bool on_acceptor_frame() {
    const auto& opt = impl_.options;
    if (stage_ == 0) {
      if (header_.type() != wire::FRAME_HELLO) {
        fail("expected a hello frame", true);
        return false;
      }
      const auto& hello = header_.hello();
      const int peer = hello.node_id();
      const LinkKind kind =
          hello.link() == wire::LINK_CONTROL ? LinkKind::kControl : LinkKind::kData;
      std::string err = check_hello(hello, opt.run_id);
      if (err.empty() && hello.target_id() != impl_.self)
        err = "hello addressed to node " + std::to_string(hello.target_id()) + ", this is node " +
              std::to_string(impl_.self);
      Link* link = nullptr;
      if (err.empty()) {
        link = impl_.find(peer, kind);
        if (!link)
          err = "node " + std::to_string(peer) + " is not a " + to_string(kind) +
                " neighbour of node " + std::to_string(impl_.self);
        else if (link->dialer)
          err = "node " + std::to_string(peer) + " dialed, but node " + std::to_string(impl_.self) +
                " dials that link (lower id dials)";
      }
      if (!err.empty()) {
        refuse(err, peer, kind);
        return false;
      }
      link_ = link;
      peer_nonce_ = hello.nonce();
      wire::Header h;
      h.set_type(wire::FRAME_HELLO);
      auto* mine = h.mutable_hello();
      mine->set_magic(kMagic);
      mine->set_version(kProtocolVersion);
      mine->set_run_id(opt.run_id);
      mine->set_node_id(impl_.self);
      mine->set_target_id(peer);
      mine->set_link(to_wire(kind));
      mine->set_nonce(nonce_);
      if (!opt.secret.empty())
        mine->set_mac(handshake_mac(opt.secret, "acceptor", opt.run_id, kind, peer, impl_.self,
                                    peer_nonce_, nonce_));
      stage_ = 1;
      push_internal(h);
      return true;
    }
    if (header_.type() == wire::FRAME_VERDICT && !header_.verdict().accepted()) {
      fail("refused by node " + std::to_string(link_->peer) + ": " + header_.verdict().reason(),
           false);
      return false;
    }
    if (header_.type() != wire::FRAME_AUTH) {
      fail("expected an auth frame", true);
      return false;
    }
    if (!opt.secret.empty()) {
      const std::string want = handshake_mac(opt.secret, "dialer", opt.run_id, link_->kind,
                                             link_->peer, impl_.self, nonce_, peer_nonce_);
      if (!mac_equal(want, header_.auth().mac())) {
        refuse("authentication failed (wrong or missing shared secret)", link_->peer, link_->kind);
        return false;
      }
    }
    wire::Header h;
    h.set_type(wire::FRAME_VERDICT);
    h.mutable_verdict()->set_accepted(true);
    push_internal(h);  // queued before any message: internal frames go first
    established();
    return true;
  }

  // Dialer side: HELLO (or a refusal) from the acceptor, then the VERDICT.
  bool on_dialer_frame() {
    const auto& opt = impl_.options;
    if (header_.type() == wire::FRAME_VERDICT) {
      if (header_.verdict().accepted() && stage_ == 1) {
        established();
        return true;
      }
      const std::string reason = header_.verdict().accepted()
                                     ? "verdict before hello"
                                     : "refused by node " + std::to_string(link_->peer) + ": " +
                                           header_.verdict().reason();
      log::warn(impl_.who(), ": ", to_string(link_->kind), " link to node ", link_->peer, " at ",
                link_->address, ": ", reason);
      fail(reason, !header_.verdict().accepted() ? false : true);
      return false;
    }
    if (stage_ != 0 || header_.type() != wire::FRAME_HELLO) {
      fail("unexpected frame type " + std::to_string(header_.type()) + " during handshake", true);
      return false;
    }
    const auto& hello = header_.hello();
    std::string err = check_hello(hello, opt.run_id);
    if (err.empty() && hello.node_id() != link_->peer)
      err = "answered as node " + std::to_string(hello.node_id()) + ", expected node " +
            std::to_string(link_->peer);
    if (err.empty() && hello.target_id() != impl_.self) err = "hello addressed to another node";
    if (err.empty() && (hello.link() == wire::LINK_CONTROL) != (link_->kind == LinkKind::kControl))
      err = "link kind differs";
    if (!err.empty()) {
      refuse(err, link_->peer, link_->kind);
      return false;
    }
    // Answer the challenge first, so the acceptor also checks (and counts) a secret
    // mismatch; then check the acceptor's answer to ours.
    wire::Header h;
    h.set_type(wire::FRAME_AUTH);
    if (!opt.secret.empty())
      h.mutable_auth()->set_mac(handshake_mac(opt.secret, "dialer", opt.run_id, link_->kind,
                                              impl_.self, link_->peer, hello.nonce(), nonce_));
    stage_ = 1;
    push_internal(h);
    if (!opt.secret.empty()) {
      const std::string want = handshake_mac(opt.secret, "acceptor", opt.run_id, link_->kind,
                                             impl_.self, link_->peer, nonce_, hello.nonce());
      if (!mac_equal(want, hello.mac())) err = "authentication failed (wrong or missing secret)";
    } else if (!hello.mac().empty()) {
      err = "peer authenticates with a secret but this node has none";
    }
    if (!err.empty()) {
      refuse(err, link_->peer, link_->kind);
      return false;
    }
    return true;
  }

  Impl& impl_;
  tcp::socket socket_;
  const bool dialer_;
  Link* link_;
  asio::steady_timer handshake_timer_;
  asio::steady_timer heartbeat_timer_;
  State state_ = State::kHandshake;
  int stage_ = 0;
  std::string remote_ = "?";
  std::string nonce_;
  std::string peer_nonce_;

  std::array<std::uint8_t, kPrefixBytes> prefix_buf_{};
  Prefix prefix_;
  std::vector<std::uint8_t> header_buf_;
  wire::Header header_;
  Payload payload_;
  std::uint8_t* rx_ptr_ = nullptr;
  std::size_t rx_done_ = 0;

  std::deque<Outgoing> internal_;  // handshake and heartbeat frames
  std::vector<Outgoing> inflight_;
  std::vector<asio::const_buffer> buffers_;
  bool writing_ = false;
  bool close_after_write_ = false;
  bool peer_bye_ = false;
  std::string close_reason_;
  Clock::time_point last_recv_;
  Clock::time_point last_send_;
};

}  // namespace

void TcpTransport::Impl::accept() {
  acceptor.async_accept([this](boost::system::error_code ec, tcp::socket socket) {
    if (stopping || !acceptor.is_open()) return;
    if (!ec) {
      std::erase_if(sessions, [](const std::weak_ptr<Session>& w) { return w.expired(); });
      auto s = std::make_shared<Session>(*this, std::move(socket), nullptr);
      sessions.push_back(s);
      s->arm_handshake_timer();
      s->start();
      accept();
    } else {
      // E.g. out of file descriptors: back off instead of spinning.
      log::warn(who(), ": accept failed: ", ec.message());
      auto t = std::make_shared<asio::steady_timer>(ioc, milliseconds(100));
      t->async_wait([this, t](boost::system::error_code e) {
        if (!e && !stopping) accept();
      });
    }
  });
}

void TcpTransport::Impl::dial(Link& link) {
  if (stopping) return;
  std::erase_if(sessions, [](const std::weak_ptr<Session>& w) { return w.expired(); });
  auto s = std::make_shared<Session>(*this, tcp::socket(ioc), &link);
  sessions.push_back(s);
  s->arm_handshake_timer();
  s->socket().async_connect(link.endpoint, [this, s](boost::system::error_code ec) {
    if (s->state() == State::kClosed) return;
    if (ec) {
      if (ec != asio::error::operation_aborted)
        s->fail("connect to " + s->link()->address + " failed: " + ec.message(), false);
      return;
    }
    s->start();
  });
}

void TcpTransport::Impl::schedule_dial(Link& link, milliseconds delay) {
  if (stopping) return;
  link.retry.expires_after(delay);
  link.retry.async_wait([this, &link](boost::system::error_code ec) {
    if (!ec && !stopping && !link.session) dial(link);
  });
}

void TcpTransport::Impl::on_dial_failed(Link& link, const std::string& reason) {
  {
    std::lock_guard lock(link.mu);
    link.last_error = reason;
  }
  if (!link.deadline_reported && Clock::now() - started_at > options.connect_timeout) {
    link.deadline_reported = true;
    const std::string msg = who() + " cannot reach node " + std::to_string(link.peer) + " (" +
                            to_string(link.kind) + " link) at " + link.address + ": " + reason;
    log::warn(msg, "; still retrying");
    owner.emit({LinkEventType::kConnectFailed, link.peer, link.kind, msg});
  }
  link.backoff = std::clamp(link.backoff * 2, options.retry_min, options.retry_max);
  schedule_dial(link, link.backoff);
}

void TcpTransport::Impl::attach(Link& link, const std::shared_ptr<Session>& s) {
  std::shared_ptr<Session> old = std::exchange(link.session, s);
  if (old) old->fail("replaced by a new connection from the same peer", false);
  bool reconnect = false;
  {
    std::lock_guard lock(link.mu);
    link.up = true;
    reconnect = link.ever_up;
    if (reconnect) link.stats.reconnects += 1;
    link.ever_up = true;
    link.last_error.clear();
  }
  link.backoff = options.retry_min;
  { std::lock_guard lock(up_mutex); }
  up_cv.notify_all();
  log::debug(who(), ": ", to_string(link.kind), " link to node ", link.peer,
             reconnect ? " up again" : " up");
  owner.emit({LinkEventType::kUp, link.peer, link.kind, reconnect ? "reconnected" : ""});
  s->kick();
}

void TcpTransport::Impl::on_session_closed(Session& s, const std::string& reason) {
  Link& link = *s.link();
  if (link.session.get() != &s) return;  // an old connection that was replaced
  auto keep = std::move(link.session);
  std::uint64_t dropped = 0;
  {
    std::lock_guard lock(link.mu);
    link.up = false;
    for (const auto& o : link.queue) dropped += o.app ? 1 : 0;
    link.stats.drops += dropped;
    link.queue.clear();
    link.queued_bytes = 0;
    link.last_error = reason;
  }
  if (stopping) return;
  const std::string why = s.peer_bye() ? "peer stopped" : reason;
  if (s.peer_bye() && dropped == 0) {
    log::debug(who(), ": ", to_string(link.kind), " link to node ", link.peer, " closed: ", why);
  } else {
    log::warn(who(), ": ", to_string(link.kind), " link to node ", link.peer, " down: ", why,
              dropped ? "; dropped " + std::to_string(dropped) + " queued messages" : "");
  }
  owner.emit({LinkEventType::kDown, link.peer, link.kind, why});
  if (link.dialer) {
    link.backoff = options.retry_min;
    schedule_dial(link, options.retry_min);
  }
}

void TcpTransport::Impl::wake(Link& link) {
  {
    std::lock_guard lock(link.mu);
    link.wake_posted = false;
  }
  if (link.session && link.session->state() == State::kEstablished) link.session->kick();
}

void TcpTransport::Impl::refused(int peer, LinkKind kind, const std::string& reason) {
  refused_total += 1;
  if (Link* link = find(peer, kind)) {
    std::lock_guard lock(link->mu);
    link->stats.refused += 1;
  }
  log::warn(who(), ": refused a ", to_string(kind), " connection claiming node ", peer, ": ",
            reason);
  owner.emit({LinkEventType::kRefused, peer, kind, reason});
}

void TcpTransport::Impl::count_malformed(Link* link, const std::string& reason,
                                         const std::string& from) {
  malformed_total += 1;
  if (link) {
    std::lock_guard lock(link->mu);
    link->stats.malformed += 1;
  }
  log::warn(who(), ": closed connection from ", from,
            link ? " (node " + std::to_string(link->peer) + ")" : std::string(),
            ": bad input: ", reason);
}

void TcpTransport::Impl::close_all() {
  stopping = true;
  boost::system::error_code ignored;
  acceptor.close(ignored);
  for (auto& [key, link] : links) link->retry.cancel();
  for (auto& w : sessions)
    if (auto s = w.lock()) s->say_bye();
  for (auto& [key, link] : links) link->session.reset();
  sessions.clear();
}

TcpTransport::TcpTransport(TransportOptions options)
    : impl_(std::make_shared<Impl>(*this, std::move(options))) {}

TcpTransport::~TcpTransport() {
  stop();
}

int TcpTransport::bind(const std::string& host, int port) {
  auto& a = impl_->acceptor;
  try {
    tcp::endpoint ep(asio::ip::make_address(host), static_cast<unsigned short>(port));
    a.open(ep.protocol());
    a.set_option(tcp::acceptor::reuse_address(true));
    a.bind(ep);
    a.listen(asio::socket_base::max_listen_connections);
  } catch (const boost::system::system_error& e) {
    boost::system::error_code ignored;
    a.close(ignored);
    throw Error("cannot listen on " + host + ":" + std::to_string(port) + ": " + e.what() +
                " (is another process using the port? is the host an address of this machine?)");
  }
  return TcpTransport::port();
}

int TcpTransport::port() const {
  boost::system::error_code ec;
  auto ep = impl_->acceptor.local_endpoint(ec);
  return ec ? -1 : ep.port();
}

void TcpTransport::start(const Topology& topology, int self) {
  auto& im = *impl_;
  if (im.started) throw Error("TcpTransport::start called twice");
  if (self < 0 || self >= topology.size())
    throw TopologyError("node id " + std::to_string(self) + " outside 0.." +
                        std::to_string(topology.size() - 1) + " of topology '" + topology.name() +
                        "'");
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
    if (link->dialer) {
      boost::system::error_code ec;
      auto addr = asio::ip::make_address(info.host, ec);
      if (ec) {
        tcp::resolver resolver(im.ioc);
        auto results = resolver.resolve(info.host, std::to_string(info.port), ec);
        if (ec || results.empty())
          throw TopologyError("node " + std::to_string(self) + ": cannot resolve host '" +
                              info.host + "' of node " + std::to_string(peer) + ": " +
                              ec.message());
        link->endpoint = results.begin()->endpoint();
      } else {
        link->endpoint = tcp::endpoint(addr, static_cast<unsigned short>(info.port));
      }
    }
    link->backoff = im.options.retry_min;
    im.links[{peer, static_cast<int>(kind)}] = std::move(link);
  };
  for (int p : data_peers_) add_link(p, LinkKind::kData);
  for (int p : control_peers_) add_link(p, LinkKind::kControl);

  if (!im.acceptor.is_open()) {
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
  im.started_at = Clock::now();
  im.work.emplace(im.ioc.get_executor());
  asio::post(im.ioc, [&im] {
    im.accept();
    for (auto& [key, link] : im.links)
      if (link->dialer) im.dial(*link);
  });
  im.thread = std::thread([&im] {
    while (true) {
      try {
        im.ioc.run();
        return;
      } catch (const std::exception& e) {
        // A handler threw (e.g. out of memory): log it and keep the node running.
        log::error(im.who(), ": network handler failed: ", e.what());
      }
    }
  });
}

void TcpTransport::wait_connected(std::optional<std::chrono::milliseconds> timeout) {
  auto& im = *impl_;
  if (!im.started) throw Error("wait_connected before start");
  const auto deadline = Clock::now() + timeout.value_or(im.options.connect_timeout);
  auto missing = [&]() -> Link* {
    for (auto& [key, link] : im.links) {
      std::lock_guard lock(link->mu);
      if (!link->up) return link.get();
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
  Outgoing o;
  o.app = true;
  o.payload = std::move(message.payload);
  std::lock_guard lock(link->mu);
  const std::size_t bytes = o.payload.size();
  if (im.stopping || link->queue.size() >= im.options.send_queue_messages ||
      link->queued_bytes + bytes > im.options.send_queue_bytes) {
    link->stats.drops += 1;
    return false;
  }
  wire::Header h = message_header(message, self_, ++link->next_seq);
  o.head = encode_frame_head(h, bytes);
  link->queued_bytes += outgoing_bytes(o);
  link->queue.push_back(std::move(o));
  if (link->up && !link->wake_posted) {
    link->wake_posted = true;
    asio::post(im.ioc, [&im, link] { im.wake(*link); });
  }
  return true;
}

void TcpTransport::stop() {
  auto& im = *impl_;
  if (im.stopped) return;
  im.stopped = true;
  if (im.started) {
    asio::post(im.ioc, [&im] { im.close_all(); });
    im.work.reset();
    if (im.thread.joinable()) im.thread.join();
  } else {
    boost::system::error_code ignored;
    im.acceptor.close(ignored);
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
  return out;
}

bool TcpTransport::link_up(int peer, LinkKind link) const {
  Link* l = impl_->find(peer, link);
  if (!l) return false;
  std::lock_guard lock(l->mu);
  return l->up;
}

}  // namespace rumor::net
