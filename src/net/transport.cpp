#include "rumor/net/transport.hpp"

#include <algorithm>
#include <cstring>
#include <utility>

#include "rumor/common/error.hpp"
#include "rumor/common/log.hpp"

namespace rumor::net {

const char* to_string(LinkKind kind) {
  return kind == LinkKind::kData ? "data" : "control";
}

const char* to_string(LinkEventType type) {
  switch (type) {
    case LinkEventType::kUp:
      return "up";
    case LinkEventType::kDown:
      return "down";
    case LinkEventType::kRefused:
      return "refused";
    case LinkEventType::kConnectFailed:
      return "connect-failed";
  }
  return "?";
}

Payload Payload::take(std::vector<std::uint8_t>&& bytes) {
  auto v = std::make_shared<const std::vector<std::uint8_t>>(std::move(bytes));
  return share(std::move(v));
}

Payload Payload::copy_of(std::span<const std::uint8_t> bytes) {
  return take(std::vector<std::uint8_t>(bytes.begin(), bytes.end()));
}

Payload Payload::allocate(std::size_t size, std::uint8_t*& out) {
  std::shared_ptr<std::uint8_t[]> buf = std::make_shared_for_overwrite<std::uint8_t[]>(size);
  out = buf.get();
  const std::uint8_t* data = buf.get();
  return Payload(std::move(buf), data, size);
}

std::vector<float> Payload::to_floats() const {
  if (size_ % sizeof(float) != 0)
    throw ProtocolError("payload of " + std::to_string(size_) +
                        " bytes is not a whole number of floats");
  std::vector<float> out(size_ / sizeof(float));
  if (size_ > 0) std::memcpy(out.data(), data_, size_);
  return out;
}

bool MessageFilter::matches(const Message& m) const {
  return (sender == kAnySender || m.sender == sender) &&
         (round == kAnyRound ? m.round <= max_round : m.round == round) &&
         (!kind || m.kind == *kind) && (!stage || m.stage == *stage) && (!link || m.link == *link);
}

const LinkStats* TransportStats::find(int peer, LinkKind link) const {
  for (const auto& l : links)
    if (l.peer == peer && l.link == link) return &l;
  return nullptr;
}

void TransportStats::add(const LinkStats& s) {
  links.push_back(s);
  if (s.link == LinkKind::kData) {
    data_bytes_sent += s.bytes_sent;
    data_bytes_recv += s.bytes_recv;
    data_msgs_sent += s.msgs_sent;
    data_msgs_recv += s.msgs_recv;
  } else {
    ctrl_bytes_sent += s.bytes_sent;
    ctrl_bytes_recv += s.bytes_recv;
  }
  drops += s.drops;
  rejected += s.rejected();
}

void Mailbox::push(Message m) {
  {
    std::lock_guard lock(mutex_);
    bytes_[m.sender] += m.payload.size();
    queue_.push_back(std::move(m));
  }
  cv_.notify_all();
}

std::size_t Mailbox::bytes_from(int sender) const {
  std::lock_guard lock(mutex_);
  auto it = bytes_.find(sender);
  return it == bytes_.end() ? 0 : it->second;
}

std::optional<Message> Mailbox::take(const MessageFilter& filter,
                                     std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::unique_lock lock(mutex_);
  auto find = [&]() -> std::optional<Message> {
    // Rescan from the front: other takers may have removed messages meanwhile.
    for (std::size_t i = 0; i < queue_.size(); ++i) {
      if (filter.matches(queue_[i])) {
        Message m = std::move(queue_[i]);
        queue_.erase(queue_.begin() + static_cast<std::ptrdiff_t>(i));
        bytes_[m.sender] -= m.payload.size();
        return m;
      }
    }
    return std::nullopt;
  };
  while (true) {
    if (auto m = find()) return m;
    if (closed_ || timeout.count() <= 0) return std::nullopt;  // a poll: no wait, no syscall
    if (cv_.wait_until(lock, deadline) == std::cv_status::timeout) return find();
  }
}

std::vector<Message> Mailbox::drain() {
  std::lock_guard lock(mutex_);
  std::vector<Message> out(std::make_move_iterator(queue_.begin()),
                           std::make_move_iterator(queue_.end()));
  queue_.clear();
  bytes_.clear();
  return out;
}

std::size_t Mailbox::size() const {
  std::lock_guard lock(mutex_);
  return queue_.size();
}

bool Mailbox::closed() const {
  std::lock_guard lock(mutex_);
  return closed_;
}

void Mailbox::close() {
  {
    std::lock_guard lock(mutex_);
    closed_ = true;
  }
  cv_.notify_all();
}

std::vector<LinkEvent> Transport::events() {
  std::lock_guard lock(events_mutex_);
  return std::exchange(events_, {});
}

void Transport::emit(LinkEvent event) {
  if (handler_) handler_(event);
  std::lock_guard lock(events_mutex_);
  if (events_.size() < 100000) events_.push_back(std::move(event));
}

}  // namespace rumor::net
