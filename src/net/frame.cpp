#include "frame.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <sys/mman.h>

#include <cstdlib>
#include <cstring>
#include <new>
#include <random>

#include "rumor/common/error.hpp"

namespace rumor::net {
namespace {

void put_le(std::uint8_t* p, std::uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
}
std::uint64_t get_le(const std::uint8_t* p, int bytes) {
  std::uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= static_cast<std::uint64_t>(p[i]) << (8 * i);
  return v;
}

}  // namespace

std::vector<std::uint8_t> encode_frame_head(wire::Header& header, std::uint64_t payload_length) {
  header.set_payload_length(payload_length);
  if (header.version() == 0) header.set_version(kProtocolVersion);
  const std::size_t hlen = header.ByteSizeLong();
  std::vector<std::uint8_t> out(kPrefixBytes + hlen);
  put_le(out.data(), 4 + hlen + payload_length, 8);
  put_le(out.data() + 8, hlen, 4);
  header.SerializeWithCachedSizesToArray(out.data() + kPrefixBytes);
  return out;
}

wire::Header message_header(const Message& m, int sender, std::uint64_t seq) {
  wire::Header h;
  h.set_type(wire::FRAME_MESSAGE);
  h.set_version(kProtocolVersion);
  h.set_kind(static_cast<std::uint32_t>(m.kind));
  h.set_stage(m.stage);
  h.set_sender(sender);
  h.set_round(m.round);
  h.set_seq(seq);
  h.set_codec(m.codec);
  for (double s : m.scalars) h.add_scalars(s);
  h.set_not_triggered(m.not_triggered);
  return h;
}

Message message_from_header(const wire::Header& h, Payload payload) {
  Message m;
  m.kind = static_cast<MessageKind>(h.kind());
  m.stage = h.stage();
  m.sender = h.sender();
  m.round = h.round();
  m.seq = h.seq();
  m.codec = h.codec();
  m.not_triggered = h.not_triggered();
  m.scalars.assign(h.scalars().begin(), h.scalars().end());
  m.payload = std::move(payload);
  return m;
}

std::string parse_prefix(const std::uint8_t* bytes, std::uint64_t max_frame, Prefix& out) {
  out.frame_length = get_le(bytes, 8);
  out.header_length = static_cast<std::uint32_t>(get_le(bytes + 8, 4));
  if (out.frame_length > max_frame)
    return "frame of " + std::to_string(out.frame_length) + " bytes exceeds the maximum of " +
           std::to_string(max_frame);
  if (out.header_length == 0 || out.header_length > kMaxHeaderBytes)
    return "header length " + std::to_string(out.header_length) + " outside 1.." +
           std::to_string(kMaxHeaderBytes);
  if (std::uint64_t{out.header_length} + 4 > out.frame_length)
    return "header length " + std::to_string(out.header_length) + " exceeds frame length " +
           std::to_string(out.frame_length);
  return {};
}

std::string parse_header(const std::uint8_t* bytes, const Prefix& prefix, wire::Header& out) {
  if (!out.ParseFromArray(bytes, static_cast<int>(prefix.header_length)))
    return "frame header does not parse";
  if (out.version() != kProtocolVersion)
    return "frame version " + std::to_string(out.version()) + ", expected " +
           std::to_string(kProtocolVersion);
  if (out.payload_length() != prefix.payload_length())
    return "payload length " + std::to_string(out.payload_length()) +
           " in the header disagrees with the frame (" + std::to_string(prefix.payload_length()) +
           " bytes)";
  return {};
}

std::uint64_t wire_size(const Message& m) {
  wire::Header h = message_header(m, 0, 1);
  h.set_payload_length(m.payload.size());
  return kPrefixBytes + h.ByteSizeLong() + m.payload.size();
}

std::string random_nonce() {
  std::string n(kNonceBytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(n.data()), static_cast<int>(n.size())) != 1) {
    std::random_device rd;  // fallback; the nonce only has to be unpredictable
    for (auto& c : n) c = static_cast<char>(rd());
  }
  return n;
}

std::string handshake_mac(const std::string& secret, const std::string& role,
                          const std::string& run_id, LinkKind link, int dialer, int acceptor,
                          const std::string& challenge, const std::string& response) {
  // Length-prefix every field so no two field lists hash the same byte string.
  std::string msg;
  auto add = [&](const std::string& s) {
    std::uint8_t len[8];
    put_le(len, s.size(), 8);
    msg.append(reinterpret_cast<const char*>(len), 8);
    msg += s;
  };
  add("rumor-handshake-v1");
  add(role);
  add(run_id);
  add(std::to_string(static_cast<int>(link)));
  add(std::to_string(dialer));
  add(std::to_string(acceptor));
  add(challenge);
  add(response);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  if (!HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
            reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), md, &md_len))
    throw Error("HMAC-SHA256 failed in OpenSSL (libcrypto)");
  return std::string(reinterpret_cast<const char*>(md), md_len);
}

bool mac_equal(const std::string& a, const std::string& b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

void BufferPool::FreeDeleter::operator()(std::uint8_t* p) const {
  std::free(p);
}

BufferPool::Buffer BufferPool::make_buffer(std::size_t size) {
  // Large buffers on 2 MB boundaries with transparent huge pages where the kernel allows
  // (madvise mode): fewer TLB misses while the kernel copies tens of MB into them.
  constexpr std::size_t kHuge = 2u << 20;
  void* p = nullptr;
  const bool huge = size >= kHuge;
  const std::size_t bytes = huge ? (size + kHuge - 1) / kHuge * kHuge : size;
  if (posix_memalign(&p, huge ? kHuge : 64, bytes) != 0 || !p) throw std::bad_alloc();
  if (huge) ::madvise(p, bytes, MADV_HUGEPAGE);  // a hint; failure is harmless
  return Buffer(static_cast<std::uint8_t*>(p));
}

Payload BufferPool::allocate(std::size_t size, std::uint8_t*& out) {
  if (size < kMinPooled) return Payload::allocate(size, out);
  Buffer buf;
  {
    std::lock_guard lock(mutex_);
    for (auto it = free_.begin(); it != free_.end(); ++it) {
      if (it->first == size) {
        buf = std::move(it->second);
        free_.erase(it);
        break;
      }
    }
  }
  if (!buf) buf = make_buffer(size);
  out = buf.get();
  std::weak_ptr<BufferPool> weak = weak_from_this();
  std::shared_ptr<std::uint8_t> owner(buf.release(), [weak, size](std::uint8_t* p) {
    if (auto pool = weak.lock()) {
      pool->give_back(size, p);
    } else {
      std::free(p);
    }
  });
  const std::uint8_t* data = owner.get();
  return Payload(std::move(owner), data, size);
}

void BufferPool::give_back(std::size_t size, std::uint8_t* p) {
  Buffer buf(p);
  std::lock_guard lock(mutex_);
  if (free_.size() >= kMaxKept) free_.erase(free_.begin());  // oldest goes
  free_.emplace_back(size, std::move(buf));
}

}  // namespace rumor::net
