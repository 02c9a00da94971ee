// `rumor node --join`: the joiner's side of the join exchange (tcp_handshake.hpp JoinDialer),
// over one blocking connection with a deadline on every step.
#include <array>
#include <thread>

#include "asio.hpp"
#include "frame.hpp"
#include "rumor/common/error.hpp"
#include "rumor/net/join.hpp"
#include "tcp_handshake.hpp"

namespace rumor::net {
namespace {

using Clock = std::chrono::steady_clock;

// One connection whose every operation ends by `deadline`: past it the socket is closed and
// the operation fails with a timeout.
class JoinConnection {
 public:
  JoinConnection(std::string where, std::chrono::milliseconds timeout)
      : where_(std::move(where)), timeout_(timeout), deadline_(Clock::now() + timeout) {}
  Clock::time_point deadline() const { return deadline_; }

  // Connects; false while nothing listens there yet (the caller tries again).
  bool connect(const tcp::endpoint& endpoint) {
    boost::system::error_code result = asio::error::would_block;
    socket_ = tcp::socket(ioc_);
    socket_.async_connect(endpoint, [&](boost::system::error_code ec) { result = ec; });
    run(result);
    if (result == asio::error::connection_refused) return false;
    if (result) fail("cannot connect: " + result.message());
    return true;
  }

  void write(wire::Header h) {
    const auto bytes = encode_frame_head(h, 0);
    boost::system::error_code result = asio::error::would_block;
    asio::async_write(socket_, asio::buffer(bytes),
                      [&](boost::system::error_code ec, std::size_t) { result = ec; });
    run(result);
    if (result) fail("write failed: " + result.message());
  }

  // The next frame: its header, its payload (at most max_payload bytes) into `payload`.
  wire::Header read(std::size_t max_payload, std::string* payload,
                    const char* closed = "the connection closed before a frame") {
    std::array<std::uint8_t, kPrefixBytes> head{};
    read_exactly(head.data(), head.size(), closed);
    Prefix prefix;
    if (auto err = parse_prefix(head.data(), kMaxHandshakeFrame + max_payload, prefix);
        !err.empty())
      fail(err);
    std::string header_bytes(prefix.header_length, '\0');
    read_exactly(header_bytes.data(), header_bytes.size(), "truncated frame");
    wire::Header h;
    if (auto err =
            parse_header(reinterpret_cast<const std::uint8_t*>(header_bytes.data()), prefix, h);
        !err.empty())
      fail(err);
    const std::uint64_t n = prefix.payload_length();
    if (n > 0 && (!payload || n > max_payload))
      fail("a frame of type " + std::to_string(h.type()) + " with " + std::to_string(n) +
           " payload bytes (at most " + std::to_string(payload ? max_payload : 0) + " here)");
    if (payload) {
      payload->assign(static_cast<std::size_t>(n), '\0');
      read_exactly(payload->data(), payload->size(), "truncated settings");
    }
    return h;
  }

  [[noreturn]] void fail(const std::string& what) const {
    throw ProtocolError("rumor node --join " + where_ + ": " + what);
  }

 private:
  void read_exactly(char* data, std::size_t n, const char* closed) {
    boost::system::error_code result = asio::error::would_block;
    asio::async_read(socket_, asio::buffer(data, n),
                     [&](boost::system::error_code ec, std::size_t) { result = ec; });
    run(result);
    if (result == asio::error::eof) fail(closed);
    if (result) fail(std::string(closed) + ": " + result.message());
  }
  void read_exactly(std::uint8_t* data, std::size_t n, const char* closed) {
    read_exactly(reinterpret_cast<char*>(data), n, closed);
  }

  // Runs the io_context until the pending operation sets `result` or the deadline passes.
  void run(boost::system::error_code& result) {
    ioc_.restart();
    ioc_.run_until(deadline_);
    if (result != asio::error::would_block) return;
    boost::system::error_code ignored;
    socket_.close(ignored);  // the operation ends with operation_aborted
    ioc_.restart();
    ioc_.run();
    fail("no answer in time (the join waits " +
         std::to_string(std::chrono::duration_cast<std::chrono::seconds>(timeout_).count()) +
         " s in all; is the address a node of the run, reachable from here?)");
  }

  std::string where_;
  std::chrono::milliseconds timeout_;
  Clock::time_point deadline_;
  asio::io_context ioc_;
  tcp::socket socket_{ioc_};
};

tcp::endpoint resolve(const std::string& host, int port, const std::string& where) {
  asio::io_context ioc;
  tcp::resolver resolver(ioc);
  boost::system::error_code ec;
  auto results = resolver.resolve(host, std::to_string(port), ec);
  if (ec || results.empty())
    throw ProtocolError("rumor node --join " + where + ": cannot resolve host '" + host +
                        "': " + (ec ? ec.message() : "no address"));
  return *results.begin();
}

}  // namespace

JoinAnswer request_join_settings(const std::string& host, int port, const std::string& secret,
                                 std::chrono::milliseconds timeout) {
  const std::string where = host + ":" + std::to_string(port);
  const tcp::endpoint endpoint = resolve(host, port, where);
  JoinConnection c(where, timeout);
  constexpr std::chrono::milliseconds kRetry{200};
  while (!c.connect(endpoint)) {
    if (Clock::now() + kRetry >= c.deadline())
      c.fail("nothing listens there (is a node of the run running at that address?)");
    std::this_thread::sleep_for(kRetry);
  }
  JoinDialer dialer(secret);
  c.write(dialer.open());
  const wire::Header hello =
      c.read(0, nullptr,
             "closed without answering (a run with network.tls? --join does not speak TLS yet)");
  wire::Header auth;
  try {
    auth = dialer.on_hello(hello);
  } catch (const ProtocolError& e) {
    c.fail(std::string("the node there ") + e.what());
  }
  c.write(auth);
  JoinAnswer answer;
  answer.node = dialer.acceptor();
  const wire::Header verdict = c.read(0, nullptr);
  try {
    dialer.on_verdict(verdict);
  } catch (const ProtocolError& e) {
    c.fail("node " + std::to_string(answer.node) + " " + e.what() +
           (dialer.distrust().empty() ? "" : "; " + dialer.distrust()));
  }
  if (!dialer.distrust().empty()) c.fail(dialer.distrust());
  const wire::Header h = c.read(kMaxJoinSettingsBytes, &answer.settings);
  if (h.type() != wire::FRAME_SETTINGS)
    c.fail("node " + std::to_string(answer.node) + " sent frame type " + std::to_string(h.type()) +
           " instead of the run's settings");
  return answer;
}

bool address_answers(const std::string& host, int port, std::chrono::milliseconds timeout) {
  const std::string where = host + ":" + std::to_string(port);
  JoinConnection c(where, timeout);
  try {
    return c.connect(resolve(host, port, where));
  } catch (const ProtocolError&) {
    return false;  // unreachable or silent: nothing there takes connections
  }
}

}  // namespace rumor::net
