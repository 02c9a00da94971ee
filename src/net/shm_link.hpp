#pragma once
// A data link's messages through a shared-memory ring beside its TCP connection (internal).
//
// Set up over the established, authenticated TCP connection of two co-located peers (the
// Shm frames of wire.proto): the dialer OFFERs a segment it made, the acceptor maps it and
// ACCEPTs with the dialer's nonce read back from it, the dialer CONFIRMs with the acceptor's:
// each side has then seen the other read what it wrote into the same memory. From the OFFER
// (dialer) or the ACCEPT (acceptor) until the path is active, the link's messages wait in its
// queue so they still arrive in order; on a DECLINE or a failed setup they go on over TCP.
//
// Once active, the session's writer hands the link's queue to service() instead of the
// socket: frames go into the ring exactly as they would go on the wire (one copy from the
// sender's buffer), and come out through the same prefix and header checks into a pooled
// buffer (one copy), where the session's own admission rules apply. Heartbeats, bye and the
// handshake stay on TCP; when the TCP connection closes, this goes with it.
//
// Threads. A ring message takes fewer thread hops than a socket's: the sending thread
// writes it into the ring itself (send_now(), from TcpTransport::send), and a doorbell
// thread that waits on this side's futex reads what the peer wrote straight into the
// mailbox (and goes on writing what waited for ring space); a thread that waits for this
// peer's message reads the ring itself instead (receive_until()). The network thread still
// services the link when its session is kicked. Two mutexes, one per direction, serialize
// them; the session's side of a ring message (ShmHost) is safe on any of these threads,
// and closing the connection stays on the network thread (ShmHost posts it there).
#include <array>
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "frame.hpp"
#include "peak_scan.hpp"
#include "rumor/net/shm_ring.hpp"
#include "tcp_link.hpp"

namespace rumor::net {

// Whether this node asks for shared memory on a link of `kind` (before knowing the peer):
// network.shm on, a data link, both ends authenticated by the run secret, and no TLS (the
// peer's bytes would skip the encryption asked for).
bool shm_wanted(const TransportOptions& options, LinkKind kind);

// What the ring's reader does with a message whose header it has read.
enum class ShmAdmit { kTake, kSkip, kClosed };

// The session side of a shared-memory link (implemented by the TCP session). Called on
// whichever thread moves the ring's bytes (see ShmLink), one call at a time.
class ShmHost {
 public:
  virtual ~ShmHost() = default;
  // Checks a message header read from the ring, as for one read from the socket (refusals
  // counted; a bad header closes the connection: kClosed, and the ring reads no more).
  virtual ShmAdmit admit_ring_message(const Prefix& prefix, const wire::Header& header) = 0;
  virtual void deliver_ring_message(const wire::Header& header, Payload payload,
                                    std::uint64_t frame_bytes) = 0;
  // Bad bytes or counters in the ring: closes the connection (counted as malformed).
  virtual void ring_failed(const std::string& reason) = 0;
};

class ShmLink : public std::enable_shared_from_this<ShmLink> {
 public:
  using Post = std::function<void()>;  // posts service() to the network thread
  enum class State { kOffered, kAccepted, kActive };

  // Dialer: a fresh segment and the OFFER to write. Throws Error when no segment is made.
  static std::shared_ptr<ShmLink> offer(Link& link, ShmHost& host, const TransportOptions& o,
                                        std::shared_ptr<BufferPool> pool, Post post,
                                        wire::Header& frame);
  // Acceptor: the peer's OFFER. Maps the segment and fills `frame` with the ACCEPT; throws
  // ProtocolError saying why the offer cannot be taken (the caller DECLINEs with it).
  static std::shared_ptr<ShmLink> accept(Link& link, ShmHost& host, const TransportOptions& o,
                                         std::shared_ptr<BufferPool> pool, Post post,
                                         const wire::Shm& offer, wire::Header& frame);
  // The DECLINE frame of an offer this node does not take.
  static wire::Header decline(const std::string& reason);

  ~ShmLink();
  ShmLink(const ShmLink&) = delete;
  ShmLink& operator=(const ShmLink&) = delete;

  State state() const { return state_; }
  bool active() const { return state_ == State::kActive; }
  // The peer's ACCEPT (dialer) or CONFIRM (acceptor). Returns the reply to write (the
  // dialer's CONFIRM); the path is then active. Throws ProtocolError when the frame is out
  // of turn or the nonce it reads back is not the one this side wrote (bad input).
  std::optional<wire::Header> on_frame(const wire::Shm& frame);
  // Network thread: moves bytes both ways until neither can move (bounded per call; the
  // rest follows in a posted call).
  void service();
  // A sending thread, after queueing on the link: writes the queue into the ring now (what
  // does not fit follows when the peer frees space).
  void send_now();
  // A receiving thread that waits for this peer's messages (the trainer's, in a take() that
  // names this peer): moves what the peer writes to the mailbox itself, waking on the direct
  // bell, until `done()` says the message it wants is there or `until` passes. While it
  // waits the peer rings that bell instead of the doorbell thread's: one wake-up instead
  // of two, and the bytes land in the cache of the thread that uses them. One such thread
  // at a time. False when the link is not active or stops meanwhile.
  bool receive_until(std::chrono::steady_clock::time_point until,
                     const std::function<bool()>& done);
  // The connection is closing: delivers the whole messages still in the ring (the peer wrote
  // them before its bye); bad bytes end it quietly.
  void drain();
  // The connection closed: nothing more is read or written (the session is not called
  // again); messages half written are counted as dropped. The doorbell thread stops when
  // this is destroyed.
  void close();

 private:
  ShmLink(Link& link, ShmHost& host, const TransportOptions& o, std::shared_ptr<BufferPool> pool,
          Post post, ShmSegment segment, State state);
  void activate();
  void doorbell_loop(std::uint32_t seen);
  // Moves bytes both ways until neither can move or `budget` bytes moved one way; true
  // when more may be waiting.
  bool move(std::size_t budget);
  // Under rx_mu_ / tx_mu_: one direction's step; false once stopped. Bad bytes halt the
  // ring and tell the session.
  bool read_locked(std::size_t& total);
  bool write_locked(std::size_t& total);
  // Read, write or close no more.
  bool stopped() const { return closed_ || halted_; }
  // Both add the bytes they moved to `total`; true when they moved any.
  bool read_some(std::size_t& total);
  bool read_step(std::size_t& moved);
  std::size_t fill(std::uint8_t* buf, std::size_t want);
  void on_prefix();
  void on_header();
  bool write_some(std::size_t& total);
  // After writing: the peer's receiving thread if it waits directly, else its doorbell.
  void ring_for_data();
  bool take_next();
  void finish_message();

  Link& link_;
  ShmHost& host_;
  const std::size_t max_frame_;
  std::shared_ptr<BufferPool> pool_;
  Post post_;
  ShmSegment segment_;
  State state_;
  RingWriter writer_;
  RingReader reader_;
  Doorbell own_bell_, peer_bell_;
  Doorbell own_direct_, peer_direct_;
  std::atomic<std::uint32_t>* own_waiting_;   // written here
  std::atomic<std::uint32_t>* peer_waiting_;  // the peer's (hostile: any value, any time)
  std::thread doorbell_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> posted_{false};
  // Whichever thread moves bytes holds rx_mu_ for the reader's state below, tx_mu_ for the
  // writer's; close() holds both.
  std::mutex rx_mu_, tx_mu_;
  std::atomic<bool> closed_{false};
  std::atomic<bool> halted_{false};  // bad bytes or a refused sender: the session closes

  // Reader: the frame being read, from private copies only.
  enum class Rx { kPrefix, kHeader, kPayload, kSkip };
  Rx rx_ = Rx::kPrefix;
  std::array<std::uint8_t, kPrefixBytes> prefix_buf_{};
  std::vector<std::uint8_t> header_buf_;
  std::size_t rx_have_ = 0;  // bytes of the current piece (prefix, header, payload) so far
  Prefix prefix_;
  wire::Header header_;
  Payload payload_;
  std::uint8_t* rx_ptr_ = nullptr;
  PeakScan peak_;  // of the payload so far
  std::uint64_t skip_left_ = 0;

  // Writer: the frame being written (taken from the link queue).
  std::optional<Outgoing> tx_;
  std::size_t tx_off_ = 0;
};

}  // namespace rumor::net
