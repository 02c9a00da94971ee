// network.tls: TLS 1.3 links authenticated by a key from the run secret or by certificates.
#include <doctest/doctest.h>

#include <filesystem>
#include <thread>

#include "net_fixture.hpp"
#include "raw_peer.hpp"
#include "rumor/common/error.hpp"
#include "rumor/net/tls_certs.hpp"
#include "tls.hpp"

#include <openssl/pem.h>

using namespace rumor;
using namespace rumor::net;
using namespace rumor::net::testing;
namespace fs = std::filesystem;

namespace {

TransportOptions psk_options(const std::string& secret) {
  auto o = quick_options();
  o.tls = true;
  o.secret = secret;
  return o;
}

// CA directories "a" and "b", each with certificates for nodes 0-2 (certs-a, certs-b).
fs::path make_pki(const std::string& name) {
  const auto dir = fs::temp_directory_path() / "rumor_net_tests" / name;
  fs::remove_all(dir);
  for (const char* ca : {"a", "b"}) {
    make_tls_ca((dir / ca).string());
    make_tls_node_certs((dir / ca).string(), {0, 1, 2},
                        (dir / (std::string("certs-") + ca)).string());
  }
  return dir;
}

// Options of node `id` holding its certificate of CA `cert_ca` and trusting CA `trust_ca`.
TransportOptions cert_options(const fs::path& pki, int id, const std::string& cert_ca,
                              const std::string& trust_ca) {
  auto o = quick_options();
  o.tls = true;
  const auto stem = pki / ("certs-" + cert_ca) / ("node-" + std::to_string(id));
  o.tls_cert = stem.string() + ".pem";
  o.tls_key = stem.string() + ".key";
  o.tls_ca = (pki / trust_ca / "ca.pem").string();
  return o;
}

// Started transports, one per options entry, on the given topology's graph.
std::vector<std::unique_ptr<TcpTransport>> start_nodes(const Topology& graph,
                                                       const std::vector<TransportOptions>& opts) {
  std::vector<std::unique_ptr<TcpTransport>> nodes;
  std::vector<int> ports;
  for (const auto& o : opts) {
    nodes.push_back(std::make_unique<TcpTransport>(o));
    ports.push_back(nodes.back()->bind("127.0.0.1", 0));
  }
  const Topology t = with_ports(graph, ports);
  for (std::size_t i = 0; i < nodes.size(); ++i) nodes[i]->start(t, static_cast<int>(i));
  return nodes;
}

}  // namespace

TEST_SUITE("net") {
  TEST_CASE("tls: with the run's key a ring exchanges messages, a large one intact") {
    Cluster c(Kind::kTcp, ring_topology(3), psk_options("run secret"));
    check_ring_works(c, 0);
    check_ring_works(c, 1);
    std::vector<std::uint8_t> big(3 * 1024 * 1024 + 17);
    for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<std::uint8_t>(i * 31 + 7);
    Message m;
    m.round = 2;
    m.payload = Payload::copy_of(big);
    REQUIRE(c.node(0).send(1, std::move(m)));
    auto got = c.node(1).take(0, 2, kWait);
    REQUIRE(got.has_value());
    REQUIRE(got->payload.size() == big.size());
    CHECK(std::equal(big.begin(), big.end(), got->payload.data()));
    const auto s = c.node(1).stats();
    CHECK(s.refused_handshakes == 0);
    CHECK(s.malformed == 0);
  }

  TEST_CASE("tls: a peer with another run secret is refused and counted") {
    const Topology graph = ring_topology(3);
    std::vector<TransportOptions> opts(3, psk_options("run secret"));
    opts[0] = psk_options("another secret");
    opts[0].connect_timeout = 1500ms;
    // Node 0 dials 1 and 2; what it sees of its refusals comes back as events.
    std::mutex mu;
    std::vector<std::string> reasons;
    std::vector<std::unique_ptr<TcpTransport>> nodes;
    std::vector<int> ports;
    for (const auto& o : opts) {
      nodes.push_back(std::make_unique<TcpTransport>(o));
      ports.push_back(nodes.back()->bind("127.0.0.1", 0));
    }
    nodes[0]->set_event_handler([&](const LinkEvent& e) {
      std::lock_guard lock(mu);
      if (e.type == LinkEventType::kRefused) reasons.push_back(e.detail);
    });
    const Topology t = with_ports(graph, ports);
    for (int i = 0; i < 3; ++i) nodes[static_cast<std::size_t>(i)]->start(t, i);
    CHECK_THROWS_AS(nodes[0]->wait_connected(1500ms), ProtocolError);
    CHECK(eventually([&] { return nodes[1]->stats().refused_handshakes > 0; }));
    CHECK(eventually([&] { return nodes[2]->stats().refused_handshakes > 0; }));
    CHECK_FALSE(nodes[1]->link_up(0, LinkKind::kData));
    {
      std::lock_guard lock(mu);
      REQUIRE_FALSE(reasons.empty());
      CHECK_MESSAGE(reasons.front().find("TLS handshake failed") != std::string::npos,
                    reasons.front());
    }
    CHECK(eventually([&] { return nodes[1]->link_up(2, LinkKind::kData); }));
    check_link(*nodes[1], *nodes[2], 3);
    check_link(*nodes[2], *nodes[1], 3);
  }

  TEST_CASE("tls: a plain rumor hello to a TLS node is refused and counted") {
    Cluster c(Kind::kTcp, ring_topology(3), psk_options("run secret"));
    const auto before = c.node(2).stats().refused_handshakes;
    Raw raw(c.port(2));
    raw.write_frame(hello(1, 2, "test-run", LinkKind::kData));
    CHECK(raw.closed_by_node());
    CHECK(eventually([&] { return c.node(2).stats().refused_handshakes == before + 1; }));
    check_ring_works(c, 0);
  }

  TEST_CASE("tls: without a run secret the key mode refuses to start") {
    auto o = quick_options();
    o.tls = true;
    TcpTransport t(o);
    t.bind("127.0.0.1", 0);
    CHECK_THROWS_AS(t.start(with_ports(ring_topology(2), {t.port(), 1}), 0), ConfigError);
  }

  TEST_CASE("tls: certificates of one CA connect, another CA's and none are refused") {
    const fs::path pki = make_pki("tls-certs");
    const Topology graph = ring_topology(3);
    {
      auto nodes =
          start_nodes(graph, {cert_options(pki, 0, "a", "a"), cert_options(pki, 1, "a", "a"),
                              cert_options(pki, 2, "a", "a")});
      for (auto& n : nodes) n->wait_connected(kWait);
      for (int i = 0; i < 3; ++i)
        check_link(*nodes[static_cast<std::size_t>(i)],
                   *nodes[static_cast<std::size_t>((i + 1) % 3)], 0);
      CHECK(nodes[1]->stats().refused_handshakes == 0);
    }
    // Node 0 holds CA b's certificate (and trusts b): 1 and 2 refuse it, it refuses them.
    auto outsider = cert_options(pki, 0, "b", "b");
    outsider.connect_timeout = 1500ms;
    auto nodes = start_nodes(
        graph, {outsider, cert_options(pki, 1, "a", "a"), cert_options(pki, 2, "a", "a")});
    CHECK_THROWS_AS(nodes[0]->wait_connected(1500ms), ProtocolError);
    CHECK(eventually([&] { return nodes[1]->stats().refused_handshakes > 0; }));
    CHECK_FALSE(nodes[1]->link_up(0, LinkKind::kData));
    CHECK(eventually([&] { return nodes[1]->link_up(2, LinkKind::kData); }));
    check_link(*nodes[1], *nodes[2], 1);
    // A TLS client without a certificate is refused as well. Node 0 stops first: its redials
    // were refused by node 2 too, which made an exact count race with them.
    nodes[0]->stop();
    const auto before = nodes[2]->stats().refused_handshakes;
    asio::io_context ioc;
    asio::ssl::context ctx(asio::ssl::context::tls_client);
    tcp::socket socket(ioc);
    socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"),
                                 static_cast<unsigned short>(nodes[2]->port())));
    TlsStream tls(socket, ctx);
    boost::system::error_code ec;
    tls.handshake(asio::ssl::stream_base::client, ec);
    std::array<std::uint8_t, 16> buf{};
    if (!ec) tls.read_some(asio::buffer(buf), ec);  // TLS 1.3: the refusal comes after
    CHECK(ec);
    // At least: a handshake of node 0's still under way when it stopped may be counted after
    // `before` was read.
    CHECK(eventually([&] { return nodes[2]->stats().refused_handshakes > before; }));
  }

  TEST_CASE("tls: a certificate holds its peer to the node it names") {
    const fs::path pki = make_pki("tls-names");
    // Node 1's certificate as node 0's: refused at start, naming both.
    auto wrong = cert_options(pki, 1, "a", "a");
    TcpTransport t(wrong);
    t.bind("127.0.0.1", 0);
    try {
      t.start(with_ports(ring_topology(2), {t.port(), 1}), 0);
      FAIL("started with another node's certificate");
    } catch (const ConfigError& e) {
      CHECK(std::string(e.what()).find("node 1's certificate") != std::string::npos);
    }
    // A peer holding node 0's valid certificate that claims to be node 1 is refused by 2.
    auto nodes = start_nodes(ring_topology(3),
                             {cert_options(pki, 0, "a", "a"), cert_options(pki, 1, "a", "a"),
                              cert_options(pki, 2, "a", "a")});
    asio::io_context ioc;
    asio::ssl::context ctx(asio::ssl::context::tls_client);
    ctx.use_certificate_chain_file((pki / "certs-a" / "node-0.pem").string());
    ctx.use_private_key_file((pki / "certs-a" / "node-0.key").string(), asio::ssl::context::pem);
    ctx.load_verify_file((pki / "a" / "ca.pem").string());
    ctx.set_verify_mode(asio::ssl::verify_peer);
    tcp::socket socket(ioc);
    socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"),
                                 static_cast<unsigned short>(nodes[2]->port())));
    TlsStream tls(socket, ctx);
    tls.handshake(asio::ssl::stream_base::client);
    wire::Header claim = hello(1, 2, "test-run", LinkKind::kData);
    asio::write(tls, asio::buffer(encode_frame_head(claim, 0)));
    std::array<std::uint8_t, kPrefixBytes> prefix{};
    asio::read(tls, asio::buffer(prefix));
    Prefix p;
    REQUIRE(parse_prefix(prefix.data(), 1u << 20, p).empty());
    std::vector<std::uint8_t> rest(p.frame_length - 4);
    asio::read(tls, asio::buffer(rest));
    wire::Header v;
    REQUIRE(v.ParseFromArray(rest.data(), static_cast<int>(p.header_length)));
    CHECK(v.type() == wire::FRAME_VERDICT);
    CHECK_FALSE(v.verdict().accepted());
    CHECK_MESSAGE(v.verdict().reason().find("certificate is node 0's") != std::string::npos,
                  v.verdict().reason());
    CHECK(nodes[2]->stats().refused_handshakes >= 1);
  }

  TEST_CASE("tls: certificate subjects name a node only as node-<id>") {
    const fs::path pki = make_pki("tls-subjects");
    auto id_of = [&](const fs::path& pem) {
      BIO* bio = BIO_new_file(pem.c_str(), "r");
      REQUIRE(bio != nullptr);
      X509* x = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
      BIO_free(bio);
      REQUIRE(x != nullptr);
      const int id = certificate_node_id(x);
      X509_free(x);
      return id;
    };
    CHECK(id_of(pki / "certs-a" / "node-2.pem") == 2);
    CHECK(id_of(pki / "a" / "ca.pem") == -1);
    CHECK(certificate_node_id(nullptr) == -1);
    CHECK_THROWS_AS(make_tls_ca((pki / "a").string()), Error);  // never replaces a CA key
    CHECK_THROWS_AS(make_tls_node_certs((pki / "missing").string(), {0}, (pki / "x").string()),
                    Error);
    CHECK((fs::status(pki / "certs-a" / "node-1.key").permissions() & fs::perms::group_all) ==
          fs::perms::none);
  }
}
