#include "shm_link.hpp"

#include <algorithm>
#include <limits>
#include <span>

#include "rumor/common/error.hpp"

namespace rumor::net {
namespace {

// Bytes copied per ring call: the peer is rung after each piece, so its copy of a large
// frame runs beside this side's instead of after it, and the piece is still in cache.
constexpr std::size_t kPiece = 512 * 1024;
// Bytes moved per direction in one service() before other handlers get the thread.
constexpr std::size_t kBudget = std::size_t{64} << 20;

wire::Header shm_frame(wire::Shm::Step step) {
  wire::Header h;
  h.set_type(wire::FRAME_SHM);
  h.mutable_shm()->set_step(step);
  return h;
}

}  // namespace

bool shm_wanted(const TransportOptions& options, LinkKind kind) {
  return options.shm && kind == LinkKind::kData && !options.secret.empty() && !options.tls;
}

ShmLink::ShmLink(Link& link, ShmHost& host, const TransportOptions& o,
                 std::shared_ptr<BufferPool> pool, Post post, ShmSegment segment, State state)
    : link_(link),
      host_(host),
      max_frame_(o.max_frame_bytes),
      pool_(std::move(pool)),
      post_(std::move(post)),
      segment_(std::move(segment)),
      state_(state),
      writer_(segment_.writer()),
      reader_(segment_.reader()),
      own_bell_(segment_.own_bell()),
      peer_bell_(segment_.peer_bell()),
      own_direct_(segment_.own_direct()),
      peer_direct_(segment_.peer_direct()),
      own_waiting_(segment_.own_waiting()),
      peer_waiting_(segment_.peer_waiting()) {}

std::shared_ptr<ShmLink> ShmLink::offer(Link& link, ShmHost& host, const TransportOptions& o,
                                        std::shared_ptr<BufferPool> pool, Post post,
                                        wire::Header& frame) {
  ShmSegment seg = ShmSegment::create(o.shm_ring_bytes);
  frame = shm_frame(wire::Shm::SHM_OFFER);
  frame.mutable_shm()->set_name(seg.name());
  frame.mutable_shm()->set_ring_bytes(seg.ring_bytes());
  return std::shared_ptr<ShmLink>(new ShmLink(link, host, o, std::move(pool), std::move(post),
                                              std::move(seg), State::kOffered));
}

std::shared_ptr<ShmLink> ShmLink::accept(Link& link, ShmHost& host, const TransportOptions& o,
                                         std::shared_ptr<BufferPool> pool, Post post,
                                         const wire::Shm& offer, wire::Header& frame) {
  if (offer.step() != wire::Shm::SHM_OFFER)
    throw ProtocolError("shared-memory setup: expected an offer");
  // The peer's ring size must be one this node would use: it bounds what the mapping costs.
  if (offer.ring_bytes() != o.shm_ring_bytes)
    throw ProtocolError("the peer's ring of " + std::to_string(offer.ring_bytes()) +
                        " bytes differs from this node's " + std::to_string(o.shm_ring_bytes));
  ShmSegment seg = ShmSegment::open(offer.name(), o.shm_ring_bytes);
  frame = shm_frame(wire::Shm::SHM_ACCEPT);
  frame.mutable_shm()->set_nonce(seg.peer_nonce());
  return std::shared_ptr<ShmLink>(new ShmLink(link, host, o, std::move(pool), std::move(post),
                                              std::move(seg), State::kAccepted));
}

wire::Header ShmLink::decline(const std::string& reason) {
  wire::Header h = shm_frame(wire::Shm::SHM_DECLINE);
  h.mutable_shm()->set_reason(reason);
  return h;
}

ShmLink::~ShmLink() {
  stop_ = true;
  own_direct_.ring();  // a receiving thread that waits here returns
  if (doorbell_.joinable()) {
    own_bell_.ring();  // our own word: wakes our doorbell thread
    doorbell_.join();
  }
}

std::optional<wire::Header> ShmLink::on_frame(const wire::Shm& frame) {
  const bool dialer_turn = state_ == State::kOffered && frame.step() == wire::Shm::SHM_ACCEPT;
  const bool acceptor_turn = state_ == State::kAccepted && frame.step() == wire::Shm::SHM_CONFIRM;
  if (!dialer_turn && !acceptor_turn)
    throw ProtocolError("shared-memory setup: step " + std::to_string(frame.step()) +
                        " out of turn");
  // Both ends have mapped it by now (the acceptor before its ACCEPT): the name can go.
  segment_.unlink();
  if (!mac_equal(frame.nonce(), segment_.own_nonce()))
    throw ProtocolError(
        "shared-memory setup: the peer read back another nonce than this node wrote (it did "
        "not map the same segment)");
  std::optional<wire::Header> reply;
  if (dialer_turn) {
    reply = shm_frame(wire::Shm::SHM_CONFIRM);
    reply->mutable_shm()->set_nonce(segment_.peer_nonce());
  }
  activate();
  return reply;
}

void ShmLink::activate() {
  state_ = State::kActive;
  {
    std::lock_guard lock(link_.mu);
    link_.stats.shm = true;
    link_.shm = shared_from_this();  // senders write into the ring themselves
  }
  // The bell's value before the thread starts and before the session's first service():
  // bytes the peer wrote earlier are moved by that service, and a ring after this point,
  // even one before the thread first waits, makes that wait return at once.
  const std::uint32_t seen = own_bell_.value();
  doorbell_ = std::thread([this, seen] { doorbell_loop(seen); });
}

// Every ring of this side's bell (the peer wrote, or freed space) is seen: `seen` is taken
// before the bytes are moved, so a ring during the move makes the next wait return at once.
// A wait that times out moves too: a ring this side missed costs a second, not the link.
void ShmLink::doorbell_loop(std::uint32_t seen) {
  while (!stop_) {
    own_bell_.wait(seen, std::chrono::milliseconds(1000));
    if (stop_) return;
    seen = own_bell_.value();
    while (move(kBudget)) {  // the peer's messages go to the mailbox from here
    }
  }
}

void ShmLink::close() {
  std::scoped_lock io(rx_mu_, tx_mu_);  // no move in progress, none after
  if (closed_) return;
  closed_ = true;
  stop_ = true;
  if (tx_ && tx_->app) {
    std::lock_guard lock(link_.mu);
    link_.stats.drops += 1;
    if (link_.writing > 0) link_.writing -= 1;  // the session may have cleared it
  }
  tx_.reset();
  own_direct_.ring();  // a receiving thread that waits here returns
  std::lock_guard lock(link_.mu);
  link_.stats.shm = false;
  if (link_.shm.get() == this) link_.shm.reset();
}

bool ShmLink::receive_until(std::chrono::steady_clock::time_point until,
                            const std::function<bool()>& done) {
  if (!active()) return false;
  // Published before the ring is read (a full fence, as the writer's between its tail and
  // this word): a writer either sees the word and rings the direct bell, or wrote before
  // the read below, which then finds its bytes.
  own_waiting_->store(1, std::memory_order_seq_cst);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  struct Clear {
    std::atomic<std::uint32_t>* w;
    ~Clear() { w->store(0, std::memory_order_release); }
  } clear{own_waiting_};
  // Bounded waits: a peer that never rings (or clears the word) costs this slice, and a
  // link closed meanwhile is seen within it even if its ring was missed.
  constexpr auto kSlice = std::chrono::milliseconds(200);
  while (!stopped()) {
    const std::uint32_t seen = own_direct_.value();
    std::size_t read = 0;
    read_locked(read);
    if (done()) return true;
    const auto now = std::chrono::steady_clock::now();
    if (now >= until) return true;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - now);
    own_direct_.wait(seen, std::clamp(left, std::chrono::milliseconds(1), kSlice));
  }
  return false;
}

bool ShmLink::read_locked(std::size_t& total) {
  std::lock_guard lock(rx_mu_);
  if (stopped()) return false;
  try {
    return read_some(total);
  } catch (const ProtocolError& e) {
    halted_ = true;
    host_.ring_failed(e.what());
    return false;
  }
}

bool ShmLink::write_locked(std::size_t& total) {
  std::lock_guard lock(tx_mu_);
  if (stopped()) return false;
  try {
    return write_some(total);
  } catch (const ProtocolError& e) {
    halted_ = true;
    std::lock_guard rx(rx_mu_);  // the session hears from one thread at a time
    if (!closed_) host_.ring_failed(e.what());
    return false;
  }
}

bool ShmLink::move(std::size_t budget) {
  if (!active()) return false;
  std::size_t read = 0, written = 0;
  bool progress = true;
  while (progress && !stopped() && read < budget && written < budget) {
    progress = read_locked(read);
    progress = write_locked(written) || progress;
  }
  return progress && !stopped();
}

void ShmLink::service() {
  posted_ = false;
  // Until neither side can move, at most kBudget bytes each way: then other handlers
  // (heartbeats, other links) get the thread and the rest follows in a posted turn.
  if (move(kBudget) && !posted_.exchange(true)) post_();
}

void ShmLink::send_now() {
  std::size_t written = 0;
  if (active()) write_locked(written);
}

void ShmLink::drain() {
  std::lock_guard lock(rx_mu_);
  if (!active() || stopped()) return;
  try {
    std::size_t read = 0;
    read_some(read);
  } catch (const ProtocolError&) {  // closing anyway: what was whole is delivered
  }
}

// Copies the rest of a header piece (prefix or header) out of the ring.
std::size_t ShmLink::fill(std::uint8_t* buf, std::size_t want) {
  const std::size_t n = reader_.read(buf + rx_have_, want - rx_have_);
  rx_have_ += n;
  return n;
}

bool ShmLink::read_some(std::size_t& total) {
  std::size_t moved = 0;
  while (total + moved < kBudget && !stopped() && read_step(moved)) {
  }
  if (moved > 0 && reader_.space_wanted()) peer_bell_.ring();  // space freed
  total += moved;
  return moved > 0;
}

// One step of the reader; false when it has to wait for bytes.
bool ShmLink::read_step(std::size_t& moved) {
  switch (rx_) {
    case Rx::kPrefix:
      moved += fill(prefix_buf_.data(), kPrefixBytes);
      if (rx_have_ < kPrefixBytes) return false;
      on_prefix();
      return true;
    case Rx::kHeader:
      moved += fill(header_buf_.data(), header_buf_.size());
      if (rx_have_ < header_buf_.size()) return false;
      on_header();
      return true;
    case Rx::kPayload: {
      const std::size_t want = std::min(kPiece, payload_.size() - rx_have_);
      const std::size_t n = reader_.read(rx_ptr_ + rx_have_, want);
      moved += n;
      rx_have_ += n;
      peak_.advance(rx_ptr_, rx_have_);
      if (n == kPiece && reader_.space_wanted()) peer_bell_.ring();
      if (rx_have_ < payload_.size()) return n > 0;
      rx_ = Rx::kPrefix;
      rx_have_ = 0;
      payload_.set_fp32_peak(peak_.peak());
      host_.deliver_ring_message(header_, std::exchange(payload_, Payload()),
                                 kPrefixBytes + prefix_.frame_length - 4);
      return true;
    }
    case Rx::kSkip: {
      const std::size_t n = reader_.skip(static_cast<std::size_t>(
          std::min<std::uint64_t>(skip_left_, std::numeric_limits<std::size_t>::max())));
      moved += n;
      skip_left_ -= n;
      if (skip_left_ > 0) return n > 0;
      rx_ = Rx::kPrefix;
      rx_have_ = 0;
      return true;
    }
  }
  return false;
}

void ShmLink::on_prefix() {
  const std::string err = parse_prefix(prefix_buf_.data(), max_frame_, prefix_);
  if (!err.empty()) throw ProtocolError(err + " (shared-memory ring)");
  header_buf_.resize(prefix_.header_length);
  rx_ = Rx::kHeader;
  rx_have_ = 0;
}

void ShmLink::on_header() {
  header_.Clear();
  const std::string err = parse_header(header_buf_.data(), prefix_, header_);
  if (!err.empty()) throw ProtocolError(err + " (shared-memory ring)");
  const std::uint64_t n = prefix_.payload_length();
  rx_have_ = 0;
  switch (host_.admit_ring_message(prefix_, header_)) {
    case ShmAdmit::kClosed:
      halted_ = true;  // the session closes the connection
      return;
    case ShmAdmit::kSkip:
      rx_ = Rx::kSkip;
      skip_left_ = n;
      return;
    case ShmAdmit::kTake:
      break;
  }
  if (n == 0) {
    rx_ = Rx::kPrefix;
    host_.deliver_ring_message(header_, Payload(), kPrefixBytes + prefix_.frame_length - 4);
    return;
  }
  payload_ = pool_->allocate(static_cast<std::size_t>(n), rx_ptr_);
  peak_.reset(payload_.size());
  rx_ = Rx::kPayload;
}

bool ShmLink::take_next() {
  std::lock_guard lock(link_.mu);
  if (link_.queue.empty()) return false;
  tx_ = std::move(link_.queue.front());
  link_.queue.pop_front();
  link_.queued_bytes -= tx_->bytes();
  link_.writing += tx_->app ? 1 : 0;
  tx_off_ = 0;
  return true;
}

bool ShmLink::write_some(std::size_t& total) {
  std::size_t moved = 0;
  while (total + moved < kBudget && !stopped()) {
    if (!tx_ && !take_next()) break;
    const std::size_t head = tx_->head.size();
    std::span<const std::uint8_t> rest =
        tx_off_ < head ? std::span<const std::uint8_t>(tx_->head).subspan(tx_off_)
                       : tx_->payload.bytes().subspan(tx_off_ - head);
    const std::size_t n = writer_.write(rest.first(std::min(rest.size(), kPiece)));
    // Ring full: the reader rings this side when it frees space (asked for here).
    if (n == 0 && writer_.ask_for_space()) break;
    if (n == 0) continue;
    tx_off_ += n;
    moved += n;
    if (n == kPiece) ring_for_data();
    if (tx_off_ == tx_->bytes()) finish_message();
  }
  if (moved > 0) ring_for_data();
  total += moved;
  return moved > 0;
}

void ShmLink::ring_for_data() {
  std::atomic_thread_fence(std::memory_order_seq_cst);  // the tail is out before the word is read
  if (peer_waiting_->load(std::memory_order_relaxed) != 0)
    peer_direct_.ring();
  else
    peer_bell_.ring();
}

void ShmLink::finish_message() {
  std::lock_guard lock(link_.mu);
  link_.stats.bytes_sent += tx_->bytes();
  if (tx_->app) {
    link_.stats.msgs_sent += 1;
    link_.writing -= 1;
  }
  tx_.reset();
}

}  // namespace rumor::net
