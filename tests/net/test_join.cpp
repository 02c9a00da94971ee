// The join exchange (rumor node --join) against a running TCP transport: the settings go only
// to a dialer that proves it holds the secret; a wrong secret, and a node with nothing to
// hand out, are refused and counted, and the node's links carry on.
#include <doctest/doctest.h>

#include <string>

#include "net_fixture.hpp"
#include "rumor/common/error.hpp"
#include "rumor/net/join.hpp"

using namespace rumor::net;
using namespace rumor::net::testing;

namespace {

// The ProtocolError text of a join request, or empty when it got settings.
std::string join_error(int port, const std::string& secret) {
  try {
    request_join_settings("127.0.0.1", port, secret, kWait);
  } catch (const rumor::ProtocolError& e) {
    return e.what();
  }
  return {};
}

}  // namespace

TEST_SUITE("net") {
  TEST_CASE("tcp: join requests get the settings only with the secret, and links carry on") {
    auto opt = quick_options();
    opt.secret = "the run secret";
    opt.join_settings = R"({"rumor": {"run_id": "x"}})";
    Cluster c(Kind::kTcp, ring_topology(3), opt);
    check_ring_works(c, 0);

    const JoinAnswer a = request_join_settings("127.0.0.1", c.port(1), opt.secret, kWait);
    CHECK(a.node == 1);
    CHECK(a.settings == opt.join_settings);
    CHECK(c.node(1).stats().refused_handshakes == 0);

    const std::string wrong = join_error(c.port(1), "not the run secret");
    CHECK(wrong.find("authentication failed") != std::string::npos);
    CHECK(wrong.find("does not prove it holds this run secret") != std::string::npos);
    CHECK(wrong.find("run_id") == std::string::npos);  // nothing of the run was sent
    CHECK(eventually([&] { return c.node(1).stats().refused_handshakes == 1; }));
    check_ring_works(c, 1);
  }

  TEST_CASE("tcp: a node with no settings to hand out refuses a join request, saying why") {
    auto opt = quick_options();
    opt.secret = "the run secret";  // but no join_settings
    Cluster c(Kind::kTcp, ring_topology(2), opt);
    const std::string err = join_error(c.port(0), opt.secret);
    CHECK(err.find("takes no joins") != std::string::npos);
    CHECK(eventually([&] { return c.node(0).stats().refused_handshakes == 1; }));
  }
}
