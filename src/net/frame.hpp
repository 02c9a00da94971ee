#pragma once
// Framing, handshake crypto and receive buffers shared by the transports (internal).
#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "rumor/net/transport.hpp"
#include "wire.pb.h"

namespace rumor::net {

inline constexpr std::uint32_t kMagic = 0x524d5231;  // "RMR1"
inline constexpr std::size_t kPrefixBytes = 12;      // u64 frame_length + u32 header_length
inline constexpr std::uint32_t kMaxHeaderBytes = 64 * 1024;
// Frames before the handshake completes are small; a bigger one is malformed.
inline constexpr std::uint64_t kMaxHandshakeFrame = 4096;
inline constexpr std::size_t kNonceBytes = 32;
inline constexpr std::size_t kMacBytes = 32;

// Serializes prefix + header for a frame whose payload (payload_length bytes) is written
// separately from the caller's buffer. Sets header.payload_length.
std::vector<std::uint8_t> encode_frame_head(wire::Header& header, std::uint64_t payload_length);

// The header of an application message.
wire::Header message_header(const Message& m, int sender, std::uint64_t seq);
// A received message from its parsed header and payload.
Message message_from_header(const wire::Header& h, Payload payload);

struct Prefix {
  std::uint64_t frame_length = 0;
  std::uint32_t header_length = 0;
  std::uint64_t payload_length() const { return frame_length - 4 - header_length; }
};
// Decodes and checks a prefix against `max_frame`; returns an error text or empty.
std::string parse_prefix(const std::uint8_t* bytes, std::uint64_t max_frame, Prefix& out);
// Parses and checks a header against the prefix; returns an error text or empty.
std::string parse_header(const std::uint8_t* bytes, const Prefix& prefix, wire::Header& out);

// Wire size of a message (prefix + header + payload), for in-process byte counts.
std::uint64_t wire_size(const Message& m);

std::string random_nonce();
// HMAC-SHA256(secret, role | run_id | link | dialer | acceptor | challenge | response).
std::string handshake_mac(const std::string& secret, const std::string& role,
                          const std::string& run_id, LinkKind link, int dialer, int acceptor,
                          const std::string& challenge, const std::string& response);
bool mac_equal(const std::string& a, const std::string& b);

// Recycles large receive buffers: a fresh 40 MB allocation costs page faults and kernel
// zeroing on every message, comparable to the copy we avoid. Thread-safe.
class BufferPool : public std::enable_shared_from_this<BufferPool> {
 public:
  // An uninitialized buffer of `size` bytes; it returns to the pool when the last Payload
  // referring to it goes away.
  Payload allocate(std::size_t size, std::uint8_t*& out);

 private:
  static constexpr std::size_t kMinPooled = 256 * 1024;
  static constexpr std::size_t kMaxKept = 8;
  struct FreeDeleter {
    void operator()(std::uint8_t* p) const;
  };
  using Buffer = std::unique_ptr<std::uint8_t, FreeDeleter>;
  static Buffer make_buffer(std::size_t size);
  void give_back(std::size_t size, std::uint8_t* p);
  std::mutex mutex_;
  std::vector<std::pair<std::size_t, Buffer>> free_;
};

}  // namespace rumor::net
