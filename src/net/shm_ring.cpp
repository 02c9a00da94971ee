#include "rumor/net/shm_ring.hpp"

#include <fcntl.h>
#include <linux/futex.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <mutex>
#include <new>

#include "frame.hpp"
#include "rumor/common/error.hpp"
#include "rumor/common/log.hpp"
#include "rumor/net/secret.hpp"

namespace rumor::net {
namespace {

constexpr std::uint64_t kShmMagic = 0x726d7231'73686d32;  // "rmr1shm2"
constexpr std::size_t kControlBytes = 4096;
constexpr const char* kPrefix = "/rumor-";

struct alignas(64) Counter {
  std::atomic<std::uint64_t> v{0};
};
struct alignas(64) Bell {
  std::atomic<std::uint32_t> v{0};
};
static_assert(std::atomic<std::uint64_t>::is_always_lock_free);
static_assert(std::atomic<std::uint32_t>::is_always_lock_free);

std::string errno_text() {
  return std::strerror(errno);
}

bool power_of_two(std::size_t n) {
  return n != 0 && (n & (n - 1)) == 0;
}

void check_ring_bytes(std::size_t ring_bytes) {
  if (!power_of_two(ring_bytes) || ring_bytes < kShmMinRing || ring_bytes > kShmMaxRing)
    throw ProtocolError("shared-memory ring of " + std::to_string(ring_bytes) +
                        " bytes: must be a power of two in " + std::to_string(kShmMinRing) + ".." +
                        std::to_string(kShmMaxRing));
}

// Copies between a linear buffer and a ring position, wrapping at the end.
void copy_in(std::uint8_t* ring, std::size_t cap, std::uint64_t pos, const std::uint8_t* src,
             std::size_t n) {
  const std::size_t at = static_cast<std::size_t>(pos & (cap - 1));
  const std::size_t first = std::min(n, cap - at);
  std::memcpy(ring + at, src, first);
  if (n > first) std::memcpy(ring, src + first, n - first);
}
void copy_out(const std::uint8_t* ring, std::size_t cap, std::uint64_t pos, std::uint8_t* dst,
              std::size_t n) {
  const std::size_t at = static_cast<std::size_t>(pos & (cap - 1));
  const std::size_t first = std::min(n, cap - at);
  std::memcpy(dst, ring + at, first);
  if (n > first) std::memcpy(dst + first, ring, n - first);
}

// Segments of this user left by a creator that is gone (killed before it unlinked).
void sweep_stale_segments() {
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/dev/shm", ec)) {
    const std::string name = "/" + e.path().filename().string();
    if (!ShmSegment::valid_name(name)) continue;
    const std::string pid_text = name.substr(std::strlen(kPrefix), name.find('-', 7) - 7);
    const pid_t pid = static_cast<pid_t>(std::stol(pid_text));
    struct stat st {};
    if (::stat(e.path().c_str(), &st) != 0 || st.st_uid != ::geteuid()) continue;
    if (::kill(pid, 0) == 0 || errno != ESRCH) continue;
    if (::shm_unlink(name.c_str()) == 0)
      log::info("removed shared-memory segment ", name, " left by process ", pid,
                " (it ended before unlinking it)");
  }
}

}  // namespace

struct ShmSegment::Control {
  std::uint64_t magic = 0;
  std::uint64_t ring_bytes = 0;
  std::uint8_t nonce[2][kShmNonceBytes] = {};
  Counter head[2];  // ring i: the reader's position
  Counter tail[2];  // ring i: the writer's position
  Bell bell[2];     // side i waits on bell[i]
  Bell want[2];     // ring i: its writer asks to be rung when space is freed
  Bell direct[2];   // side i's receiving thread waits on direct[i] while waiting[i] is set
  Bell waiting[2];
};

void Doorbell::ring() const {
  word_->fetch_add(1, std::memory_order_release);
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word_), FUTEX_WAKE, 1, nullptr, nullptr, 0);
}

void Doorbell::wait(std::uint32_t seen, std::chrono::milliseconds timeout) const {
  timespec ts{};
  ts.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  ts.tv_nsec = static_cast<long>(timeout.count() % 1000) * 1000000L;
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word_), FUTEX_WAIT, seen, &ts, nullptr, 0);
}

std::size_t RingWriter::space() const {
  const std::uint64_t head = head_->load(std::memory_order_acquire);
  if (head > pos_ || pos_ - head > capacity_)
    throw ProtocolError("shared-memory ring: the reader's position " + std::to_string(head) +
                        " is outside the writer's window " + std::to_string(pos_) + " - " +
                        std::to_string(capacity_) + ".." + std::to_string(pos_));
  return capacity_ - static_cast<std::size_t>(pos_ - head);
}

std::size_t RingWriter::write(std::span<const std::uint8_t> bytes) {
  const std::size_t n = std::min(bytes.size(), space());
  if (n == 0) return 0;
  copy_in(data_, capacity_, pos_, bytes.data(), n);
  pos_ += n;
  tail_->store(pos_, std::memory_order_release);
  return n;
}

bool RingWriter::ask_for_space() {
  if (!want_) return true;
  want_->store(1, std::memory_order_relaxed);
  // Pairs with the fence in space_wanted(): either this side sees the space the reader
  // freed, or the reader sees the ask (no lost wake-up).
  std::atomic_thread_fence(std::memory_order_seq_cst);
  return space() == 0;
}

bool RingReader::space_wanted() {
  if (!want_) return true;
  std::atomic_thread_fence(std::memory_order_seq_cst);
  return want_->exchange(0, std::memory_order_relaxed) != 0;
}

std::size_t RingReader::available() const {
  const std::uint64_t tail = tail_->load(std::memory_order_acquire);
  if (tail < pos_ || tail - pos_ > capacity_)
    throw ProtocolError("shared-memory ring: the writer's position " + std::to_string(tail) +
                        " is outside the reader's window " + std::to_string(pos_) + ".." +
                        std::to_string(pos_) + " + " + std::to_string(capacity_));
  return static_cast<std::size_t>(tail - pos_);
}

std::size_t RingReader::read(std::uint8_t* out, std::size_t n) {
  n = std::min(n, available());
  if (n == 0) return 0;
  copy_out(data_, capacity_, pos_, out, n);
  pos_ += n;
  head_->store(pos_, std::memory_order_release);
  return n;
}

std::size_t RingReader::skip(std::size_t n) {
  n = std::min(n, available());
  pos_ += n;
  head_->store(pos_, std::memory_order_release);
  return n;
}

bool ShmSegment::valid_name(const std::string& name) {
  // /rumor-<pid: 1-10 digits>-<32 hex digits>
  const std::size_t p = std::strlen(kPrefix);
  if (name.size() > 64 || name.compare(0, p, kPrefix) != 0) return false;
  const std::size_t dash = name.find('-', p);
  if (dash == std::string::npos || dash == p || dash - p > 10) return false;
  for (std::size_t i = p; i < dash; ++i)
    if (name[i] < '0' || name[i] > '9') return false;
  if (name.size() - dash - 1 != 32) return false;
  return std::all_of(name.begin() + static_cast<std::ptrdiff_t>(dash) + 1, name.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

ShmSegment ShmSegment::create(std::size_t ring_bytes) {
  check_ring_bytes(ring_bytes);
  static std::once_flag swept;
  std::call_once(swept, [] {
    try {
      sweep_stale_segments();
    } catch (const std::exception& e) {  // a tidy-up only: never a reason to stay on TCP
      log::debug("sweeping stale shared-memory segments: ", e.what());
    }
  });
  ShmSegment s;
  s.ring_bytes_ = ring_bytes;
  s.side_ = 0;
  s.name_ = kPrefix + std::to_string(::getpid()) + "-" + new_secret().substr(0, 32);
  const int fd = ::shm_open(s.name_.c_str(), O_RDWR | O_CREAT | O_EXCL, 0600);
  if (fd < 0) throw Error("shm_open(" + s.name_ + ") failed: " + errno_text());
  s.linked_ = true;
  s.mapped_ = kControlBytes + 2 * ring_bytes;
  if (::ftruncate(fd, static_cast<off_t>(s.mapped_)) != 0) {
    const std::string why = errno_text();
    ::close(fd);
    throw Error("sizing shared-memory segment " + s.name_ + " to " + std::to_string(s.mapped_) +
                " bytes failed: " + why);
  }
  void* p = ::mmap(nullptr, s.mapped_, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  const std::string why = errno_text();
  ::close(fd);
  if (p == MAP_FAILED) throw Error("mapping shared-memory segment " + s.name_ + ": " + why);
  s.base_ = p;
  Control* c = new (p) Control();
  c->ring_bytes = ring_bytes;
  s.nonce_ = random_nonce().substr(0, kShmNonceBytes);
  std::memcpy(c->nonce[0], s.nonce_.data(), kShmNonceBytes);
  std::atomic_thread_fence(std::memory_order_release);
  c->magic = kShmMagic;
  return s;
}

ShmSegment ShmSegment::open(const std::string& name, std::size_t ring_bytes) {
  if (!valid_name(name))
    throw ProtocolError("shared-memory segment name '" + name.substr(0, 80) +
                        "' is not one a rumor peer makes");
  check_ring_bytes(ring_bytes);
  const int fd = ::shm_open(name.c_str(), O_RDWR, 0);
  if (fd < 0) throw ProtocolError("opening shared-memory segment " + name + ": " + errno_text());
  struct stat st {};
  std::string bad;
  const std::size_t size = kControlBytes + 2 * ring_bytes;
  if (::fstat(fd, &st) != 0) {
    bad = "fstat failed: " + errno_text();
  } else if (!S_ISREG(st.st_mode)) {
    bad = "not a regular segment";
  } else if (st.st_uid != ::geteuid()) {
    bad = "owned by uid " + std::to_string(st.st_uid) + ", not this user";
  } else if ((st.st_mode & 077) != 0) {
    bad = "open to other users (mode " + std::to_string(st.st_mode & 0777) + ")";
  } else if (static_cast<std::uint64_t>(st.st_size) != size) {
    bad = std::to_string(st.st_size) + " bytes, expected " + std::to_string(size);
  }
  if (!bad.empty()) {
    ::close(fd);
    throw ProtocolError("shared-memory segment " + name + ": " + bad);
  }
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  const std::string why = errno_text();
  ::close(fd);
  if (p == MAP_FAILED) throw ProtocolError("mapping shared-memory segment " + name + ": " + why);
  ShmSegment s;
  s.base_ = p;
  s.mapped_ = size;
  s.name_ = name;
  s.ring_bytes_ = ring_bytes;
  s.side_ = 1;
  Control* c = s.control();
  if (c->magic != kShmMagic || c->ring_bytes != ring_bytes)
    throw ProtocolError("shared-memory segment " + name + ": bad magic or ring size");
  s.nonce_ = random_nonce().substr(0, kShmNonceBytes);
  std::memcpy(c->nonce[1], s.nonce_.data(), kShmNonceBytes);
  return s;
}

ShmSegment::ShmSegment(ShmSegment&& o) noexcept {
  *this = std::move(o);
}

ShmSegment& ShmSegment::operator=(ShmSegment&& o) noexcept {
  if (this == &o) return *this;
  release();
  name_ = std::move(o.name_);
  nonce_ = std::move(o.nonce_);
  ring_bytes_ = o.ring_bytes_;
  base_ = std::exchange(o.base_, nullptr);
  mapped_ = std::exchange(o.mapped_, 0);
  side_ = o.side_;
  linked_ = std::exchange(o.linked_, false);
  return *this;
}

ShmSegment::~ShmSegment() {
  release();
}

void ShmSegment::release() noexcept {
  unlink();
  if (base_) ::munmap(base_, mapped_);
  base_ = nullptr;
}

void ShmSegment::unlink() {
  if (linked_) ::shm_unlink(name_.c_str());
  linked_ = false;
}

ShmSegment::Control* ShmSegment::control() const {
  static_assert(sizeof(Control) <= kControlBytes);
  return static_cast<Control*>(base_);
}

std::uint8_t* ShmSegment::ring(int index) const {
  return static_cast<std::uint8_t*>(base_) + kControlBytes +
         static_cast<std::size_t>(index) * ring_bytes_;
}

std::string ShmSegment::peer_nonce() const {
  std::string out(kShmNonceBytes, '\0');
  std::memcpy(out.data(), control()->nonce[1 - side_], kShmNonceBytes);
  return out;
}

RingWriter ShmSegment::writer() const {
  Control* c = control();
  return RingWriter(ring(side_), ring_bytes_, &c->head[side_].v, &c->tail[side_].v,
                    &c->want[side_].v);
}

RingReader ShmSegment::reader() const {
  Control* c = control();
  const int r = 1 - side_;
  return RingReader(ring(r), ring_bytes_, &c->head[r].v, &c->tail[r].v, &c->want[r].v);
}

Doorbell ShmSegment::own_bell() const {
  return Doorbell(&control()->bell[side_].v);
}

Doorbell ShmSegment::peer_bell() const {
  return Doorbell(&control()->bell[1 - side_].v);
}
Doorbell ShmSegment::own_direct() const {
  return Doorbell(&control()->direct[side_].v);
}
Doorbell ShmSegment::peer_direct() const {
  return Doorbell(&control()->direct[1 - side_].v);
}
std::atomic<std::uint32_t>* ShmSegment::own_waiting() const {
  return &control()->waiting[side_].v;
}
std::atomic<std::uint32_t>* ShmSegment::peer_waiting() const {
  return &control()->waiting[1 - side_].v;
}

}  // namespace rumor::net
