// Attacks on a TCP run under the default launch settings, by a hand-made peer
// (attack_peer) on this machine: a stranger without the run secret claiming a neighbour's
// id, and a peer that read RUNDIR/secret, takes a neighbour's link over and sends wrong-size,
// NaN, replayed and far-future frames. The run finishes as if nothing happened, within the
// bounds the README states, and summary.json says what was refused and why.
//
// The attacker starts once node 1 has written its first metrics line, and the run has
// hundreds of rounds more: what is checked never depends on when within the run it lands
// (it is refused whenever it comes), only that it comes before the end, which the test
// checks too (the attacker's report).
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "cli/cli_run.hpp"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr int kNodes = 6;

// `max_rejects`: network.max_rejects (0: the default). Ports away from launch's default
// range, which other builds' tests on this machine may be taking at the same moment.
std::string attack_config(const fs::path& dir, int max_rejects = 0) {
  json network = {
      {"connect_timeout_s", 20}, {"round_timeout_s", 20}, {"round_deadline", "adaptive"}};
  if (max_rejects > 0) network["max_rejects"] = max_rejects;
  const auto path = dir / "attack.json";
  std::ofstream(path) << json{{"name", "attack"},
                              {"seed", 5},
                              {"topology",
                               {{"gen", "ring"},
                                {"nodes", kNodes},
                                {"base_port", cli_test::free_base_port(kNodes)}}},
                              {"method", {{"name", "sgp"}}},
                              {"model", {{"name", "logreg"}}},
                              {"data",
                               {{"dataset", "blobs"},
                                {"train_size", 3000},
                                {"test_size", 2000},
                                {"classes", 4},
                                {"separation", 6.0},
                                {"partition", {{"kind", "iid"}}}}},
                              {"rounds", 5000},
                              {"eval", {{"every", 2500}}},
                              {"on_peer_failure", "continue"},
                              {"network", network},
                              {"output", {{"dir", (dir / "runs").string()}}}}
                             .dump();
  return path.string();
}

std::string file_text(const fs::path& p) {
  std::ifstream in(p);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

json read_json(const fs::path& p) {
  std::ifstream in(p);
  return json::parse(in);
}

json last_line(const fs::path& jsonl) {
  std::ifstream in(jsonl);
  std::string line, last;
  while (std::getline(in, line))
    if (!line.empty()) last = line;
  return json::parse(last);
}

struct Outcome {
  int code = -1;
  std::string out;    // the launcher's output
  json attack;        // attack_peer's report (empty when none ran)
  fs::path run;       // the run directory
  double honest = 0;  // mean final accuracy over the nodes (the attacker is none of them)
  double rss_1 = 0;   // node 1's peak resident memory, MB (summary.json)
  json summary;
};

// Runs the config, and `attack` (attack_peer arguments after RUNDIR) once node 1 is under
// way. Bounded waits: 60 s for the run directory, the launcher's own round timeouts after.
Outcome run(const std::string& config, const std::string& attack) {
  const fs::path dir = fs::path(config).parent_path();
  fs::remove_all(dir / "runs");
  const std::string script =
      "cd " + dir.string() + "; (" + cli_test::rumor_path() + " launch " + config +
      " --no-progress --log-level warn > launch.out 2>&1; echo $? > launch.rc) & " +
      (attack.empty()
           ? std::string()
           : "for i in $(seq 1 1200); do f=$(ls runs/*/node-1.jsonl 2>/dev/null | head -n1); "
             "[ -n \"$f\" ] && [ -s \"$f\" ] && break; sleep 0.05; done; " +
                 std::string(RUMOR_BINARY_DIR) + "/attack_peer $(dirname \"$f\") " + attack +
                 " > attacker.out; ") +
      "wait";
  cli_test::shell(script);
  Outcome o;
  std::ifstream(dir / "launch.rc") >> o.code;
  std::ifstream launch_out(dir / "launch.out");
  o.out.assign(std::istreambuf_iterator<char>(launch_out), std::istreambuf_iterator<char>());
  if (!attack.empty()) {
    std::ifstream a(dir / "attacker.out");
    std::string line;
    if (std::getline(a, line) && !line.empty()) o.attack = json::parse(line);
  }
  for (const auto& e : fs::directory_iterator(dir / "runs")) o.run = e.path();
  for (int i = 0; i < kNodes; ++i)
    o.honest +=
        last_line(o.run / ("node-" + std::to_string(i) + ".jsonl"))["test_acc"].get<double>() /
        kNodes;
  o.summary = read_json(o.run / "summary.json");
  REQUIRE(o.summary.contains("peak_rss_mb_by_node"));
  o.rss_1 = o.summary["peak_rss_mb_by_node"]["1"].get<double>();
  return o;
}

struct Runs {
  Outcome clean, hit;
};

// The run without an attack, then with `attack`; both must finish with exit code 0.
Runs clean_and_attacked(const std::string& name, const std::string& attack) {
  const auto config = attack_config(cli_test::scratch(name));
  Runs r{run(config, ""), run(config, attack)};
  INFO(r.clean.out);
  INFO(r.hit.out);
  INFO(r.hit.attack.dump());
  REQUIRE(r.clean.code == 0);
  REQUIRE(r.hit.code == 0);
  return r;
}

// Whether node a's log says it left neighbour b out of the mixing, on its own (down
// notices) or because b told it so.
bool left_out(const fs::path& run, int a, int b) {
  const std::string log = file_text(run / ("node-" + std::to_string(a) + ".log"));
  return log.find("leaving peer " + std::to_string(b) + " out of the mixing") !=
             std::string::npos ||
         log.find("peer " + std::to_string(b) + " left this node out") != std::string::npos;
}

// Both ends of every ring link agree on whether it is down: nobody was left waiting for a
// neighbour that had dropped it.
void check_links_agree(const fs::path& run) {
  for (int a = 0; a < kNodes; ++a) {
    const int b = (a + 1) % kNodes;
    INFO("link " << a << "-" << b);
    CHECK(left_out(run, a, b) == left_out(run, b, a));
  }
}

// What an attacked run must hold against the clean one: every node finished; the honest
// nodes' final accuracy within half a point; node 1's peak memory under 1.5 times.
void check_held(const Outcome& clean, const Outcome& hit) {
  INFO(hit.out);
  INFO(hit.attack.dump());
  REQUIRE(hit.code == 0);
  CHECK(hit.summary["nodes_finished"] == kNodes);
  CHECK(std::abs(hit.honest - clean.honest) <= 0.005);
  CHECK(hit.rss_1 < 1.5 * clean.rss_1);
  check_links_agree(hit.run);
}

}  // namespace

TEST_SUITE("cli") {
  TEST_CASE("rumor secret new writes a fresh secret only its owner can read") {
    const auto dir = cli_test::scratch("secret-new");
    const auto a = dir / "a.secret", b = dir / "b.secret";
    REQUIRE(cli_test::rumor("secret new -o " + a.string()).code == 0);
    REQUIRE(cli_test::rumor("secret new -o " + b.string()).code == 0);
    CHECK((fs::status(a).permissions() & fs::perms::all) ==
          (fs::perms::owner_read | fs::perms::owner_write));
    const std::string sa = file_text(a), sb = file_text(b);
    CHECK(sa.size() == 65);  // 64 hex digits and a newline
    CHECK(sa.find_first_not_of("0123456789abcdef\n") == std::string::npos);
    CHECK(sa != sb);
  }

  TEST_CASE("rumor node needs a secret unless network.insecure is set") {
    const auto dir = cli_test::scratch("node-secret");
    const auto config = cli_test::small_config(dir);
    const auto r = cli_test::rumor("node " + config + " --id 0");
    CHECK(r.code != 0);
    CHECK(r.out.find("has no network.secret_file") != std::string::npos);
    CHECK(r.out.find("rumor secret new") != std::string::npos);
    // A secret file that is missing or empty is named.
    const auto missing = cli_test::rumor(
        "node " + config + " --id 0 --set network.secret_file=" + (dir / "nope").string());
    CHECK(missing.code != 0);
    CHECK(missing.out.find("cannot be read") != std::string::npos);
    std::ofstream(dir / "empty");
    const auto empty = cli_test::rumor(
        "node " + config + " --id 0 --set network.secret_file=" + (dir / "empty").string());
    CHECK(empty.code != 0);
    CHECK(empty.out.find("is empty") != std::string::npos);
  }

  TEST_CASE("attack over TCP: a stranger without the run secret cannot take a neighbour's place") {
    const auto [clean, hit] = clean_and_attacked("attack-stranger", "stranger --as 0 --target 1");
    INFO(hit.attack.dump());
    // launch made a secret for the run, readable by its owner only.
    CHECK((fs::status(hit.run / "secret").permissions() & fs::perms::all) ==
          (fs::perms::owner_read | fs::perms::owner_write));
    REQUIRE(hit.attack.contains("handshake"));
    CHECK(hit.attack["handshake"].get<std::string>().find("refused: authentication failed") == 0);
    // Refused and counted where the run reports; nothing else moved.
    const json s = read_json(hit.run / "summary.json");
    CHECK(s["handshakes_refused"].get<double>() >= 1);
    CHECK(s["handshakes_refused_by_node"]["1"].get<double>() >= 1);
    CHECK(s["msgs_rejected"] == 0);
    CHECK(file_text(hit.run / "node-1.log").find("refused a data connection claiming node 0") !=
          std::string::npos);
    const json a = read_json(clean.run / "summary.json");
    CHECK(s["final"]["test_acc_mean"] == a["final"]["test_acc_mean"]);
    CHECK(s["nodes_finished"] == kNodes);
  }

  // The attacker holds the run secret, so node 1 cannot tell it from node 0: its refusals
  // are counted under node 0's name. Run twice: with the default network.max_rejects (10),
  // and with 2, where node 1 leaves node 0 out of the mixing, closes their link and tells
  // it, and node 0 leaves node 1 out too. Nothing checked depends on when a frame lands:
  // only what was refused, and that the two ends of every link agree.
  TEST_CASE("attack over TCP: a faulty peer with the secret takes a link over, and the run holds") {
    // The real node 0 takes its link back each time, cutting what the attacker is writing:
    // the attacker takes it over again, repeating what node 1 has not counted yet (its
    // metrics lines say), until every bad frame and 8 far-future frames of 16 MiB are
    // counted, over at most 400 takeovers. 84 logistic-regression parameters as push-sum
    // running sums are 672 bytes.
    const std::string attack =
        "all --as 0 --target 1 --secret $(dirname \"$f\")/secret --frames 8 --mb 16 "
        "--takeovers 400 --payload-bytes 672 --until-counted";
    const Outcome clean = run(attack_config(cli_test::scratch("attack-faulty-clean")), "");
    INFO(clean.out);
    REQUIRE(clean.code == 0);
    {
      const Outcome hit = run(attack_config(cli_test::scratch("attack-faulty")), attack);
      check_held(clean, hit);
      REQUIRE(hit.attack.value("handshake", "") == "accepted");
      // Every kind of bad frame was refused, counted by node 1 under node 0's name.
      REQUIRE(hit.summary.contains("rejected_by_node"));
      const json why = hit.summary["rejected_by_node"]["1"]["0"];
      INFO(why.dump());
      for (const char* reason : {"wrong size", "non-finite values",
                                 "sequence number not increasing", "round too far ahead"})
        CHECK_MESSAGE(why.value(reason, 0) >= 1, reason);
      // At least 128 MiB offered: kept, they would take node 1 over 1.5 times its peak.
      CHECK(why.value("round too far ahead", 0) >= 8);
      CHECK(hit.summary["msgs_rejected"].get<double>() >= 4);
      // The takeover was said aloud on node 1.
      CHECK(file_text(hit.run / "node-1.log").find("authenticated again") != std::string::npos);
    }
    const Outcome strict = run(attack_config(cli_test::scratch("attack-faulty-strict"), 2), attack);
    check_held(clean, strict);
    // Node 1 treated node 0 as down once two of its messages were refused: left out of the
    // mixing, link closed, told; node 0 left node 1 out in turn (check_links_agree).
    const std::string log_1 = file_text(strict.run / "node-1.log");
    INFO(log_1.substr(log_1.size() > 4000 ? log_1.size() - 4000 : 0));
    CHECK(log_1.find("out of the mixing from round") != std::string::npos);
    CHECK(left_out(strict.run, 1, 0));
    CHECK(log_1.find("closing the data link to node 0") != std::string::npos);
    CHECK(left_out(strict.run, 0, 1));
    CHECK(strict.summary["rejected_by_node"]["1"]["0"].value("wrong size", 0) >= 1);
  }
}
