#pragma once
// A raw TCP peer for the net tests: writes hand-made frames to a node and reads its answers,
// so the tests can play a neighbour that misbehaves.
#include <sys/socket.h>
#include <sys/time.h>

#include <array>
#include <optional>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "asio.hpp"
#include "frame.hpp"
#include "tcp_handshake.hpp"

namespace rumor::net::testing {

// A raw TCP client with blocking reads that give up after 10 s.
class Raw {
 public:
  explicit Raw(int port) {
    socket_.connect(
        tcp::endpoint(asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)));
    timeval tv{10, 0};
    ::setsockopt(socket_.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  void write(const std::vector<std::uint8_t>& bytes) { asio::write(socket_, asio::buffer(bytes)); }
  void write_frame(wire::Header h, const std::vector<std::uint8_t>& payload = {}) {
    auto head = encode_frame_head(h, payload.size());
    head.insert(head.end(), payload.begin(), payload.end());
    write(head);
  }
  // Next frame's header; nullopt when the node closed the connection (or on timeout).
  std::optional<wire::Header> read_frame() {
    boost::system::error_code ec;
    std::array<std::uint8_t, kPrefixBytes> prefix{};
    asio::read(socket_, asio::buffer(prefix), ec);
    if (ec) return std::nullopt;
    Prefix p;
    if (!parse_prefix(prefix.data(), 1u << 30, p).empty()) return std::nullopt;
    std::vector<std::uint8_t> rest(p.frame_length - 4);
    asio::read(socket_, asio::buffer(rest), ec);
    if (ec) return std::nullopt;
    wire::Header h;
    if (!h.ParseFromArray(rest.data(), static_cast<int>(p.header_length))) return std::nullopt;
    return h;
  }
  // True when the node closes the connection (reads until EOF or reset).
  bool closed_by_node() {
    std::array<std::uint8_t, 4096> buf{};
    for (int i = 0; i < 1000; ++i) {
      boost::system::error_code ec;
      socket_.read_some(asio::buffer(buf), ec);
      if (ec == asio::error::eof || ec == asio::error::connection_reset) return true;
      if (ec) return false;  // timeout
    }
    return false;
  }
  void shutdown_send() { socket_.shutdown(tcp::socket::shutdown_send); }

 private:
  asio::io_context io_;
  tcp::socket socket_{io_};
};

inline wire::Header hello(int node, int target, const std::string& run_id, LinkKind link,
                          std::uint32_t version = kProtocolVersion) {
  wire::Header h = make_hello(run_id, node, target, link, std::string(kNonceBytes, 'n'));
  h.mutable_hello()->set_version(version);
  return h;
}

// Completes the handshake as node `node` dialling node `target`, answering the challenge
// with `secret` when one is given.
inline void raw_handshake(Raw& r, int node, int target, const std::string& secret = {}) {
  const std::string nonce(kNonceBytes, 'n');
  r.write_frame(hello(node, target, "test-run", LinkKind::kData));
  auto h = r.read_frame();
  REQUIRE(h.has_value());
  REQUIRE(h->type() == wire::FRAME_HELLO);
  wire::Header auth;
  auth.set_type(wire::FRAME_AUTH);
  if (!secret.empty())
    auth.mutable_auth()->set_mac(handshake_mac(secret, "dialer", "test-run", LinkKind::kData, node,
                                               target, h->hello().nonce(), nonce));
  r.write_frame(auth);
  auto v = r.read_frame();
  REQUIRE(v.has_value());
  REQUIRE(v->verdict().accepted());
}

// Dials as `node` and answers the challenge with a MAC no secret gives; the node's verdict.
inline std::optional<wire::Header> raw_wrong_mac(Raw& r, int node, int target) {
  r.write_frame(hello(node, target, "test-run", LinkKind::kData));
  auto h = r.read_frame();  // the node's hello with its MAC
  REQUIRE(h.has_value());
  REQUIRE(h->type() == wire::FRAME_HELLO);
  wire::Header auth;
  auth.set_type(wire::FRAME_AUTH);
  auth.mutable_auth()->set_mac(std::string(kMacBytes, 'x'));
  r.write_frame(auth);
  return r.read_frame();
}

// An application message from `node` as the transport would frame it.
inline void raw_message(Raw& r, int node, std::int64_t round, std::uint64_t seq,
                        std::size_t payload_bytes) {
  Message m;
  m.round = round;
  r.write_frame(message_header(m, node, seq), std::vector<std::uint8_t>(payload_bytes, 1));
}

}  // namespace rumor::net::testing
