#include <doctest/doctest.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "rumor/common/error.hpp"
#include "rumor/common/log.hpp"
#include "rumor/run/checkpoint.hpp"
#include "rumor/run/run.hpp"
#include "run_harness.hpp"

using namespace rumor;
using nlohmann::json;
using namespace rumor::run_test;
namespace fs = std::filesystem;

namespace {

fs::path fresh_dir(const std::string& name) {
  const auto d = fs::temp_directory_path() / "rumor_checkpoint_tests" / name;
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}
void spit(const fs::path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary | std::ios::trunc) << bytes;
}

// Rewrites the CRC-32 trailer so that only the edit under test is wrong.
void reseal(const fs::path& p) {
  std::string b = slurp(p);
  const auto crc = static_cast<std::uint32_t>(crc32(crc32(0, nullptr, 0),
                                                    reinterpret_cast<const Bytef*>(b.data()),
                                                    static_cast<uInt>(b.size() - 4)));
  for (int i = 0; i < 4; ++i) b[b.size() - 4 + i] = static_cast<char>((crc >> (8 * i)) & 0xff);
  spit(p, b);
}

// Writes a small checkpoint: two buffers and some fields.
fs::path sample(const fs::path& dir) {
  const auto path = dir / "node-0-r9.ckpt";
  const std::vector<float> model = {1.0f, -2.5f, 3.25f}, extra = {0.5f, 7.0f};
  run::write_checkpoint(path.string(), {{"round", 9}, {"traffic", {{"bytes_sent", 42}}}},
                        {{"model", model}, {"extra", extra}});
  return path;
}

std::size_t header_start() {
  return 24;  // magic, format, header bytes, body bytes
}

// read_checkpoint refuses the file with a message naming it and the problem.
void check_refused(const fs::path& path, const std::string& problem) {
  CAPTURE(problem);
  try {
    run::read_checkpoint(path.string());
    FAIL("read_checkpoint accepted a bad file");
  } catch (const run::CheckpointError& e) {
    const std::string msg = e.what();
    CAPTURE(msg);
    CHECK(msg.find(path.string()) != std::string::npos);
    CHECK(msg.find(problem) != std::string::npos);
  }
  CHECK(run::checkpoint_problem(path.string()).find(problem) != std::string::npos);
}

std::vector<std::string> sets_for(const std::string& method, const fs::path& out) {
  std::vector<std::string> s = {"rounds=30", "checkpoint.every=10", "eval.every=5",
                                "output.dir=" + out.string()};
  // qgm keeps its own momentum; the others checkpoint the optimizer's.
  if (method != "qgm") s.push_back("optimizer.momentum=0.9");
  if (method == "choco" || method == "squarm")
    s.insert(s.end(), {"codec=topk:0.25|sign", "method.gamma=0.3"});
  if (method == "qdata") s.push_back("method.gossip_every=4");
  return s;
}

json topology_for(const std::string& method) {
  return method == "sgp" ? expo(4) : ring(4);
}

// Every node's metrics lines, wall-clock time aside.
std::vector<std::vector<json>> lines_of(const std::string& run_dir, int n) {
  std::vector<std::vector<json>> out;
  for (int i = 0; i < n; ++i) {
    auto lines = read_lines(run_dir + "/node-" + std::to_string(i) + ".jsonl");
    for (auto& l : lines) l.erase("time_s");
    out.push_back(lines);
  }
  return out;
}

// Node by node and line by line; reports the first line that differs, not whole files.
void check_same(const std::vector<std::vector<json>>& got,
                const std::vector<std::vector<json>>& want, std::size_t from_line = 0) {
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    CAPTURE(i);
    REQUIRE(got[i].size() == want[i].size());
    std::size_t differ = 0;
    for (std::size_t k = from_line; k < got[i].size(); ++k)
      if (got[i][k] != want[i][k] && differ++ == 0) CHECK(got[i][k].dump() == want[i][k].dump());
    CHECK(differ == 0);
  }
}

// A run of 30 rounds stopped after round 25: checkpoints of rounds 10 and 20 on every node.
struct Interrupted {
  std::vector<std::vector<json>> full;  // the uninterrupted run's lines
  std::string run_dir;                  // the interrupted run
};
Interrupted interrupted(const std::string& method, const fs::path& base) {
  Interrupted r;
  const auto full = run::run_inprocess(
      small(method, topology_for(method), sets_for(method, base / "full")), quiet());
  r.full = lines_of(full.run_dir, 4);
  const auto cut_cfg = small(method, topology_for(method), sets_for(method, base / "cut"));
  auto crash = quiet();
  crash.stop_after = 24;
  run::run_inprocess(cut_cfg, crash);
  r.run_dir = cut_cfg.run_dir();
  return r;
}

run::RunResult resume(const std::string& run_dir) {
  auto again = quiet();
  again.resume = true;
  return run::run_inprocess(run::recorded_config(run_dir), again);
}

}  // namespace

TEST_SUITE("run") {
  TEST_CASE("checkpoint format 2: named fields and buffers read back exactly") {
    const auto path = sample(fresh_dir("roundtrip"));
    CHECK_FALSE(fs::exists(path.string() + ".tmp"));
    const auto c = run::read_checkpoint(path.string());
    CHECK(c.fields["round"] == 9);
    CHECK(c.fields["traffic"]["bytes_sent"] == 42);
    REQUIRE(c.buffers.size() == 2);
    CHECK(c.buffers[0].name == "model");
    CHECK(c.buffers[0].data == std::vector<float>{1.0f, -2.5f, 3.25f});
    CHECK(c.buffers[1].name == "extra");
    CHECK(c.buffers[1].data == std::vector<float>{0.5f, 7.0f});
    CHECK(run::checkpoint_problem(path.string()).empty());
    const std::string bytes = slurp(path);
    CHECK(bytes.substr(0, 8) == "RUMORCKP");
    CHECK(bytes[8] == 2);  // the format, little-endian
  }

  TEST_CASE("checkpoint files that are damaged, foreign or of another format are refused") {
    const auto dir = fresh_dir("refused");
    const auto path = sample(dir);
    const std::string good = slurp(path);
    const std::size_t body = good.size() - 4 - 5 * sizeof(float);

    spit(path, good.substr(0, good.size() - 7));
    check_refused(path, "truncated: header says " + std::to_string(good.size()) +
                            " bytes, file has " + std::to_string(good.size() - 7));
    spit(path, good.substr(0, 10));
    check_refused(path, "truncated: 10 bytes");
    spit(path, good + "x");
    check_refused(path, "has " + std::to_string(good.size() + 1) + " bytes");

    std::string bad = good;
    bad[body + 5] ^= 0x10;  // a bit of the model
    spit(path, bad);
    check_refused(path, "checksum mismatch");
    bad = good;
    bad[header_start() + 3] ^= 0x01;  // a byte of the JSON header
    spit(path, bad);
    check_refused(path, "checksum mismatch");
    bad = good;
    bad[good.size() - 1] ^= 0x01;  // the checksum itself
    spit(path, bad);
    check_refused(path, "checksum mismatch");

    bad = good;
    bad[8] = 3;
    spit(path, bad);
    check_refused(path, "format 3 written by a newer rumor");
    bad[8] = 1;
    spit(path, bad);
    check_refused(path, "format 1 written by an older rumor; cannot resume from it");
    bad = good;
    bad[7] = '1';  // RUMORCK1: the first format's magic
    spit(path, bad);
    check_refused(path, "format 1 written by an older rumor; cannot resume from it");
    bad = good;
    bad[0] = 'X';
    spit(path, bad);
    check_refused(path, "not a rumor checkpoint (bad magic");
    spit(path, "");
    check_refused(path, "not a rumor checkpoint");
    fs::remove(path);
    check_refused(path, "not found");
  }

  TEST_CASE("every flipped byte and every truncation of a checkpoint is refused") {
    const auto path = sample(fresh_dir("every-byte"));
    const std::string good = slurp(path);
    for (std::size_t i = 0; i < good.size(); ++i) {
      CAPTURE(i);
      std::string bad = good;
      bad[i] = static_cast<char>(bad[i] ^ 0x04);
      spit(path, bad);
      CHECK_THROWS_AS(run::read_checkpoint(path.string()), run::CheckpointError);
      spit(path, good.substr(0, i));
      CHECK_THROWS_AS(run::read_checkpoint(path.string()), run::CheckpointError);
    }
  }

  TEST_CASE("sizes in a checkpoint are not trusted, even with a valid checksum") {
    const auto dir = fresh_dir("sizes");
    const auto path = sample(dir);
    const std::string good = slurp(path);
    std::string bad = good;
    bad[12] = '\x7f';  // header length: far beyond the file
    bad[13] = '\x7f';
    bad[14] = '\x7f';
    bad[15] = '\x7f';
    spit(path, bad);
    check_refused(path, "beyond the");
    bad = good;
    bad[16] = '\xff';  // body length: more than the file holds
    spit(path, bad);
    check_refused(path, "truncated: header says a body of");

    // A header that lists more floats than the body holds: sealed, so only the sizes lie.
    bad = good;
    const auto at = bad.find("\"size\":3");
    REQUIRE(at != std::string::npos);
    bad[at + 7] = '4';
    spit(path, bad);
    reseal(path);
    check_refused(path, "buffer sizes exceed the body");
    bad[at + 7] = '2';
    spit(path, bad);
    reseal(path);
    check_refused(path, "buffers hold 16 bytes, body has 20");
    bad = good;
    bad[header_start()] = '[';  // not the header's JSON object
    spit(path, bad);
    reseal(path);
    check_refused(path, "malformed header");
  }

  TEST_CASE("resuming restores every method's whole state: the run matches an uninterrupted one") {
    for (const std::string method :
         {"dpsgd", "sgp", "choco", "squarm", "qgm", "allreduce", "local"}) {
      CAPTURE(method);
      const auto r = interrupted(method, fresh_dir("methods-" + method));
      CHECK(run::resume_point(r.run_dir, 4) == 19);
      const auto resumed = resume(r.run_dir);
      check_same(lines_of(resumed.run_dir, 4), r.full);
    }
  }

  TEST_CASE("qdata resumes with its models and counters, its replay buffer starts empty") {
    const auto r = interrupted("qdata", fresh_dir("methods-qdata"));
    const auto resumed = lines_of(resume(r.run_dir).run_dir, 4);
    REQUIRE(resumed[0].size() == 30);
    CHECK(resumed[0][19] == r.full[0][19]);  // kept from before the stop
    CHECK(resumed[0][20]["qd_buffer"] < r.full[0][20]["qd_buffer"]);
    CHECK(resumed[0][20]["bytes_sent"] == r.full[0][20]["bytes_sent"]);
    CHECK(resumed[0][29]["step"] == 30);
  }

  TEST_CASE("a corrupt newest checkpoint: resume falls back to the previous round and says so") {
    const auto r = interrupted("choco", fresh_dir("fallback"));
    const fs::path bad = run::checkpoint_path(r.run_dir, 2, 19);
    std::string bytes = slurp(bad);
    bytes[bytes.size() / 2] ^= 0x40;
    spit(bad, bytes);

    const auto point = run::find_resume_point(r.run_dir, 4);
    CHECK(point.round == 9);
    REQUIRE(point.skipped.size() == 1);
    CHECK(point.skipped[0].find(bad.string()) != std::string::npos);
    CHECK(point.skipped[0].find("checksum mismatch") != std::string::npos);

    const auto log_path = fresh_dir("fallback-log") / "stderr.log";
    log::set_file(log_path.string());
    const auto resumed = resume(r.run_dir);
    log::set_file("");
    const std::string said = slurp(log_path);
    CAPTURE(said);
    CHECK(said.find("checkpoint " + bad.string() + ": checksum mismatch") != std::string::npos);
    CHECK(said.find("resuming from round 10 instead") != std::string::npos);
    CHECK(
        slurp(fs::path(r.run_dir) / "node-0.log").find("resumed from the checkpoint of round 10") !=
        std::string::npos);
    check_same(lines_of(resumed.run_dir, 4), r.full);
    // The resumed run wrote round 20 again: good on every node now.
    CHECK(run::checkpoint_problem(bad.string()).empty());
  }

  TEST_CASE("no good checkpoint on every node: a clear error listing each bad file") {
    const auto r = interrupted("dpsgd", fresh_dir("none-good"));
    spit(run::checkpoint_path(r.run_dir, 1, 19), "RUMORCK1 old");
    const auto old = run::checkpoint_path(r.run_dir, 3, 9);
    spit(old, slurp(old).substr(0, 100));
    try {
      run::find_resume_point(r.run_dir, 4);
      FAIL("no error");
    } catch (const Error& e) {
      const std::string msg = e.what();
      CAPTURE(msg);
      CHECK(msg.find("no round has a good checkpoint on every one of the 4 nodes") !=
            std::string::npos);
      CHECK(msg.find("node-1-r19.ckpt: format 1 written by an older rumor") != std::string::npos);
      CHECK(msg.find("node-3-r9.ckpt: truncated: header says") != std::string::npos);
    }
    CHECK_THROWS_AS(resume(r.run_dir), Error);
  }

  TEST_CASE("a checkpoint of another node or method is refused by the peer loading it") {
    const auto r = interrupted("dpsgd", fresh_dir("swapped"));
    fs::copy_file(run::checkpoint_path(r.run_dir, 1, 19), run::checkpoint_path(r.run_dir, 0, 19),
                  fs::copy_options::overwrite_existing);
    const std::string expected = "node 0: checkpoint " + run::checkpoint_path(r.run_dir, 0, 19) +
                                 " holds round 19 of node 1";
    CHECK_THROWS_WITH_AS(resume(r.run_dir), doctest::Contains(expected.c_str()),
                         run::CheckpointError);
  }
}
