#pragma once
// Starting one peer of `rumor launch` as a child process: a fork that calls the node entry
// directly (LibTorch and the data set are already loaded in the launcher and shared
// copy-on-write), or a fork that execs `rumor node` when that is not safe or asked for.
#include <sys/types.h>

#include <string>
#include <vector>

#include "rumor/run/run.hpp"

namespace rumor::run {

// What every peer process is started with.
struct PeerCommand {
  std::string exe;
  std::string config_path;  // the recorded config.json when resuming
  std::vector<std::string> overrides;
  std::string run_dir;
  bool resume = false;
  bool sched_batch = true;         // peers under SCHED_BATCH (LaunchOptions::sched_batch)
  LaunchOptions::NodeEntry entry;  // empty: every peer execs `exe`
};

// Whether peers may start as forks calling `entry`: it is set and RUMOR_LAUNCH_EXEC is not 1.
bool fork_start_wanted(const LaunchOptions::NodeEntry& entry);

// Starts peer i (stderr to RUNDIR/node-<i>.log, stdout and stdin /dev/null, its own process
// group, RUMOR_LAUNCHED=1, SCHED_BATCH when c.sched_batch). `rejoin`: a restart of a peer
// that died (on_peer_failure continue). Forks and calls c.entry when it is set and this process
// runs one thread only (a fork copies only the calling thread); else execs `rumor node`.
pid_t spawn_peer(const PeerCommand& c, int i, bool rejoin);

}  // namespace rumor::run
