// One peer per process over TCP (`rumor node`, and each process `rumor launch` starts).
#include <signal.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "progress.hpp"
#include "rumor/common/error.hpp"
#include "rumor/common/log.hpp"
#include "rumor/gossip/allreduce.hpp"
#include "rumor/net/tcp.hpp"
#include "rumor/run/peer.hpp"
#include "rumor/run/run.hpp"
#include "rumor/run/setup.hpp"
#include "rumor/train/model.hpp"

namespace rumor::run {

int node_id_from_env(int cli_id) {
  if (cli_id >= 0) return cli_id;
  for (const char* var : {"RANK", "OMPI_COMM_WORLD_RANK", "SLURM_PROCID", "PMI_RANK"}) {
    if (const char* v = std::getenv(var); v && *v) {
      char* end = nullptr;
      const long id = std::strtol(v, &end, 10);
      if (*end != '\0' || id < 0)
        throw ConfigError(std::string("environment variable ") + var + "='" + v +
                          "' is not a node id (a non-negative integer)");
      return static_cast<int>(id);
    }
  }
  throw ConfigError(
      "no node id: pass --id I, or start under mpirun / srun (RANK, "
      "OMPI_COMM_WORLD_RANK or SLURM_PROCID)");
}

RunResult run_node(const config::Config& cfg, int id, const RunOptions& options) {
  const auto t0 = std::chrono::steady_clock::now();
  const Topology topology = topology_of(cfg);
  if (id < 0 || id >= topology.size())
    throw ConfigError("node id " + std::to_string(id) + " is not in topology '" + topology.name() +
                      "' (ids 0.." + std::to_string(topology.size() - 1) + ")");
  const std::string run_dir = cfg.run_dir();
  std::filesystem::create_directories(run_dir);
  const std::int64_t resume_round = options.resume ? resume_point(run_dir, topology.size()) : -1;
  if (id == 0 && !options.resume) write_config_record(cfg, run_dir);
  if (!std::getenv("RUMOR_LAUNCHED"))
    log::set_file(
        (std::filesystem::path(run_dir) / ("node-" + std::to_string(id) + ".log")).string());
  log::set_prefix("node " + std::to_string(id));
  train::set_compute_threads(std::max(1, options.threads));

  const auto dataset = load_data(cfg);
  std::vector<std::size_t> shard;
  if (dataset) shard = partition_of(cfg, *dataset, topology.size()).nodes[id];

  net::TcpTransport transport(transport_options(cfg));
  transport.set_event_handler([](const net::LinkEvent& e) {
    if (e.type != net::LinkEventType::kUp)
      log::warn("link to peer ", e.peer, " (", net::to_string(e.link),
                "): ", net::to_string(e.type), e.detail.empty() ? "" : ": " + e.detail);
  });
  const auto& me = topology.node(id);
  log::info("run ", cfg.run_id(), ": node ", id, " of ", topology.size(), " on ", me.host, ":",
            me.port, ", connecting to ", topology.peers(id).size(), " neighbours");
  transport.start(topology, id);
  transport.wait_connected();
  log::info("all links up");

  PeerSetup s;
  s.config = &cfg;
  s.topology = &topology;
  s.id = id;
  s.dataset = dataset;
  s.shard = std::move(shard);
  s.transport = &transport;
  s.run_dir = run_dir;
  s.resume_round = resume_round;
  Peer peer(s);

  const std::int64_t rounds = cfg.get<std::int64_t>("rounds");
  const auto timeout = std::chrono::milliseconds(
      static_cast<std::int64_t>(cfg.get<double>("network.round_timeout_s") * 1000));
  for (std::int64_t r = resume_round + 1; r < rounds; ++r) {
    peer.local(r);
    gossip::run_blocking(peer.method_io(), r, timeout);
    if (peer.eval_round(r)) {
      peer.prepare_eval(r);
      gossip::run_blocking(peer.eval_io(), r, timeout);
    }
    peer.finish_round(r);
    if (peer.checkpoint_due(r)) peer.save_checkpoint(r);
    if (cfg.at("faults.kill_node") == id && cfg.get<std::int64_t>("faults.kill_round") == r) {
      log::warn("fault injection: killing this node after round ", r + 1);
      ::raise(SIGKILL);
    }
  }
  if (id == 0) peer.save_average_model((std::filesystem::path(run_dir) / "model.pt").string());

  // Stop barrier on the control ring: once it completes, every node has finished its last
  // round, so closing links loses nothing anyone still waits for.
  std::vector<float> token(1, 0.0f);
  gossip::RingAllreduce barrier(id, topology.size(), gossip::kAllreduceKind + 2000);
  barrier.begin(token);
  gossip::Traffic ignored;
  gossip::run_blocking({&barrier, &transport, &ignored}, rounds, timeout);
  // Our last barrier message may still sit in a send queue: give it time to leave.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  transport.stop();
  log::info("finished ", rounds, " rounds");

  RunResult result;
  result.run_dir = run_dir;
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  result.last_lines.push_back(peer.last_metrics());
  return result;
}

}  // namespace rumor::run
