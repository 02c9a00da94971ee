#pragma once
// `rumor bench net`: transport benchmarks whose definitions match the gloo baseline
// bench/gloo_gossip.py, so the two compare in one run.
//  - pair:    two peers on loopback (one process, two transports); one repeat = a message of
//             D floats from peer 0 to peer 1 and the same message back; gbps = payload bytes
//             moved (2 * 4D) / time, median/min/max over repeats.
//  - ring:    N peer processes; one round = send x to both ring neighbours, wait for both
//             neighbours' vectors, x = (x + l + r) / 3.
//  - pushsum: N peer processes; one-peer exponential graph, round t sends (x/2, w/2) to
//             rank + 2^(t mod log2 N), receives from rank - 2^(t mod log2 N), x += recv.
// Ring and pushsum rounds start together as in gloo_gossip.py's synced mode: a barrier
// before each round (not timed), then each node times its own round from leaving it; a
// round's time is the slowest node's; median/min/max over rounds. The JSON also gives the
// span (first start to last end over nodes) for the stricter reading.
// transport: tcp keeps every link on its socket; shm lets the data links of these co-located
// peers move to shared-memory rings (network.shm auto, with a fresh run secret).
#include <cstddef>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace rumor::bench {

struct NetBenchOptions {
  std::string mode = "pair";  // pair, ring, pushsum
  int nodes = 8;
  std::size_t floats = 10'000'000;
  int rounds = 20;                // ring/pushsum: measured rounds (after 2 warm-up rounds)
  int repeats = 10;               // pair: measured repeats (after 1 warm-up)
  bool tls = false;               // pair: both links over TLS 1.3 (a fresh run secret's key)
  std::string transport = "tcp";  // tcp or shm
  std::string exe;  // ring/pushsum: binary re-executed as `EXE bench net --worker ...`
  double timeout_s = 300;
};

// Runs the benchmark and returns its figures. Throws Error on failure.
nlohmann::json run_net_bench(const NetBenchOptions& options);

struct NetBenchWorker {
  std::string mode;
  int id = 0;
  int nodes = 0;
  std::size_t floats = 0;
  int rounds = 0;
  std::vector<int> ports;
  std::string secret_file;  // shm: the run secret the workers share
  std::string out;          // JSON file with this worker's per-round times
};
// One peer process of ring/pushsum mode. Returns the process exit code.
int run_net_bench_worker(const NetBenchWorker& worker);

}  // namespace rumor::bench
