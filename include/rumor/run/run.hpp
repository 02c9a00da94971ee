#pragma once
// Running a decentralized experiment: all peers in one process (in-process transport, a
// thread pool), one peer per process over TCP (`rumor node`), or a launcher that starts
// every peer of the topology as a process on this machine (`rumor launch`).
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "rumor/config/config.hpp"

namespace rumor::run {

struct RunOptions {
  int threads = 0;          // in-process: pool threads (0: one per core)
  bool progress = true;     // a live progress line on stderr
  bool write_files = true;  // false: metrics in memory only (tests)
  // Continue the run in config.run_dir() from the last round every node has checkpointed.
  bool resume = false;
  // TCP node: a restarted peer rejoining a run that went on without it (on_peer_failure
  // continue); see run_node.
  bool rejoin = false;
  // Stop after this round as if the process had died (tests of resume); -1: run to the end.
  std::int64_t stop_after = -1;
  // Called after every round with the mean metrics over nodes (in-process only).
  std::function<void(std::int64_t round, const nlohmann::json& mean)> on_round;
};

struct RunResult {
  std::string run_dir;
  double seconds = 0.0;
  nlohmann::json summary;                  // as in summary.json
  std::vector<nlohmann::json> last_lines;  // each node's last metrics line
};

// All peers in this process over the in-process transport, deterministic for a seed.
RunResult run_inprocess(const config::Config& config, const RunOptions& options = {});

// This process is node `id` of the topology, over TCP.
RunResult run_node(const config::Config& config, int id, const RunOptions& options = {});

// The node id from --id, or else from RANK, OMPI_COMM_WORLD_RANK or SLURM_PROCID.
// Throws ConfigError when none is set.
int node_id_from_env(int cli_id);
// `rumor node --leave`: asks node `id` of this config's run, running on this machine, to leave
// gracefully (on_peer_failure continue): SIGTERM to the process its pid file
// (<run dir>/node-<id>.pid) names. Throws Error saying what is missing.
void request_leave(const config::Config& config, int id);

struct LaunchOptions {
  std::string config_path;
  std::string resume_dir;  // non-empty: continue this run directory from its checkpoints
  std::vector<std::string> overrides;
  bool progress = true;
  // Peers under Linux's SCHED_BATCH policy: a woken peer waits for the running one's slice
  // instead of preempting it (fewer switches when peers outnumber cores).
  bool sched_batch = true;
  // Runs `rumor ARGS` in this process (args[0] is the program name) and returns its exit
  // code; the CLI hands it in, so this library does not depend on the CLI. When set, each
  // peer is a fork of the launcher that calls it, sharing the launcher's loaded LibTorch and
  // data set; unset, or with RUMOR_LAUNCH_EXEC=1 in the environment, or while the launcher
  // runs more than one thread, each peer execs `rumor node`.
  using NodeEntry = std::function<int(const std::vector<std::string>& args)>;
  NodeEntry node_entry;
};
// Starts every peer as a child process on this machine and waits; returns the exit code.
int launch(const LaunchOptions& options);
// Flushes what is buffered and ends the process with `code`: no destructors, no atexit
// handlers (a forked peer's objects belong to the launcher; a launcher's teardown after
// forking writes to pages it shares copy-on-write).
[[noreturn]] void end_process(int code);

// Reads node-*.jsonl of a run directory and writes summary.json and summary.csv.
nlohmann::json summarize(const std::string& run_dir);
// A short human-readable report of a summary.
std::string summary_text(const nlohmann::json& summary);

// The round a resumed run continues after: the last one all n nodes have a good
// checkpoint for (checkpoint.hpp, find_resume_point). Warns for each newer round passed
// over because a file is bad; throws Error naming the directory when there is none.
std::int64_t resume_point(const std::string& run_dir, int n);
// The config recorded in a run directory (its config.json), for --resume.
config::Config recorded_config(const std::string& run_dir);

// Writes config.json (the resolved config, version and git revision) into run_dir.
void write_config_record(const config::Config& config, const std::string& run_dir);

}  // namespace rumor::run
