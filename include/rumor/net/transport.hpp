#pragma once
// Peer transport: framed messages between the nodes of a topology.
//
// Two implementations share this interface (and one test suite):
//  - TcpTransport (tcp.hpp): one process per node, Boost.Asio, one network thread per node.
//  - InProcNetwork / in-process transports (inproc.hpp): many nodes in one process, with an
//    optional link model (latency, bandwidth, loss) driven by a seed.
//
// Links: one per topology neighbour (data plane, Topology::peers) plus the control ring
// (Topology::control_peers: i-1 and i+1 mod n), each a separate connection marked in the
// handshake. Control traffic is counted apart from data traffic.
//
// Threads: send(), take(), drain(), events(), stats(), link_up() may be called from any
// thread (typically the trainer thread) and never wait on the network. start() and stop()
// are called by the owner, once each (stop() is idempotent and also run by the destructor).
// The event handler runs on the network thread and must not block.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "rumor/net/message_kind.hpp"

namespace rumor {
class Topology;
}

namespace rumor::net {

// Wire protocol version carried in every handshake and frame header.
inline constexpr std::uint32_t kProtocolVersion = 1;

enum class LinkKind : std::uint8_t { kData = 0, kControl = 1 };
const char* to_string(LinkKind kind);

// Immutable bytes with shared ownership: one encoded buffer can go to several neighbours,
// and the transport writes it to the socket straight from this memory (scatter/gather, no
// copy into a protobuf string). Received payloads are read straight into such a buffer.
class Payload {
 public:
  Payload() = default;
  // `data` must stay valid while `owner` is alive.
  Payload(std::shared_ptr<const void> owner, const std::uint8_t* data, std::size_t size)
      : owner_(std::move(owner)), data_(data), size_(size) {}

  // Shares a vector of any trivially copyable type (bytes, floats...) without copying.
  template <typename T>
  static Payload share(std::shared_ptr<const std::vector<T>> v) {
    static_assert(std::is_trivially_copyable_v<T>);
    const auto* p = reinterpret_cast<const std::uint8_t*>(v->data());
    const std::size_t n = v->size() * sizeof(T);
    return Payload(std::move(v), p, n);
  }
  // Takes ownership of a byte vector (no copy).
  static Payload take(std::vector<std::uint8_t>&& bytes);
  // Copies bytes (for small control messages and tests).
  static Payload copy_of(std::span<const std::uint8_t> bytes);
  // A fresh, uninitialized, writable buffer of `size` bytes; `out` points at it.
  static Payload allocate(std::size_t size, std::uint8_t*& out);

  const std::uint8_t* data() const { return data_; }
  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  std::span<const std::uint8_t> bytes() const { return {data_, size_}; }
  // Copies the payload out as floats; throws ProtocolError when size % 4 != 0.
  std::vector<float> to_floats() const;

  // The largest magnitude among the payload's 4-byte words read as fp32 (their bits with the
  // sign cleared, so an infinity or NaN lies above every finite value; words counted back from
  // the end: the first size % 4 bytes are in none), when the receiving transport took it while
  // the bytes arrived in this process's own buffer; never from the wire. A range check of raw
  // fp32 values on that grid reads it instead of the values.
  std::optional<std::uint32_t> fp32_peak() const {
    return has_peak_ ? std::optional<std::uint32_t>(peak_) : std::nullopt;
  }
  void set_fp32_peak(std::uint32_t bits) {
    peak_ = bits;
    has_peak_ = true;
  }

 private:
  std::shared_ptr<const void> owner_;
  const std::uint8_t* data_ = nullptr;
  std::size_t size_ = 0;
  std::uint32_t peak_ = 0;
  bool has_peak_ = false;
};

// One message: the header fields of the wire format plus the payload bytes.
struct Message {
  MessageKind kind = MessageKind::kGossip;
  std::uint32_t stage = 0;          // multi-stage exchanges (ring all-reduce): the stage
  int sender = -1;                  // set by the transport on receive (ignored on send)
  std::int64_t round = 0;           // the sender's round
  std::uint64_t seq = 0;            // set by the transport: per (link, direction), from 1
  std::uint32_t codec = 0;          // payload codec id (registry of the codec module); 0 = raw fp32
  bool not_triggered = false;       // event-triggered methods: "nothing sent this round"
  std::vector<double> scalars;      // fp64 side values, e.g. the push-sum weight
  LinkKind link = LinkKind::kData;  // plane to send on / plane it arrived on
  Payload payload;
  // In-process runs with simulated time (not on the wire): the sender's clock when sent;
  // the in-process transport turns it into the arrival time through its link model.
  double sim_time_s = 0.0;
};

// Bytes a message takes on the wire (frame prefix + header + payload), as counted in
// LinkStats; the runtime uses it to count method bytes the same way on every transport.
std::uint64_t wire_size(const Message& m);

// What a take() waits for. Fields left at their "any" value match everything.
struct MessageFilter {
  static constexpr int kAnySender = -1;
  static constexpr std::int64_t kAnyRound = INT64_MIN;
  int sender = kAnySender;
  std::int64_t round = kAnyRound;
  std::optional<MessageKind> kind;     // any kind when empty
  std::optional<std::uint32_t> stage;  // any stage when empty
  std::optional<LinkKind> link;
  std::int64_t max_round = INT64_MAX;  // with round == kAnyRound: rounds up to this one
  bool matches(const Message& m) const;
};

// Link state changes, reported to the layer above.
enum class LinkEventType { kUp, kDown, kRefused, kConnectFailed };
const char* to_string(LinkEventType type);
struct LinkEvent {
  LinkEventType type = LinkEventType::kUp;
  int peer = -1;  // -1 when a refused connection did not name a valid node
  LinkKind link = LinkKind::kData;
  std::string detail;  // human-readable reason (refusals, disconnects)
  // kDown: the peer said goodbye and nothing queued for it was lost (a normal stop, not a
  // failure: worth no warning).
  bool clean = false;
};
using EventHandler = std::function<void(const LinkEvent&)>;

// Counters of one link (one peer, one plane). Bytes are wire bytes: frame prefix, header
// and payload; heartbeats count, the handshake does not (in-process: the same sizes, computed).
struct LinkStats {
  int peer = -1;
  LinkKind link = LinkKind::kData;
  bool up = false;
  std::uint64_t bytes_sent = 0;
  std::uint64_t bytes_recv = 0;
  std::uint64_t msgs_sent = 0;  // application messages (not handshake/heartbeat frames)
  std::uint64_t msgs_recv = 0;
  std::uint64_t drops = 0;       // messages not delivered: queue full, link down, loss model
  std::uint64_t reconnects = 0;  // times the link came up again after being up once
  std::uint64_t refused = 0;     // handshakes refused that claimed to be this peer
  std::uint64_t malformed = 0;   // connections closed because of bad input from this peer
  // Connections closed because a network-thread handler threw while serving this peer (e.g.
  // out of memory, or the event handler threw); the link redials like after any other close.
  std::uint64_t handler_errors = 0;
  // Messages refused by the transport before the mailbox (their payload read and dropped,
  // never buffered), by reason: a sequence number not above the last one of the same
  // authenticated connection; a gossip round more than max_rounds_ahead past this node's;
  // a message that would take the peer's buffered bytes over mailbox_bytes.
  std::uint64_t rejected_seq = 0;
  std::uint64_t rejected_ahead = 0;
  std::uint64_t rejected_mailbox = 0;
  std::uint64_t rejected() const { return rejected_seq + rejected_ahead + rejected_mailbox; }
  // TCP: the link's messages go through a shared-memory ring now (co-located peers).
  bool shm = false;
};

struct TransportStats {
  std::vector<LinkStats> links;  // sorted by (peer, link)
  // Totals. data_* over data links, ctrl_* over control links.
  std::uint64_t data_bytes_sent = 0, data_bytes_recv = 0;
  std::uint64_t data_msgs_sent = 0, data_msgs_recv = 0;
  std::uint64_t ctrl_bytes_sent = 0, ctrl_bytes_recv = 0;
  std::uint64_t drops = 0;
  std::uint64_t refused_handshakes = 0;  // all refused handshakes, incl. unknown senders
  std::uint64_t malformed = 0;           // all connections closed for bad input
  std::uint64_t handler_errors = 0;      // all connections closed because a handler threw
  std::uint64_t rejected = 0;            // all messages refused before the mailbox
  // Connections closed at accept because max_pending_handshakes were already open, and
  // handshakes that did not finish within handshake_timeout (both also in refused_handshakes).
  std::uint64_t busy_refused = 0;
  std::uint64_t handshake_timeouts = 0;
  const LinkStats* find(int peer, LinkKind link) const;
  // Appends one link's counters and adds them to the totals.
  void add(const LinkStats& link);
};

// Send queues are bounded per link (messages and bytes). Policy when full: the new message
// is dropped, counted in `drops`, and send() returns false; queued messages are kept (they
// are older and the receiver is already waiting for them). When a link goes down, the
// messages queued for it are dropped and counted; sends while a link is down queue (bounded)
// and go out once it is up again.
struct TransportOptions {
  std::string run_id = "rumor";  // nodes with another run id are refused
  // Non-empty: HMAC-SHA256 challenge-response both ways, and a connection claiming a
  // connected peer replaces the old one (a restarted peer). Empty: such a connection is
  // refused while the peer's link is up.
  std::string secret;
  // TCP: every link over TLS 1.3, both sides authenticated: by certificates when tls_cert is
  // set (with tls_key and tls_ca; the subject CN node-<id> must be the node the peer claims
  // to be), else by a pre-shared key derived from `secret` (which must then be set). The
  // three files are PEM.
  bool tls = false;
  std::string tls_cert, tls_key, tls_ca;
  std::chrono::milliseconds connect_timeout{30000};    // wait_connected() deadline
  std::chrono::milliseconds handshake_timeout{5000};   // per connection attempt
  std::chrono::milliseconds heartbeat_interval{1000};  // idle links send a heartbeat
  std::chrono::milliseconds heartbeat_timeout{10000};  // silent link is closed; 0: never
  std::chrono::milliseconds retry_min{20};             // redial backoff, doubled up to max
  std::chrono::milliseconds retry_max{1000};
  std::size_t max_frame_bytes = std::size_t{1024} << 20;  // larger frames are malformed
  std::size_t send_queue_messages = 4096;                 // per link
  std::size_t send_queue_bytes = std::size_t{1} << 30;    // per link
  bool control_ring = true;                               // open the control ring links
  // What a peer may make this node buffer (bytes from a peer are hostile): gossip messages
  // for rounds more than max_rounds_ahead past the round set_round() last named, and
  // messages that would take one peer's bytes in the mailbox over mailbox_bytes, are refused
  // before their payload is stored and counted (LinkStats::rejected_*). 0: no limit.
  std::int64_t max_rounds_ahead = 0;
  std::size_t mailbox_bytes = 0;
  // Accepted connections still in their handshake at once; one more is closed at accept.
  std::size_t max_pending_handshakes = 64;
  // TCP data links between two peers on one host, both holding `secret`, move their
  // messages to a shared-memory ring of shm_ring_bytes per direction (a power of two; both
  // ends must agree) once the connection proves they share memory; TCP stays the control
  // path and the fallback. Off with TLS (its bytes would skip the encryption asked for).
  // 1 MB: a ring small enough to stay in cache between its writer and its reader (eight peers
  // on two cores ran the quickstart 4-5% faster than with 4 MB); a larger message goes
  // through in pieces, each copied out while the next is written.
  bool shm = true;
  std::size_t shm_ring_bytes = std::size_t{1} << 20;
  // Listening endpoint; empty host / port -1: the topology's node(self) entry. Port 0 picks
  // a free port (see TcpTransport::bind()).
  std::string listen_host;
  int listen_port = -1;
  // What a `rumor node --join` dialer is handed once it has proved it holds `secret` (the
  // run's settings, JSON; net/join.hpp). Empty, or no secret: join requests are refused.
  std::string join_settings;
};

// Received messages wait here until the trainer takes them. Thread-safe.
class Mailbox {
 public:
  void push(Message m);
  // Payload bytes of `sender`'s messages waiting here.
  std::size_t bytes_from(int sender) const;
  // First message (in arrival order) matching `filter`, waiting up to `timeout`.
  std::optional<Message> take(const MessageFilter& filter, std::chrono::milliseconds timeout);
  std::vector<Message> drain();
  std::size_t size() const;
  // Wakes waiters; later takes return at once when nothing matches.
  void close();
  bool closed() const;

 private:
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<Message> queue_;
  std::map<int, std::size_t> bytes_;  // payload bytes waiting, per sender
  bool closed_ = false;
};

class Transport {
 public:
  virtual ~Transport() = default;
  Transport() = default;
  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;

  // Called (on the network thread) for link ups, downs and refusals. Set before start().
  // TCP: an exception it throws closes the connection the event was about (handler_errors).
  void set_event_handler(EventHandler handler) { handler_ = std::move(handler); }

  // Begins listening and connecting to every link of node `self`; returns at once. The
  // topology is copied. Throws Error when the endpoint cannot be bound.
  virtual void start(const Topology& topology, int self) = 0;
  // Blocks until every link is up. Throws ProtocolError naming the first missing peer, its
  // address and the last failure when options.connect_timeout (or `timeout`) passes.
  virtual void wait_connected(std::optional<std::chrono::milliseconds> timeout = {}) = 0;
  // Queues `message` for peer `to` on plane message.link; never blocks on the network. The
  // payload is shared, not copied. Returns false when the message was dropped (queue full,
  // stopped); throws ProtocolError when `to` is not a neighbour on that plane.
  virtual bool send(int to, Message message) = 0;
  // Waits until every queued message has been handed to the network (TCP: written to its
  // socket), at most `deadline`; false when something is still queued then (links that are
  // down do not count). The in-process transport delivers at send(): nothing to wait for.
  virtual bool flush(std::chrono::milliseconds deadline) { return true; }
  // Stops: closes every socket, joins the network thread. Idempotent.
  virtual void stop() = 0;
  virtual TransportStats stats() const = 0;
  virtual bool link_up(int peer, LinkKind link) const = 0;
  // Closes the link's current connection, saying goodbye first (a peer left out of the
  // mixing: what it has in flight is not read); `why` is logged. The dialing side dials
  // again as after any close. In-process links have no connection: nothing happens.
  virtual void close_link(int peer, LinkKind link, const std::string& why) {}

  int self() const { return self_; }
  // Neighbours on one plane, sorted.
  const std::vector<int>& peers(LinkKind link) const {
    return link == LinkKind::kData ? data_peers_ : control_peers_;
  }

  // Mailbox access. take(): first matching message, waiting up to `timeout`; nullopt on
  // timeout or once stopped with nothing matching.
  std::optional<Message> take(const MessageFilter& filter, std::chrono::milliseconds timeout) {
    return receive(filter, timeout);
  }
  // Data-plane messages only: control tokens reuse round numbers as their own ids.
  std::optional<Message> take(int sender, std::int64_t round, std::chrono::milliseconds timeout) {
    MessageFilter f;
    f.sender = sender;
    f.round = round;
    f.link = LinkKind::kData;
    return receive(f, timeout);
  }
  std::vector<Message> drain() { return mailbox_.drain(); }
  std::size_t pending() const { return mailbox_.size(); }
  // Payload bytes of `sender`'s messages waiting in the mailbox.
  std::size_t mailbox_bytes_from(int sender) const { return mailbox_.bytes_from(sender); }
  // Link events since the last call (also passed to the event handler when one is set).
  std::vector<LinkEvent> events();
  // The round this node works on: gossip messages for rounds more than
  // TransportOptions::max_rounds_ahead past it are refused. Unset: no round limit.
  void set_round(std::int64_t round) { round_.store(round); }
  std::int64_t current_round() const { return round_.load(); }
  static constexpr std::int64_t kNoRound = INT64_MIN;

 protected:
  void emit(LinkEvent event);  // called by implementations on their network thread
  // What take() does: the mailbox's take. A transport whose calling thread can fetch the
  // message itself (a shared-memory ring) overrides it.
  virtual std::optional<Message> receive(const MessageFilter& filter,
                                         std::chrono::milliseconds timeout) {
    return mailbox_.take(filter, timeout);
  }

  Mailbox mailbox_;
  EventHandler handler_;
  int self_ = -1;
  std::vector<int> data_peers_;
  std::vector<int> control_peers_;

 private:
  std::mutex events_mutex_;
  std::vector<LinkEvent> events_;
  std::atomic<std::int64_t> round_{kNoRound};
};

}  // namespace rumor::net
