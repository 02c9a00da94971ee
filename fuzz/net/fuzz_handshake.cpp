// libFuzzer target: the handshake state machine (src/net/tcp_handshake.cpp) fed the frames
// a peer sends before the connection is established. The first byte picks the side (dialer
// or acceptor) and whether the run has a shared secret; then each frame is a length byte and
// that many header bytes, parsed as the session parses them. The machine must answer every
// frame with an action and never establish a connection whose secret check it skipped, nor
// hand the run's settings to a join request (Hello.join) that did not answer its challenge.
#include <cstdint>
#include <cstdlib>

#include "asio.hpp"
#include "frame.hpp"
#include "fuzz_input.hpp"
#include "tcp_handshake.hpp"
#include "tcp_link.hpp"

namespace net = rumor::net;

namespace {

constexpr int kSelf = 1;

struct Links {
  net::asio::io_context ioc;
  net::Link data0{ioc, 0, net::LinkKind::kData, false};
  net::Link data2{ioc, 2, net::LinkKind::kData, true};
  net::Link ctrl0{ioc, 0, net::LinkKind::kControl, false};
};

Links& links() {
  static Links l;
  return l;
}

// The acceptor admits node 0 on either plane (node 2 is dialed by this node).
net::Link* admit(int peer, net::LinkKind kind, std::string& error) {
  if (peer != 0) {
    error = "node " + std::to_string(peer) + " is not a neighbour that dials this node";
    return nullptr;
  }
  return kind == net::LinkKind::kData ? &links().data0 : &links().ctrl0;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  rumor::fuzz::Input in(data, size);
  const std::uint8_t mode = in.byte();
  const bool dialer = mode & 1;
  net::TransportOptions options;
  options.run_id = "fuzz";
  if (mode & 2) options.secret = "fuzz-secret";
  if (mode & 4) options.join_settings = "{}";  // this node hands out settings to joiners
  net::Handshake hs(options, kSelf, dialer ? &links().data2 : nullptr);
  if (dialer) (void)hs.open();
  for (int frames = 0; frames < 8 && !in.empty(); ++frames) {
    const auto bytes = in.bytes(in.byte());
    rumor::wire::Header h;
    if (!h.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) return 0;
    const net::HandshakeStep step = hs.on_frame(h, admit);
    switch (step.action) {
      case net::HandshakeStep::Action::kContinue:
        if (!step.reply) std::abort();  // the peer would wait for nothing
        break;
      case net::HandshakeStep::Action::kEstablished:
        // Without the secret's MAC (which random input cannot forge) nothing is established.
        if (!options.secret.empty() || hs.stage() != net::HandshakeStage::kDone) std::abort();
        return 0;
      case net::HandshakeStep::Action::kServeJoin:
        std::abort();  // only a joiner holding the secret gets the settings
      case net::HandshakeStep::Action::kRefuse:
      case net::HandshakeStep::Action::kFail:
        if (step.reason.empty()) std::abort();
        return 0;
    }
  }
  return 0;
}
