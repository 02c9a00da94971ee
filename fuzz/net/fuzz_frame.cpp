// libFuzzer target: a byte stream as a TCP connection delivers it, read frame by frame the
// way a session does (src/net/tcp_session.cpp): prefix (parse_prefix against the handshake
// or the established limit), header (parse_header), then the payload of a known message
// kind into a Message (message_from_header). The first byte picks the limit; a refused
// frame ends the stream, as it closes the connection.
#include <cstdint>
#include <cstdlib>

#include "frame.hpp"
#include "fuzz_input.hpp"

namespace net = rumor::net;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  rumor::fuzz::Input in(data, size);
  const bool established = in.flag();
  const std::uint64_t limit = established ? std::uint64_t{1} << 20 : net::kMaxHandshakeFrame;
  for (int frames = 0; frames < 64 && in.left() >= net::kPrefixBytes; ++frames) {
    net::Prefix prefix;
    if (!net::parse_prefix(in.bytes(net::kPrefixBytes).data(), limit, prefix).empty()) return 0;
    // What parse_prefix admits bounds everything the session allocates for the frame.
    if (prefix.frame_length > limit || prefix.header_length > net::kMaxHeaderBytes ||
        prefix.payload_length() > limit)
      std::abort();
    if (in.left() < prefix.header_length) return 0;  // truncated frame
    rumor::wire::Header header;
    if (!net::parse_header(in.bytes(prefix.header_length).data(), prefix, header).empty()) return 0;
    const std::uint64_t n = prefix.payload_length();
    if (in.left() < n) return 0;  // truncated payload
    const auto payload = in.bytes(static_cast<std::size_t>(n));
    if (header.type() != rumor::wire::FRAME_MESSAGE || !net::known_kind(header.kind())) continue;
    const net::Message m = net::message_from_header(header, net::Payload::copy_of(payload));
    if (m.payload.size() != n || net::to_string(m.kind).empty()) std::abort();
  }
  return 0;
}
