// network.tls from the command line: rumor secret ca/certs, and launches over TLS that give
// the plain run's metrics (golden-style comparison, wall clock aside).
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli/cli_run.hpp"
#include "cli/golden_compare.hpp"

using namespace cli_test;
using namespace golden_compare;

namespace {

// A 4-node ring run (dpsgd, logreg, blobs) with its topology in a file, for `secret certs`.
std::string ring4_config(const fs::path& dir) {
  std::ofstream(dir / "ring4.json") << R"({"name": "ring4", "nodes": [{"id": 0}, {"id": 1},
    {"id": 2}, {"id": 3}], "edges": [[0, 1], [1, 2], [2, 3], [3, 0]]})";
  const auto path = dir / "tls.json";
  std::ofstream(path) << R"({"name": "cli-tls", "topology": ")" << (dir / "ring4.json").string()
                      << R"(", "method": {"name": "dpsgd"}, "model": {"name": "logreg"},
    "data": {"dataset": "blobs", "train_size": 800, "test_size": 200},
    "rounds": 30, "eval": {"every": 10},
    "network": {"connect_timeout_s": 20, "round_timeout_s": 20}})";
  return path.string();
}

// Launches `config` with `sets` into dir/name; the outputs without wall-clock fields.
json launch_outputs(const std::string& config, const fs::path& dir, const std::string& name,
                    const std::string& sets = "") {
  const auto out = dir / name;
  const auto r = rumor("launch " + config +
                       " --no-progress --log-level warn --set output.dir=" + out.string() + sets);
  INFO(r.out);
  REQUIRE(r.code == 0);
  return outputs_of(only_subdir(out));
}

void check_same(const json& want, const json& got, const std::string& what) {
  std::vector<std::string> diffs;
  compare(want, got, what, diffs);
  std::ostringstream all;
  for (const auto& d : diffs) all << d << "\n";
  CHECK_MESSAGE(diffs.empty(), what << " differs from the plain run:\n" << all.str());
  CHECK(want.at("nodes").size() == got.at("nodes").size());
}

}  // namespace

TEST_SUITE("cli") {
  TEST_CASE("tls: config keys lists the TLS options with their help") {
    const auto k = rumor("config keys");
    REQUIRE(k.code == 0);
    for (const char* key :
         {"network.tls ", "network.tls_cert", "network.tls_key", "network.tls_ca"})
      CHECK_MESSAGE(k.out.find(key) != std::string::npos, key);
    const auto h = rumor("secret certs --help");
    CHECK(h.code == 0);
    CHECK(h.out.find("--topology") != std::string::npos);
  }

  TEST_CASE("tls: secret ca and certs make a CA and one key pair per node, keys 0600") {
    const auto dir = scratch("tls-pki");
    const std::string config = ring4_config(dir);
    REQUIRE(rumor("secret ca -o " + (dir / "ca").string()).code == 0);
    const auto again = rumor("secret ca -o " + (dir / "ca").string());
    CHECK(again.code != 0);  // never replaces a CA key
    CHECK(again.out.find("exists") != std::string::npos);
    const auto r = rumor("secret certs --topology " + (dir / "ring4.json").string() + " --ca " +
                         (dir / "ca").string() + " -o " + (dir / "certs").string());
    INFO(r.out);
    REQUIRE(r.code == 0);
    for (int i = 0; i < 4; ++i) {
      const auto key = dir / "certs" / ("node-" + std::to_string(i) + ".key");
      CHECK(fs::exists(dir / "certs" / ("node-" + std::to_string(i) + ".pem")));
      REQUIRE(fs::exists(key));
      CHECK((fs::status(key).permissions() & (fs::perms::group_all | fs::perms::others_all)) ==
            fs::perms::none);
    }
    CHECK_FALSE(fs::exists(dir / "certs" / "node-4.pem"));
    const auto missing = rumor("secret certs --topology " + (dir / "ring4.json").string() +
                               " --ca " + (dir / "nowhere").string() + " -o " + dir.string());
    CHECK(missing.code != 0);
    CHECK(missing.out.find("ca.pem") != std::string::npos);
  }

  TEST_CASE("tls: launches over TLS give the plain run's metrics (run key and certificates)") {
    const auto dir = scratch("tls-launch");
    const std::string config = ring4_config(dir);
    const json plain = launch_outputs(config, dir, "plain");
    check_same(plain, launch_outputs(config, dir, "psk", " --set network.tls=true"), "TLS (key)");
    REQUIRE(rumor("secret ca -o " + (dir / "ca").string()).code == 0);
    REQUIRE(rumor("secret certs --topology " + (dir / "ring4.json").string() + " --ca " +
                  (dir / "ca").string() + " -o " + (dir / "certs").string())
                .code == 0);
    const std::string certs =
        " --set network.tls=true --set network.tls_cert=" +
        (dir / "certs" / "node-{id}.pem").string() +
        " --set network.tls_key=" + (dir / "certs" / "node-{id}.key").string() +
        " --set network.tls_ca=" + (dir / "ca" / "ca.pem").string();
    check_same(plain, launch_outputs(config, dir, "certs", certs), "TLS (certificates)");
    // A certificate option without network.tls is a mistake, said before anything starts.
    const auto r = rumor("launch " + config + " --dry-run --set network.tls_cert=x.pem");
    CHECK(r.code != 0);
    CHECK(r.out.find("go together") != std::string::npos);
  }
}
