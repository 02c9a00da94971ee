// Starting a peer of `rumor launch`: the scheduling policy it runs under, on both ways a
// peer starts (a fork calling the node entry, a fork that execs the executable).
#include <doctest/doctest.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "peer_process.hpp"

using namespace rumor;
namespace fs = std::filesystem;

namespace {

// Exit code of peer 0 started with `c`, waited for.
int run_peer(const run::PeerCommand& c) {
  const pid_t pid = run::spawn_peer(c, 0, false);
  REQUIRE(pid > 0);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  return WEXITSTATUS(status);
}

// A directory for the peer's log and an executable that exits 0 exactly when it runs
// under `policy` (what a peer started by exec sees).
struct PeerDir {
  explicit PeerDir(const std::string& policy) {
    dir = fs::temp_directory_path() / ("rumor-peer-process-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    exe = (dir / "check-policy").string();
    std::ofstream(exe) << "#!/bin/sh\nchrt -p $$ | grep -q '" << policy << "$'\n";
    fs::permissions(exe, fs::perms::owner_all);
  }
  ~PeerDir() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  fs::path dir;
  std::string exe;
};

const char* policy_name(int policy) {
  switch (policy) {
    case SCHED_OTHER:
      return "SCHED_OTHER";
    case SCHED_BATCH:
      return "SCHED_BATCH";
    case SCHED_IDLE:
      return "SCHED_IDLE";
  }
  return "another policy";
}

}  // namespace

TEST_SUITE("run") {
  TEST_CASE("launch peers run under SCHED_BATCH unless asked to keep the launcher's policy") {
    const int own = ::sched_getscheduler(0);
    for (const bool batch : {true, false}) {
      CAPTURE(batch);
      const int want = batch ? SCHED_BATCH : own;
      PeerDir d(policy_name(want));
      run::PeerCommand c;
      c.exe = d.exe;
      c.config_path = "unused.json";
      c.run_dir = d.dir.string();
      c.sched_batch = batch;
      // Started by exec: the executable checks the policy it inherited.
      CHECK(run_peer(c) == 0);
      // Started by a fork calling the entry (or by exec when this process runs threads).
      c.entry = [want](const std::vector<std::string>&) {
        return ::sched_getscheduler(0) == want ? 0 : 3;
      };
      CHECK(run_peer(c) == 0);
    }
    CHECK(::sched_getscheduler(0) == own);  // the launcher keeps its own
  }
}
