#pragma once
// One peer of a run: its model (or vector, for task average), local training, consensus
// method, metrics and log. Drivers (node.cpp: one peer per process over TCP; inprocess.cpp:
// many peers on a thread pool) call its steps in order each round:
//   local(r);  exchange of method();  if eval_round(r): prepare_eval(r), exchange of
//   evaluation(), then finish_round(r).
// Thread safety: a peer is used by one thread at a time.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "rumor/config/config.hpp"
#include "rumor/data/dataset.hpp"
#include "rumor/data/partition.hpp"
#include "rumor/gossip/driver.hpp"
#include "rumor/gossip/method.hpp"
#include "rumor/gossip/ring_allreduce.hpp"
#include "rumor/net/transport.hpp"
#include "rumor/run/checkpoint.hpp"

namespace rumor::run {

struct FaultOptions;  // fault_options.hpp (run module)

struct PeerSetup {
  const config::Config* config = nullptr;
  const FaultOptions* faults = nullptr;  // parsed once by the driver, outlives the peer
  const Topology* topology = nullptr;
  int id = 0;
  std::shared_ptr<const data::Dataset> dataset;  // null for task average
  std::vector<std::size_t> shard;                // indices into dataset->train
  net::Transport* transport = nullptr;
  std::string run_dir;      // metrics and log go here
  bool write_files = true;  // false: keep metrics in memory only (tests)
  // >= 0: continue after this round from the peer's checkpoint (its metrics file is cut
  // back to that round and appended to).
  std::int64_t resume_round = -1;
  // In-process: simulated time (method_io() carries the peer's SimClock; local steps cost
  // sim.step_s times the node's slowdown; metrics lines get sim_time_s).
  bool simulated = false;
  // A restarted peer rejoining a run (on_peer_failure continue): its metrics file is
  // appended to, not rewritten.
  bool rejoin = false;
};

// The fields every driver fills the same way: config, faults, topology, id, data and its shard
// (`partition` may be null when the dataset is), run directory. The driver sets the transport,
// the resume round and its flags.
PeerSetup peer_setup(const config::Config& c, const FaultOptions& faults, const Topology& topology,
                     int id, std::shared_ptr<const data::Dataset> dataset,
                     const data::Partition* partition, const std::string& run_dir);

class Peer {
 public:
  explicit Peer(const PeerSetup& setup);
  ~Peer();
  Peer(const Peer&) = delete;
  Peer& operator=(const Peer&) = delete;

  int id() const;
  const Topology& topology() const;
  std::int64_t rounds() const;
  void local(std::int64_t round);
  gossip::PeerIo method_io();
  bool eval_round(std::int64_t round) const;
  // Copies the model into the all-reduce buffer and starts the exact average.
  void prepare_eval(std::int64_t round);
  // Instead of prepare_eval and the all-reduce: the exact average of the live models,
  // computed by an in-process driver (some peers are down).
  void set_average(std::span<const float> mean);
  gossip::PeerIo eval_io();
  // In-process, instead of eval_io()'s messages: the buffer prepare_eval filled, which the
  // driver sums over all peers at once as the ring would (RingAllreduce::sum_in_place), and
  // the control-plane counters the ring's messages would have added to.
  std::span<float> eval_buffer();
  gossip::Traffic& ctrl_traffic();
  // This eval round has no exact average (a peer is gone over TCP): finish_round reports
  // the test accuracy without consensus distance.
  void skip_average();
  // Evaluates (test accuracy, consensus distance on eval rounds) and writes the metrics line.
  // Returns the neighbours it left out of the mixing for refused messages
  // (network.max_rejects), from round + 1 on.
  std::vector<int> finish_round(std::int64_t round);
  // Checkpoints: every checkpoint.every rounds each peer writes its whole state (model,
  // optimizer, method buffers, counters, data position) atomically to
  // <run dir>/checkpoints/node-<i>-r<round>.ckpt, keeping the newest two.
  bool checkpoint_due(std::int64_t round) const;
  void save_checkpoint(std::int64_t round);
  // Writes model.pt from the last exact average (call on one node after the last round).
  void save_average_model(const std::string& path) const;
  // A peer that joins, or comes back, at `round` follows the run's learning-rate schedule
  // from that round's first step (not from its own step count: it would lag behind).
  void follow_schedule(std::int64_t round);

  // The model vector (z for push-sum) and the last metrics line, for drivers and tests.
  std::span<const float> model() const;
  const nlohmann::json& last_metrics() const;
  const gossip::Method& method() const;
  gossip::Method& method();
  gossip::Traffic& traffic();     // the method's traffic counters
  gossip::SimClock& sim_clock();  // meaningful when simulated
  void log(const std::string& line);

  struct Impl;

 private:
  void load_checkpoint(std::int64_t round);
  std::unique_ptr<Impl> impl_;
};

}  // namespace rumor::run
