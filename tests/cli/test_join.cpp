// rumor node --join HOST:PORT: a peer started without the config file takes a standby slot
// of a running run with the settings a running node hands it over an authenticated link.
// Scripted rounds: the running nodes hold for the standby slot at its faults.join round (at
// most network.connect_timeout_s), so where the joiner comes in does not depend on speed.
#include <doctest/doctest.h>

#include <signal.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include <nlohmann/json.hpp>

#include "cli/cli_run.hpp"
#include "rumor/common/error.hpp"
#include "rumor/net/join.hpp"
#include "rumor/run/join.hpp"
#include "rumor/run/setup.hpp"

namespace {

using cli_test::rumor;
using cli_test::scratch;
using nlohmann::json;
namespace fs = std::filesystem;

// `running` nodes on a ring (or one node alone), then one standby node linked to nodes 0
// and running/2, held for at round `join_round`; explicit loopback ports from `base`.
std::string join_config(const fs::path& dir, int running, int base, int join_round) {
  json nodes = json::array();
  for (int i = 0; i <= running; ++i)
    nodes.push_back({{"id", i}, {"host", "127.0.0.1"}, {"port", base + i}});
  nodes[running]["standby"] = true;
  json edges = json::array();
  for (int i = 0; running > 1 && i < running; ++i) edges.push_back({i, (i + 1) % running});
  edges.push_back({running, 0});
  if (running > 1) edges.push_back({running, running / 2});
  std::ofstream(dir / "topo.json")
      << json{{"name", "join-test"}, {"nodes", nodes}, {"edges", edges}};
  const json cfg = {
      {"name", "join"},
      {"topology", "topo.json"},
      {"method", {{"name", "sgp"}}},
      {"model", {{"name", "logreg"}}},
      {"data", {{"dataset", "blobs"}, {"train_size", 800}, {"test_size", 200}}},
      {"rounds", 30},
      {"eval", {{"every", 10}}},
      {"on_peer_failure", "continue"},
      {"network",
       {{"connect_timeout_s", 120}, {"round_timeout_s", 30}, {"secret_file", "run.secret"}}},
      {"faults", {{"join", json::array({{{"node", running}, {"round", join_round}}})}}},
      {"output", {{"dir", (dir / "runs").string()}}}};
  std::ofstream(dir / "join.json") << cfg.dump(2);
  REQUIRE(rumor("secret new -o " + (dir / "run.secret").string()).code == 0);
  return (dir / "join.json").string();
}

// A listening socket on 127.0.0.1:port while it lives (a slot that looks taken).
struct Listener {
  explicit Listener(int port) : fd(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    ::inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    const int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(fd, 4) == 0);
  }
  ~Listener() { ::close(fd); }
  int fd;
};

std::string joiner(const fs::path& dir, int port, const std::string& secret,
                   const std::string& extra = "") {
  return "cd " + dir.string() + " && " + cli_test::rumor_path() +
         " node --join 127.0.0.1:" + std::to_string(port) + " --secret-file " + secret + extra;
}

// A joiner run from `cwd`, writing into the run directory the nodes started with the config
// write to (output.dir is not handed over).
std::string joiner_here(const fs::path& dir, const fs::path& cwd, int port,
                        const std::string& secret) {
  return joiner(cwd, port, secret, " --set output.dir=" + (dir / "runs").string());
}

// Settings from a config as a running node would hand them over.
std::string settings_of(const std::string& config_path) {
  return rumor::run::join_settings(rumor::config::Config::load(config_path));
}

}  // namespace

TEST_SUITE("cli") {
  TEST_CASE(
      "node --join: a joiner takes the standby slot, finishes with the others, no weight lost") {
    const auto dir = scratch("join");
    const int base = cli_test::free_base_port(5);
    const auto cfg = join_config(dir, 4, base, 10);
    fs::create_directories(dir / "elsewhere");  // the joiner has no config file
    std::string script;
    for (int i = 0; i < 4; ++i)
      script += cli_test::rumor_path() + " node " + cfg + " --id " + std::to_string(i) + " > " +
                (dir / ("out." + std::to_string(i))).string() + " 2>&1 & P" + std::to_string(i) +
                "=$!; ";
    // The joiner starts once its two neighbours-to-be wrote round 9 and so hold at round 10
    // for it (bounded: 120 s). Started earlier, it may be let in by one of them a round before
    // the other, and the mass that one hands over is then on its way to the joiner, in no
    // node's line, for a round.
    const std::string wrote9 = "grep -qs round.:9, " + (dir / "runs").string() + "/*/node-";
    script += "for k in $(seq 1200); do " + wrote9 + "0.jsonl && " + wrote9 +
              "2.jsonl && break; sleep 0.1; done; ";
    script +=
        "(" + joiner_here(dir, dir / "elsewhere", base, "../run.secret") + "); echo joiner=$?; ";
    for (int i = 0; i < 4; ++i)
      script += "wait $P" + std::to_string(i) + "; echo node" + std::to_string(i) + "=$?; ";
    const auto r = cli_test::shell("bash -c '" + script + "'");
    INFO(r.out);
    CHECK(r.out.find("joining as standby node 4") != std::string::npos);
    CHECK(r.out.find("joiner=0") != std::string::npos);
    for (int i = 0; i < 4; ++i)
      CHECK(r.out.find("node" + std::to_string(i) + "=0") != std::string::npos);
    const auto run = cli_test::only_run(dir / "runs");
    const auto lines = cli_test::node_lines(run, 5);
    REQUIRE(!lines[4].empty());
    CHECK(lines[4].front()["round"].get<int>() == 10);  // let in at its round
    for (int i = 0; i < 5; ++i) CHECK(lines[i].back()["round"] == 29);
    // The joiner took a share of the push-sum mass: the 4 started nodes' weight, every round.
    cli_test::check_weight_kept(lines, 30, 4.0);
    // The serving node says so in its log.
    std::ifstream log(run / "node-0.log");
    const std::string text((std::istreambuf_iterator<char>(log)), {});
    CHECK(text.find("handed the run's settings") != std::string::npos);
  }

  TEST_CASE("node --join: a wrong secret, a running --id and a taken slot are refused") {
    const auto dir = scratch("join_refused");
    const int base = cli_test::free_base_port(2);
    const auto cfg = join_config(dir, 1, base, 1);  // node 0 alone holds for node 1 at round 1
    const auto started = cli_test::shell(cli_test::rumor_path() + " node " + cfg + " --id 0 > " +
                                         (dir / "out.0").string() + " 2>&1 & echo $!");
    const pid_t node0 = std::stoi(started.out);
    std::ofstream(dir / "wrong.secret") << std::string(64, 'a') << "\n";
    fs::permissions(dir / "wrong.secret", fs::perms::owner_read | fs::perms::owner_write);

    const auto wrong = cli_test::shell(joiner(dir, base, "wrong.secret"));
    INFO(wrong.out);
    CHECK(wrong.code != 0);
    CHECK(wrong.out.find("authentication failed") != std::string::npos);
    CHECK(wrong.out.find("wrong --secret-file") != std::string::npos);
    CHECK(wrong.out.find("\"rounds\"") == std::string::npos);  // nothing of the run was sent

    const auto not_standby = cli_test::shell(joiner(dir, base, "run.secret", " --id 0"));
    INFO(not_standby.out);
    CHECK(not_standby.code != 0);
    CHECK(not_standby.out.find("node 0 of topology 'join-test' is not a standby node") !=
          std::string::npos);
    {
      const Listener taken(base + 1);  // something answers at node 1's address
      const auto running = cli_test::shell(joiner(dir, base, "run.secret", " --id 1"));
      INFO(running.out);
      CHECK(running.code != 0);
      CHECK(running.out.find("node 1 is running already") != std::string::npos);
    }
    // The run goes on: the right secret joins node 1, and both finish.
    const auto good = cli_test::shell(joiner_here(dir, dir, base, "run.secret"));
    INFO(good.out);
    CHECK(good.code == 0);
    for (int k = 0; k < 600 && ::kill(node0, 0) == 0; ++k)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    const auto lines = cli_test::node_lines(cli_test::only_run(dir / "runs"), 2);
    REQUIRE(!lines[0].empty());
    REQUIRE(!lines[1].empty());
    CHECK(lines[0].back()["round"] == 29);
    CHECK(lines[1].back()["round"] == 29);
    CHECK(lines[0].back()["handshakes_refused"].get<int>() >= 1);  // the wrong secret, counted
  }

  TEST_CASE("node --join: settings round trip, hostile settings are refused, not absorbed") {
    const auto dir = scratch("join_settings");
    const auto cfg_path = join_config(dir, 4, cli_test::free_base_port(5), 10);
    const auto original = rumor::config::Config::load(cfg_path);
    const std::string settings = settings_of(cfg_path);
    // Nothing that only makes sense on the serving machine, nor the secret's file.
    CHECK(settings.find(dir.string() + "/run.secret") == std::string::npos);
    CHECK(settings.find("topo.json") == std::string::npos);  // the topology is written out
    const auto back = rumor::run::config_from_join_settings(settings, "test", {});
    CHECK(back.run_id() == original.run_id());
    CHECK(back.at("network.secret_file").is_null());
    CHECK(back.get<std::string>("output.dir") == "runs");  // the joiner's own, not the sender's

    auto refused = [](const std::string& text, const std::string& why) {
      CAPTURE(why);
      try {
        rumor::run::config_from_join_settings(text, "node 0 at 127.0.0.1:1", {});
        FAIL("accepted: " << text.substr(0, 80));
      } catch (const rumor::ConfigError& e) {
        CHECK(std::string(e.what()).find(why) != std::string::npos);
      }
    };
    refused("{\"rounds\": ", "not JSON");
    refused("[1, 2]", "no run id");
    refused(std::string(100000, '[') + std::string(100000, ']'), "nest deeper");
    refused(std::string(rumor::net::kMaxJoinSettingsBytes + 1, ' '), "over the");
    json doc = json::parse(settings);
    doc["topology"] = "/etc/passwd";
    refused(doc.dump(), "written out");
    doc["topology"] = {{"gen", "ring"}, {"nodes", 100000000}};
    refused(doc.dump(), "written out");
    doc = json::parse(settings);
    doc["rounds"] = "many";
    refused(doc.dump(), "rounds");
    doc = json::parse(settings);
    doc["rumor"]["run_id"] = "another-run";
    refused(doc.dump(), "make run id");
    // A --set of a key that makes the run is another run.
    CHECK_THROWS_AS(rumor::run::config_from_join_settings(settings, "x", {"rounds=31"}),
                    rumor::ConfigError);
  }

  TEST_CASE("node --join: slot choice") {
    const auto dir = scratch("join_slots");
    const auto cfg = rumor::config::Config::load(join_config(dir, 4, 40000, 10));
    const auto t = rumor::run::topology_of(cfg);
    auto none = [](int) { return false; };
    auto all = [](int) { return true; };
    CHECK(rumor::run::pick_join_slot(t, -1, none) == 4);
    CHECK(rumor::run::pick_join_slot(t, 4, none) == 4);
    CHECK_THROWS_AS(rumor::run::pick_join_slot(t, -1, all), rumor::ConfigError);
    CHECK_THROWS_AS(rumor::run::pick_join_slot(t, 4, all), rumor::ConfigError);
    CHECK_THROWS_AS(rumor::run::pick_join_slot(t, 2, none), rumor::ConfigError);
    CHECK_THROWS_AS(rumor::run::pick_join_slot(t, 5, none), rumor::ConfigError);
  }
}
