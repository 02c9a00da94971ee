// attack_peer: plays an attacker on this machine against a running rumor run, speaking its
// handshake and framing by hand (the hostile-peer tests and tools/attack-probe.sh use it).
//
//   attack_peer RUNDIR PROBE [--as A] [--target T] [--secret FILE] [--frames N] [--mb M]
//               [--takeovers K] [--payload-bytes B] [--until-counted]
//
// It dials node T's data port (from RUNDIR/config.json) claiming to be node A. PROBE:
//   stranger    complete the handshake; reports whether it was accepted
//   wrong-size  a gossip message whose payload is 8 bytes longer than the run's
//   nan         a gossip message of the run's size whose values (and weight) are NaN
//   dup-seq     a message repeating the previous sequence number, with all-zero sums
//   far-future  up to N frames of M MiB for rounds a million rounds ahead
//   all         wrong-size, nan, dup-seq and far-future on one connection
// For every probe but stranger it takes the link over and sends the probe at once, right
// behind its AUTH frame (so the node reads it before the real node A can take its link
// back), in the run's format (see format_of; --payload-bytes gives the size). Each
// connection is held until the node closes it (the real node A authenticates again and
// takes its link back), so the link is never left empty. Far-future frames go on over K
// takeovers (default 1), until N are written. With --secret it answers the handshake's
// challenge with that secret (an authenticated but faulty peer). With --until-counted it
// watches node T's metrics lines instead: each takeover repeats the probes node T has not
// counted yet under node A's name (far-future: until N are counted, up to N frames per
// connection), for at most K takeovers. Prints one JSON line: what the node answered, what
// was sent and (with --until-counted) what node T counted.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "asio.hpp"
#include "frame.hpp"
#include "tcp_handshake.hpp"

namespace {

using namespace rumor::net;
namespace wire = rumor::wire;
using nlohmann::json;

struct Args {
  std::string run_dir, probe, secret;
  int as = 0, target = 1, frames = 8, takeovers = 1;
  std::uint64_t payload_bytes = 0;
  double mb = 16;
  bool until_counted = false;
};

// The run's message format.
struct Format {
  std::int64_t round = 0;
  std::uint32_t codec = 0;
  std::uint64_t payload = 0;
  std::vector<double> scalars;
};

class Conn {
 public:
  explicit Conn(int port) {
    socket_.connect(
        tcp::endpoint(asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)));
    timeval tv{10, 0};  // a node that says nothing for 10 s: give up
    ::setsockopt(socket_.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  void write(wire::Header h, const std::vector<std::uint8_t>& payload = {}) {
    const auto head = encode_frame_head(h, payload.size());
    const std::array<asio::const_buffer, 2> frame{asio::buffer(head), asio::buffer(payload)};
    boost::system::error_code ec;
    asio::write(socket_, frame, ec);
    if (ec) closed_ = true;
  }
  // Corked, the kernel holds small writes until a full segment or uncorking: the AUTH frame
  // and the probes behind it reach the node together.
  void cork(bool on) {
    const int v = on ? 1 : 0;
    ::setsockopt(socket_.native_handle(), IPPROTO_TCP, TCP_CORK, &v, sizeof v);
  }
  // The next frame's header (its payload skipped); nullopt once the node closed.
  std::optional<wire::Header> read() {
    boost::system::error_code ec;
    std::array<std::uint8_t, kPrefixBytes> prefix{};
    asio::read(socket_, asio::buffer(prefix), ec);
    Prefix p;
    if (ec || !parse_prefix(prefix.data(), std::uint64_t{1} << 34, p).empty()) return std::nullopt;
    std::vector<std::uint8_t> rest(p.frame_length - 4);
    asio::read(socket_, asio::buffer(rest), ec);
    wire::Header h;
    if (ec || !h.ParseFromArray(rest.data(), static_cast<int>(p.header_length)))
      return std::nullopt;
    return h;
  }
  bool closed() const { return closed_; }

 private:
  asio::io_context io_;
  tcp::socket socket_{io_};
  bool closed_ = false;
};

// Dials as node a.as; returns the refusal ("refused: ..."), what went wrong, or empty once
// accepted. `then` writes right after the AUTH frame, before the verdict is read: those
// frames are in the node's socket before it lets anyone in, so it reads them before the
// real node A can take its link back.
std::string handshake(Conn& c, const Args& a, const std::string& run_id,
                      const std::function<void()>& then = {}) {
  const std::string nonce = random_nonce();
  c.write(make_hello(run_id, a.as, a.target, LinkKind::kData, nonce));
  auto h = c.read();
  if (!h) return "closed before answering";
  if (h->type() == wire::FRAME_VERDICT) return "refused: " + h->verdict().reason();
  wire::Header auth;
  auth.set_type(wire::FRAME_AUTH);
  if (!a.secret.empty())
    auth.mutable_auth()->set_mac(handshake_mac(a.secret, "dialer", run_id, LinkKind::kData, a.as,
                                               a.target, h->hello().nonce(), nonce));
  c.cork(static_cast<bool>(then));
  c.write(auth);
  if (then) then();
  c.cork(false);
  auto v = c.read();
  if (!v) return "closed after auth";
  return v->verdict().accepted() ? std::string() : "refused: " + v->verdict().reason();
}

wire::Header gossip(const Format& f, std::int64_t round, std::uint64_t seq,
                    const std::vector<double>& scalars) {
  Message m;
  m.kind = MessageKind::kGossip;
  m.round = round;
  m.codec = f.codec;
  m.scalars = scalars;
  return message_header(m, 0, seq);
}

// The probes' frames, written at once after the handshake; `far` counts the far-future frames
// written (on this and earlier connections), up to `far_limit`, each with payload `big`.
// `first`: the one-time probes too. Returns the frames written.
int send_probe(Conn& c, const Args& a, const Format& f, bool first, int& far, int far_limit,
               const std::vector<std::uint8_t>& big) {
  const bool all = a.probe == "all" && first;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  std::uint64_t seq = 0;
  int sent = 0;
  auto send = [&](wire::Header h, const std::vector<std::uint8_t>& payload) {
    h.set_sender(a.as);
    c.write(std::move(h), payload);
    sent += c.closed() ? 0 : 1;
  };
  if (all || (first && a.probe == "wrong-size"))
    send(gossip(f, f.round, ++seq, f.scalars), std::vector<std::uint8_t>(f.payload + 8, 0));
  if (all || (first && a.probe == "nan"))
    send(gossip(f, f.round, ++seq, std::vector<double>(f.scalars.size(), nan)),
         std::vector<std::uint8_t>(f.payload, 0xff));  // all-ones bytes: NaN in fp32 and fp64
  if (all || (first && a.probe == "dup-seq")) {
    if (seq == 0) send(gossip(f, f.round, ++seq, f.scalars), {});
    send(gossip(f, f.round + 1, seq, std::vector<double>(f.scalars.size(), 0.0)),
         std::vector<std::uint8_t>(f.payload, 0));
  }
  if (a.probe == "all" || a.probe == "far-future") {
    while (far < far_limit) {
      send(gossip(f, f.round + 1000000 + far, ++seq, f.scalars), big);
      if (c.closed()) break;
      ++far;
    }
  }
  return sent;
}

// The run's message format: the codec tag (as peers derive it from the codec's name), the
// payload size (--payload-bytes: the model's parameters times 4, or 8 for push-sum's running
// sums), one push-sum weight of 1, and the round node T wrote last.
Format format_of(const Args& a, const json& cfg) {
  Format f;
  f.codec = 2166136261u;  // FNV-1a of the codec name
  for (unsigned char ch : cfg["codec"].get<std::string>()) f.codec = (f.codec ^ ch) * 16777619u;
  f.payload = a.payload_bytes;
  f.scalars = {1.0};
  std::ifstream in(a.run_dir + "/node-" + std::to_string(a.target) + ".jsonl");
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) f.round = json::parse(line).value("round", std::int64_t{0});
  return f;
}

// Node T's refusals of node A's messages by reason, from its last metrics line (empty when
// none, or when the line is being written).
json counted_by(const Args& a) {
  std::ifstream in(a.run_dir + "/node-" + std::to_string(a.target) + ".jsonl", std::ios::ate);
  const std::streamoff size = in.tellg();
  in.seekg(std::max<std::streamoff>(0, size - 65536));
  std::string line, last;
  while (std::getline(in, line))
    if (!line.empty()) last = line;
  const json j = json::parse(last, nullptr, false);
  if (!j.is_object() || !j.contains("rejected")) return json::object();
  return j["rejected"].value(std::to_string(a.as), json::object());
}

// What --until-counted waits for: the one-time probes' reasons, and far-future frames.
bool one_time_counted(const Args& a, const json& c) {
  auto has = [&](const char* probe, const char* reason) {
    return (a.probe != "all" && a.probe != probe) || c.value(reason, 0) >= 1;
  };
  return has("wrong-size", "wrong size") && has("nan", "non-finite values") &&
         has("dup-seq", "sequence number not increasing");
}
bool all_counted(const Args& a, const json& c) {
  const bool far = a.probe == "all" || a.probe == "far-future";
  return one_time_counted(a, c) && (!far || c.value("round too far ahead", 0) >= a.frames);
}

Args parse(int argc, char** argv) {
  Args a;
  std::vector<std::string> pos;
  for (int i = 1; i < argc; ++i) {
    const std::string s = argv[i];
    auto next = [&] { return i + 1 < argc ? std::string(argv[++i]) : std::string(); };
    if (s == "--as")
      a.as = std::stoi(next());
    else if (s == "--target")
      a.target = std::stoi(next());
    else if (s == "--frames")
      a.frames = std::stoi(next());
    else if (s == "--mb")
      a.mb = std::stod(next());
    else if (s == "--takeovers")
      a.takeovers = std::stoi(next());
    else if (s == "--payload-bytes")
      a.payload_bytes = std::stoull(next());
    else if (s == "--secret")
      std::getline(std::ifstream(next()), a.secret);
    else if (s == "--until-counted")
      a.until_counted = true;
    else
      pos.push_back(s);
  }
  if (pos.size() != 2) throw std::runtime_error("usage: attack_peer RUNDIR PROBE [options]");
  a.run_dir = pos[0];
  a.probe = pos[1];
  return a;
}

}  // namespace

int main(int argc, char** argv) try {
  const Args a = parse(argc, argv);
  json cfg;
  std::ifstream(a.run_dir + "/config.json") >> cfg;
  const std::string run_id = cfg["rumor"]["run_id"].get<std::string>();
  const int port = cfg["topology"]["nodes"][a.target]["port"].get<int>();
  json out = {{"probe", a.probe}, {"as", a.as}, {"target", a.target}, {"port", port}};
  if (a.probe == "stranger") {
    Conn c(port);
    const std::string refused = handshake(c, a, run_id);
    out["handshake"] = refused.empty() ? "accepted" : refused;
    std::cout << out.dump() << std::endl;
    return 0;
  }
  const Format format = format_of(a, cfg);
  out["format"] = {
      {"round", format.round}, {"codec", format.codec}, {"payload_bytes", format.payload}};
  int sent = 0, far = 0;
  json counted = json::object();
  const std::vector<std::uint8_t> big(static_cast<std::size_t>(a.mb * 1024 * 1024), 0);
  for (int k = 0; k < std::max(1, a.takeovers); ++k) {
    if (a.until_counted && k > 0 && all_counted(a, counted = counted_by(a))) break;
    Conn c(port);
    const bool again = a.until_counted && !one_time_counted(a, counted);
    const std::string answer = handshake(c, a, run_id, [&] {
      sent += send_probe(c, a, format, k == 0 || again, far,
                         a.until_counted ? far + a.frames : a.frames, big);
    });
    // Closed before the verdict could be read: the real node A took its link back already.
    if (answer.empty() || !out.contains("handshake"))
      out["handshake"] = answer.empty() ? "accepted" : answer;
    if (answer.rfind("refused", 0) == 0) break;
    out["takeovers"] = k + 1;
    // Until the node closes this connection (replaced by the real peer, or refused).
    for (int i = 0; i < 100000 && c.read();) ++i;
    if (a.until_counted) continue;
    if (far >= a.frames || (a.probe != "all" && a.probe != "far-future")) break;
  }
  out["sent"] = sent;
  out["far_future_sent"] = far;
  if (a.until_counted) out["counted"] = counted_by(a);
  std::cout << out.dump() << std::endl;
  return 0;
} catch (const std::exception& e) {
  std::cerr << "attack_peer: " << e.what() << "\n";
  return 2;
}
