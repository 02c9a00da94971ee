// All peers of a run in this process, over the in-process transport, on a small thread
// pool: each round runs phase by phase for every peer (local steps, then each exchange
// stage), so no peer ever blocks and hundreds of peers fit on two cores. Results do not
// depend on scheduling: every peer's arithmetic sees its inputs in a fixed order.
#include <chrono>
#include <filesystem>

#include "progress.hpp"
#include "rumor/common/log.hpp"
#include "rumor/common/thread_pool.hpp"
#include "rumor/net/inproc.hpp"
#include "rumor/run/peer.hpp"
#include "rumor/run/run.hpp"
#include "rumor/run/setup.hpp"
#include "rumor/train/model.hpp"

namespace rumor::run {

RunResult run_inprocess(const config::Config& cfg, const RunOptions& options) {
  const auto t0 = std::chrono::steady_clock::now();
  const Topology topology = topology_of(cfg);
  const int n = topology.size();
  const std::string run_dir = cfg.run_dir();
  const std::int64_t resume_round = options.resume ? resume_point(run_dir, n) : -1;
  if (options.write_files && !options.resume) {
    std::filesystem::create_directories(run_dir);
    write_config_record(cfg, run_dir);
  }
  train::set_compute_threads(1);  // peers share the cores: one compute thread each

  const auto dataset = load_data(cfg);
  data::Partition partition;
  if (dataset) partition = partition_of(cfg, *dataset, n);

  net::InProcNetwork network;
  std::vector<std::unique_ptr<net::Transport>> transports;
  auto topts = transport_options(cfg);
  for (int i = 0; i < n; ++i) transports.push_back(network.make_transport(topts));
  for (int i = 0; i < n; ++i) transports[i]->start(topology, i);
  for (int i = 0; i < n; ++i) transports[i]->wait_connected();

  ThreadPool pool(options.threads > 0 ? static_cast<std::size_t>(options.threads) : 0);
  std::vector<std::unique_ptr<Peer>> peers(n);
  pool.parallel_for(n, [&](std::size_t i) {
    PeerSetup s;
    s.config = &cfg;
    s.topology = &topology;
    s.id = static_cast<int>(i);
    s.dataset = dataset;
    if (dataset) s.shard = partition.nodes[i];
    s.transport = transports[i].get();
    s.run_dir = run_dir;
    s.write_files = options.write_files;
    s.resume_round = resume_round;
    peers[i] = std::make_unique<Peer>(s);
  });

  const std::int64_t rounds = cfg.get<std::int64_t>("rounds");
  const auto timeout = std::chrono::milliseconds(
      static_cast<std::int64_t>(cfg.get<double>("network.round_timeout_s") * 1000));
  Progress progress(rounds, options.progress);
  double last_acc = -1;
  std::int64_t r = resume_round + 1;
  for (; r < rounds; ++r) {
    pool.parallel_for(n, [&](std::size_t i) { peers[i]->local(r); });
    std::vector<gossip::PeerIo> io;
    for (auto& p : peers) io.push_back(p->method_io());
    gossip::run_phased(io, r, pool, timeout);
    if (peers[0]->eval_round(r)) {
      io.clear();
      for (auto& p : peers) {
        p->prepare_eval(r);
        io.push_back(p->eval_io());
      }
      gossip::run_phased(io, r, pool, timeout);
    }
    pool.parallel_for(n, [&](std::size_t i) {
      peers[i]->finish_round(r);
      if (peers[i]->checkpoint_due(r)) peers[i]->save_checkpoint(r);
    });

    nlohmann::json mean = {{"round", r}};
    double loss = 0, acc = 0, bytes = 0;
    int accs = 0;
    for (auto& p : peers) {
      const auto& l = p->last_metrics();
      loss += l.value("loss", 0.0);
      bytes += l.value("bytes_sent", 0.0);
      if (l.contains("test_acc")) {
        acc += l["test_acc"].get<double>();
        ++accs;
      }
    }
    mean["loss"] = loss / n;
    mean["mb_sent"] = bytes / 1e6;
    if (accs) {
      last_acc = acc / accs;
      mean["test_acc"] = last_acc;
    }
    if (options.on_round) options.on_round(r, mean);
    progress.update(r + 1, loss / n, last_acc, bytes / 1e6);
    if (r == options.stop_after) break;
  }
  progress.finish();
  if (options.write_files && r >= rounds)
    peers[0]->save_average_model((std::filesystem::path(run_dir) / "model.pt").string());
  for (auto& t : transports) t->stop();

  RunResult result;
  result.run_dir = run_dir;
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (auto& p : peers) result.last_lines.push_back(p->last_metrics());
  if (options.write_files) result.summary = summarize(run_dir);
  return result;
}

}  // namespace rumor::run
