#pragma once
// A POSIX shared-memory segment holding two byte rings, one per direction, between two
// processes on one host, and the futex doorbells that wake a waiting side.
//
// Layout: a control page (magic, ring size, one nonce slot per side, per ring its head and
// tail counters and its writer's "ring me for space" flag, per side its doorbell and the
// direct bell with its "waiting" word), then ring 0 (creator -> opener) and ring 1 (opener
// -> creator), each ring_bytes long (a power of two). Head and tail count bytes since the
// start and only grow. The peer can write anything anywhere in the segment at any time, so
// every counter read from it is checked (a tail more than a ring ahead of the reader, a head
// outside the writer's window) and ring bytes are copied out once and parsed from the copy.
//
// Lifetime: the creator names the segment /rumor-<pid>-<random hex> (O_EXCL, mode 0600);
// the name is unlinked as soon as both ends have mapped it, so a peer that dies leaves
// nothing behind; segments of this user whose creating process is gone (killed between
// create and unlink) are removed by the next create() on the host. The peer is a process of
// the same user (checked), which could ptrace this one anyway; what is guarded against is
// bad bytes and counters, not a creator that shrinks the segment under the mapping.
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace rumor::net {

inline constexpr std::size_t kShmNonceBytes = 32;
inline constexpr std::size_t kShmMinRing = 4096;
inline constexpr std::size_t kShmMaxRing = std::size_t{256} << 20;

// A futex word in shared memory: the other side rings it after producing or consuming
// bytes; the owner waits on it.
class Doorbell {
 public:
  Doorbell() = default;
  explicit Doorbell(std::atomic<std::uint32_t>* word) : word_(word) {}
  std::uint32_t value() const { return word_->load(std::memory_order_acquire); }
  // Bumps the word and wakes whoever waits on it.
  void ring() const;
  // Waits while the word still holds `seen`, at most `timeout` (spurious returns happen).
  void wait(std::uint32_t seen, std::chrono::milliseconds timeout) const;

 private:
  std::atomic<std::uint32_t>* word_ = nullptr;
};

// The writing end of one ring (one writer thread at a time).
class RingWriter {
 public:
  RingWriter() = default;
  // `want`: the ring's "ring me for space" flag; null: the reader rings after every read.
  RingWriter(std::uint8_t* data, std::size_t capacity, std::atomic<std::uint64_t>* head,
             std::atomic<std::uint64_t>* tail, std::atomic<std::uint32_t>* want = nullptr)
      : data_(data), capacity_(capacity), head_(head), tail_(tail), want_(want) {}
  // Bytes that fit now. Throws ProtocolError when the reader's head is impossible.
  std::size_t space() const;
  // Copies as much of `bytes` as fits and publishes it; returns how many bytes went in.
  std::size_t write(std::span<const std::uint8_t> bytes);
  // The ring is full: asks the reader to ring this side once it frees space. False when
  // space came meanwhile (write again), true when the writer must wait for the bell.
  bool ask_for_space();

 private:
  std::uint8_t* data_ = nullptr;
  std::size_t capacity_ = 0;
  std::atomic<std::uint64_t>* head_ = nullptr;  // the reader's (hostile)
  std::atomic<std::uint64_t>* tail_ = nullptr;  // published copy of pos_
  std::atomic<std::uint32_t>* want_ = nullptr;  // set here, cleared by the reader
  std::uint64_t pos_ = 0;                       // ours: never read back from the segment
};

// The reading end of one ring (one reader thread at a time).
class RingReader {
 public:
  RingReader() = default;
  RingReader(std::uint8_t* data, std::size_t capacity, std::atomic<std::uint64_t>* head,
             std::atomic<std::uint64_t>* tail, std::atomic<std::uint32_t>* want = nullptr)
      : data_(data), capacity_(capacity), head_(head), tail_(tail), want_(want) {}
  // Bytes waiting. Throws ProtocolError when the writer's tail is impossible.
  std::size_t available() const;
  // Copies up to `n` waiting bytes to `out` and frees their space; returns how many.
  std::size_t read(std::uint8_t* out, std::size_t n);
  // Frees up to `n` waiting bytes unread; returns how many.
  std::size_t skip(std::size_t n);
  // After freeing space: whether the writer asked to be rung for it (the ask is taken).
  // Without the flag, always: a writer that waits is never left waiting. Otherwise only
  // then, so a writer that did not fill the ring is not woken for nothing.
  bool space_wanted();

 private:
  std::uint8_t* data_ = nullptr;
  std::size_t capacity_ = 0;
  std::atomic<std::uint64_t>* head_ = nullptr;  // published copy of pos_
  std::atomic<std::uint64_t>* tail_ = nullptr;  // the writer's (hostile)
  std::atomic<std::uint32_t>* want_ = nullptr;  // the writer's ask (hostile: any value)
  std::uint64_t pos_ = 0;
};

// One mapping of a segment (RAII: unmapped, and unlinked if still named, on destruction).
class ShmSegment {
 public:
  // A fresh segment with this side's nonce in slot 0. Throws Error saying why it failed.
  static ShmSegment create(std::size_t ring_bytes);
  // Maps the segment `name` another process created, after checking what the name says
  // and what it is: a name of the form create() makes, a regular file of this user that
  // nobody else may open, of exactly the size `ring_bytes` gives, with the right magic.
  // Writes this side's nonce into slot 1. Throws ProtocolError saying which check failed.
  static ShmSegment open(const std::string& name, std::size_t ring_bytes);
  // The same check on a name alone (true: of the form create() makes).
  static bool valid_name(const std::string& name);

  ShmSegment(ShmSegment&& o) noexcept;
  ShmSegment& operator=(ShmSegment&& o) noexcept;
  ShmSegment(const ShmSegment&) = delete;
  ShmSegment& operator=(const ShmSegment&) = delete;
  ~ShmSegment();

  // Removes the name (call once both ends have mapped it). Idempotent.
  void unlink();
  bool linked() const { return linked_; }
  const std::string& name() const { return name_; }
  std::size_t ring_bytes() const { return ring_bytes_; }
  // The nonce this side wrote, and the other side's slot as it reads now.
  const std::string& own_nonce() const { return nonce_; }
  std::string peer_nonce() const;

  RingWriter writer() const;  // this side's outgoing ring
  RingReader reader() const;  // the other side's
  Doorbell own_bell() const;  // waited on by this side
  Doorbell peer_bell() const;
  // The bell a receiving thread waits on directly while it sets its `waiting` word (the
  // writer rings it instead of the other bell then), and the peer's pair.
  Doorbell own_direct() const;
  Doorbell peer_direct() const;
  std::atomic<std::uint32_t>* own_waiting() const;
  std::atomic<std::uint32_t>* peer_waiting() const;

 private:
  ShmSegment() = default;
  struct Control;
  Control* control() const;
  std::uint8_t* ring(int index) const;
  void release() noexcept;

  std::string name_;
  std::string nonce_;
  std::size_t ring_bytes_ = 0;
  void* base_ = nullptr;
  std::size_t mapped_ = 0;
  int side_ = 0;  // 0: creator, 1: opener
  bool linked_ = false;
};

}  // namespace rumor::net
