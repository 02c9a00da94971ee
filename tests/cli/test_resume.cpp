// rumor launch --resume (TCP and in-process) and config paths seen from other folders.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/cli_run.hpp"

namespace {

namespace fs = std::filesystem;
using cli_test::node_lines;
using cli_test::only_run;
using cli_test::rumor;
using cli_test::scratch;
using cli_test::shell;
using cli_test::small_config;
using nlohmann::json;

// Leaves a finished run as a crash after round `last` + 1 would have: checkpoints after it
// gone (unless `keep_checkpoints`), metrics lines after it gone, no summary or model.
void interrupt_after(const fs::path& run_dir, int n, int last, int dropped_checkpoint,
                     bool keep_checkpoints) {
  for (int i = 0; i < n; ++i) {
    const auto ckpt =
        run_dir / "checkpoints" /
        ("node-" + std::to_string(i) + "-r" + std::to_string(dropped_checkpoint) + ".ckpt");
    if (!keep_checkpoints) REQUIRE(fs::remove(ckpt));
    const auto path = run_dir / ("node-" + std::to_string(i) + ".jsonl");
    std::ifstream in(path);
    std::string kept;
    for (std::string line; std::getline(in, line);)
      if (json::parse(line)["round"].get<int>() <= last) kept += line + "\n";
    in.close();
    std::ofstream(path, std::ios::trunc) << kept;
  }
  for (const char* f : {"summary.json", "summary.csv", "model.pt"}) fs::remove(run_dir / f);
}

// An uninterrupted run and a run interrupted after round 34, resumed with `flags` from
// another working directory: the metrics lines must be the same, line for line. With
// `corrupt`, the newest checkpoints stay but node 2's is damaged: the run falls back to
// the round before.
// Synchronous methods (sgp by default) compute the same models over TCP whatever the
// message timing.
const std::string kSgp = " --set method.name=sgp --set topology.gen=exponential";

void check_resume_matches(const std::string& name, const std::string& flags, bool corrupt,
                          const std::string& method = kSgp) {
  const std::string sets = " --no-progress" + method + " --set checkpoint.every=10" + flags;
  const auto full_dir = scratch(name + "-full");
  const auto full = rumor("launch " + small_config(full_dir) + sets);
  INFO(full.out);
  REQUIRE(full.code == 0);
  const auto want = node_lines(only_run(full_dir / "runs"), 4);
  REQUIRE(want[3].size() == 40);

  const auto cut_dir = scratch(name + "-cut");
  REQUIRE(rumor("launch " + small_config(cut_dir) + sets).code == 0);
  const auto run_dir = only_run(cut_dir / "runs");
  interrupt_after(run_dir, 4, 33, 39, corrupt);
  const auto damaged = run_dir / "checkpoints" / "node-2-r39.ckpt";
  if (corrupt) {
    std::fstream f(damaged, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(200);
    const char c = static_cast<char>(f.get());
    f.seekp(200);
    f.put(static_cast<char>(c ^ 0x01));
  }

  fs::create_directories(cut_dir / "elsewhere");
  const auto again =
      shell("cd " + (cut_dir / "elsewhere").string() + " && " + cli_test::rumor_path() +
            " launch --resume " + run_dir.string() + " --no-progress" + flags);
  INFO(again.out);
  REQUIRE(again.code == 0);
  if (flags.empty()) CHECK(again.out.find("resuming after round 30") != std::string::npos);
  if (corrupt) {
    CHECK(again.out.find("checkpoint " + damaged.string() + ": checksum mismatch") !=
          std::string::npos);
    CHECK(again.out.find("resuming from round 30 instead") != std::string::npos);
  } else {
    CHECK(again.out.find("instead") == std::string::npos);
  }
  CHECK(fs::exists(run_dir / "summary.json"));
  CHECK_FALSE(fs::exists(cut_dir / "elsewhere" / "runs"));
  const auto got = node_lines(run_dir, 4);
  for (int i = 0; i < 4; ++i) {
    CAPTURE(i);
    REQUIRE(got[i].size() == want[i].size());
    for (std::size_t k = 0; k < got[i].size(); ++k) {
      CAPTURE(k);
      CHECK(got[i][k].dump() == want[i][k].dump());
    }
  }
}

}  // namespace

TEST_SUITE("cli") {
  TEST_CASE("launch --resume over TCP continues an interrupted run as if it had not stopped") {
    check_resume_matches("resume-tcp", "", false);
  }

  TEST_CASE("launch --resume over TCP: a corrupt newest checkpoint falls back to the one before") {
    check_resume_matches("resume-tcp-fallback", "", true);
  }

  TEST_CASE("launch --resume --inprocess continues an interrupted run line for line") {
    check_resume_matches("resume-inproc", " --inprocess", false);
  }

  TEST_CASE("resume line for line: gradient tracking, and DiLoCo with adamw and error feedback") {
    const std::string gt = " --set method.name=gt --set topology.gen=ring";
    const std::string diloco =
        " --set method.name=diloco --set topology.gen=ring --set local_steps=3"
        " --set method.outer_mix=one-peer --set optimizer.name=adamw --set optimizer.lr=0.01"
        " --set optimizer.weight_decay=0.01 --set 'codec=\"ef|topk:0.1\"'";
    check_resume_matches("resume-gt-inproc", " --inprocess", false, gt);
    check_resume_matches("resume-diloco-inproc", " --inprocess", false, diloco);
    check_resume_matches("resume-diloco-tcp", "", false,
                         " --set method.name=diloco --set topology.gen=ring --set local_steps=2"
                         " --set optimizer.name=adam --set optimizer.lr=0.01");
  }

  TEST_CASE("resume line for line: peer sampling, in-process and over TCP") {
    const std::string ps =
        " --set topology.gen=ring --set topology.schedule=peer-sampling --set topology.fanout=2";
    check_resume_matches("resume-ps-sgp-inproc", " --inprocess", false,
                         " --set method.name=sgp" + ps);
    check_resume_matches("resume-ps-dpsgd-inproc", " --inprocess", false,
                         " --set method.name=dpsgd" + ps);
    check_resume_matches("resume-ps-sgp-tcp", "", false, " --set method.name=sgp" + ps);
  }

  TEST_CASE("config paths: relative to the config's folder, --set ones to the working dir") {
    const auto root = scratch("paths");
    fs::create_directories(root / "cfg" / "topo");
    fs::create_directories(root / "cfg" / "data");
    fs::create_directories(root / "work");
    std::ofstream(root / "cfg" / "topo" / "t4.json")
        << R"({"nodes": [0, 1, 2, 3], "edges": [[0, 1], [1, 2], [2, 3], [3, 0]]})";
    {
      std::ofstream csv(root / "cfg" / "data" / "d.csv");
      csv << "x,y,label\n";
      for (int i = 0; i < 200; ++i)
        csv << (i % 2 ? 1.0 : -1.0) + 0.01 * (i % 7) << "," << 0.02 * (i % 5) << "," << i % 2
            << "\n";
    }
    std::ofstream(root / "cfg" / "c.json") << R"({"name": "paths", "topology": "topo/t4.json",
      "method": {"name": "dpsgd"}, "model": {"name": "logreg"},
      "data": {"dataset": "csv:data/d.csv", "partition": {"kind": "iid"}},
      "batch_size": 8, "rounds": 4, "eval": {"every": 2}})";
    const std::string in_work = "cd " + (root / "work").string() + " && " + cli_test::rumor_path();

    const auto r = shell(in_work + " launch ../cfg/c.json --inprocess --no-progress");
    INFO(r.out);
    REQUIRE(r.code == 0);
    // output.dir stays relative to the working directory.
    const auto run_dir = only_run(root / "work" / "runs");
    json record;
    std::ifstream(run_dir / "config.json") >> record;
    CHECK(record["data"]["dataset"] == "csv:" + (root / "cfg" / "data" / "d.csv").string());
    CHECK(record["rumor"]["paths_as_written"]["data.dataset"] == "csv:data/d.csv");

    // The recorded config runs from any folder, as the same run.
    fs::create_directories(root / "other");
    const auto again =
        shell("cd " + (root / "other").string() + " && " + cli_test::rumor_path() + " launch " +
              (run_dir / "config.json").string() + " --inprocess --no-progress");
    INFO(again.out);
    REQUIRE(again.code == 0);
    CHECK(fs::exists(root / "other" / "runs" / run_dir.filename() / "summary.json"));

    // --set paths are relative to where the command runs.
    const auto bad = shell(in_work + " launch ../cfg/c.json --inprocess --no-progress" +
                           " --set topology=topo/t4.json");
    CHECK(bad.code != 0);
    CHECK(bad.out.find((root / "work" / "topo" / "t4.json").string()) != std::string::npos);
    const auto good = shell("cd " + (root / "cfg").string() + " && " + cli_test::rumor_path() +
                            " launch c.json --inprocess --no-progress --set topology=topo/t4.json" +
                            " --set output.dir=" + (root / "work" / "runs2").string());
    INFO(good.out);
    CHECK(good.code == 0);
  }

  TEST_CASE("the shipped quickstart config runs from any working directory") {
    const auto dir = scratch("quickstart-cwd");
    const auto r = shell("cd " + dir.string() + " && " + cli_test::rumor_path() + " launch " +
                         cli_test::src("experiments/quickstart.json") +
                         " --inprocess --no-progress --set rounds=2 --set eval.every=2");
    INFO(r.out);
    REQUIRE(r.code == 0);
    CHECK(fs::exists(only_run(dir / "runs") / "summary.json"));
  }
}
