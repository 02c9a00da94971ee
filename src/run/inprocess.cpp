// All peers of a run in this process, over the in-process transport, on a small thread
// pool: each round runs phase by phase for every peer (local steps, then each exchange
// stage), so no peer ever blocks and hundreds of peers fit on two cores. Results do not
// depend on scheduling: every peer's arithmetic sees its inputs in a fixed order.
//
// Time is simulated: each peer has a clock that its local steps advance (sim.step_s times
// its slowdown, faults.slow_nodes) and that waiting for a message moves to the message's
// arrival (send time + latency + size / bandwidth on its link, links.*), at most
// network.round_timeout_s past the start of the wait. Lost and late messages are not
// waited for beyond that deadline (see gossip::run_phased). Nothing depends on the
// machine's speed, so runs are deterministic for a seed.
//
// Fault schedule: faults.kill_node stops participating after faults.kill_round; with
// on_peer_failure continue its neighbours mark it down and the survivors go on (exact
// averages for evaluation are then taken over the live peers directly). With
// faults.restart_round it rejoins after that round, taking a live neighbour's model
// through the method's rejoin hand-over. Membership changes (standby nodes, faults.join,
// faults.leave, faults.pause) happen at round boundaries (membership.hpp).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <set>

#include "async_run.hpp"
#include "fault_options.hpp"
#include "link_model.hpp"
#include "membership.hpp"
#include "progress.hpp"
#include "round.hpp"
#include "rumor/common/error.hpp"
#include "rumor/common/log.hpp"
#include "rumor/common/thread_pool.hpp"
#include "rumor/gossip/ring_allreduce.hpp"
#include "rumor/net/inproc.hpp"
#include "rumor/run/memory.hpp"
#include "rumor/run/peer.hpp"
#include "rumor/run/run.hpp"
#include "rumor/run/setup.hpp"
#include "rumor/train/model.hpp"

namespace rumor::run {
namespace {

net::LinkParams link_params(const nlohmann::json& j, const net::LinkParams& defaults,
                            const std::string& where) {
  net::LinkParams p = defaults;
  for (const auto& [k, v] : j.items()) {
    if (k == "from" || k == "to" || k == "directed") continue;
    if (!v.is_number())
      throw ConfigError(where + ": \"" + k + "\" must be a number, got " + v.dump());
    if (k == "latency_s")
      p.latency_s = v.get<double>();
    else if (k == "bandwidth_MBps")
      p.bandwidth_Bps = v.get<double>() * 1e6;
    else if (k == "loss")
      p.loss = v.get<double>();
    else
      throw ConfigError(where + ": unknown key \"" + k +
                        "\"; valid: from, to, latency_s, bandwidth_MBps, loss, directed");
  }
  if (p.latency_s < 0 || p.bandwidth_Bps < 0 || p.loss < 0 || p.loss >= 1)
    throw ConfigError(where + ": latency_s and bandwidth_MBps must be >= 0 and loss in [0, 1)");
  return p;
}

}  // namespace

net::LinkModel link_model(const config::Config& cfg, const Topology& topology) {
  net::LinkModel m;
  m.simulated = true;
  m.seed = cfg.get<std::uint64_t>("seed");
  const nlohmann::json defaults = {{"latency_s", cfg.get<double>("links.latency_s")},
                                   {"bandwidth_MBps", cfg.get<double>("links.bandwidth_MBps")},
                                   {"loss", cfg.get<double>("links.loss")}};
  static_cast<net::LinkParams&>(m) = link_params(defaults, {}, cfg.origin() + ": links");
  const auto& list = cfg.at("links.overrides");
  for (std::size_t i = 0; i < list.size(); ++i) {
    const std::string where = cfg.origin() + ": links.overrides[" + std::to_string(i) + "]";
    const auto& o = list[i];
    if (!o.is_object() || !o.contains("from") || !o.contains("to") ||
        !o["from"].is_number_integer() || !o["to"].is_number_integer())
      throw ConfigError(where + " must be an object with integer \"from\" and \"to\" node ids");
    const int from = o["from"], to = o["to"];
    const auto peers = topology.peers(from);
    if (std::find(peers.begin(), peers.end(), to) == peers.end())
      throw ConfigError(where + ": nodes " + std::to_string(from) + " and " + std::to_string(to) +
                        " are not neighbours in topology '" + topology.name() + "'");
    const auto p = link_params(o, m, where);
    m.overrides[{from, to}] = p;
    if (!o.value("directed", false)) m.overrides[{to, from}] = p;
  }
  return m;
}

namespace {

// Exact average of the live peers' models, in id order (deterministic).
std::vector<float> live_average(const std::vector<std::unique_ptr<Peer>>& peers,
                                const std::vector<char>& alive) {
  std::vector<double> sum;
  int count = 0;
  for (std::size_t i = 0; i < peers.size(); ++i) {
    if (!alive[i]) continue;
    const auto m = peers[i]->model();
    sum.resize(m.size(), 0.0);
    for (std::size_t k = 0; k < m.size(); ++k) sum[k] += m[k];
    ++count;
  }
  std::vector<float> out(sum.size());
  for (std::size_t k = 0; k < sum.size(); ++k) out[k] = static_cast<float>(sum[k] / count);
  return out;
}

// Lost or late messages, after the last round (its metrics are written): what is in flight
// is delivered, so push-sum can be checked for conservation of mass without touching the
// results. Methods that absorb late messages get one schedule period of exchanges without
// loss (a running sum lost on an edge is repaired by the edge's next message), then every
// message still on its way. False for methods that drop late messages (nothing to do).
bool deliver_in_flight(std::int64_t rounds, const Topology& topology,
                       const std::vector<gossip::PeerIo>& io, net::InProcNetwork& network,
                       ThreadPool& pool, std::chrono::milliseconds timeout) {
  const auto any = std::find_if(io.begin(), io.end(), [](auto& p) { return p.exchange; });
  if (any == io.end() || !any->exchange->absorbs_early()) return false;
  network.set_lossless(true);
  for (int k = 0; k < topology.period(); ++k) gossip::run_phased(io, rounds + k, pool, timeout);
  pool.parallel_for(io.size(), [&](std::size_t i) {
    gossip::sim_flush(io[i], rounds + topology.period(), std::numeric_limits<double>::infinity());
  });
  network.set_lossless(false);
  return true;
}

// The phased driver: the steps of round.hpp, each for every live peer at once.
class InProcRun {
 public:
  InProcRun(const config::Config& cfg, const RunOptions& options)
      : cfg_(cfg),
        options_(options),
        topology_(topology_of(cfg)),
        n_(topology_.size()),
        faults_(FaultOptions::parse(cfg, topology_)),
        run_dir_(cfg.run_dir()),
        links_(link_model(cfg, topology_)),  // checked before the slow part
        network_(links_),
        pool_(options.threads > 0 ? static_cast<std::size_t>(options.threads) : 0),
        alive_(n_, 1),
        progress_(cfg.get<std::int64_t>("rounds"), options.progress),
        membership_(faults_, topology_, cfg.get<std::int64_t>("rounds")) {
    if (options.resume) resume_round_ = resume_point(run_dir_, n_);
    if (options.write_files && !options.resume) {
      std::filesystem::create_directories(run_dir_);
      write_config_record(cfg, run_dir_);
    }
    if (faults_.adaptive_deadline)
      log::warn(
          "network.round_deadline adaptive applies to TCP runs; in-process nodes wait "
          "network.round_timeout_s simulated seconds for a message");
    train::set_compute_threads(1);  // peers share the cores: one compute thread each
    start_peers();
    if (membership_.active()) {
      if (options.resume)
        throw ConfigError(cfg.origin() +
                          ": resuming a run with membership changes (standby nodes, "
                          "faults.join, faults.leave, faults.pause) is not supported");
      InProcPeers p = members();
      membership_.start(p);
    }
  }

  std::int64_t first_round() const { return resume_round_ + 1; }
  std::int64_t boundary(std::int64_t r) {
    if (!membership_.active()) return r;
    InProcPeers p = members();
    membership_.boundary(r, p);
    return r;
  }
  // Each peer sends its first stage right after its local step (it reads only its own
  // state; receivers take nothing before every peer has sent): a pass of the pool less.
  void local(std::int64_t r) {
    const auto io = method_io();
    const bool send = gossip::phased_stages(io, r) > 0;
    pool_.parallel_for(n_, [&](std::size_t i) {
      if (!alive_[i]) return;
      peers_[i]->local(r);
      if (send) gossip::send_first_stage(io[i], r);
    });
  }
  // Outside evaluation rounds (whose exact average needs every peer's exchange done first),
  // each peer's metrics line is written as soon as its own exchange is done: a pass less.
  void exchange(std::int64_t r) {
    std::function<void(std::size_t)> finish;
    if (!eval_round(r))
      finish = [&](std::size_t i) {
        if (alive_[i]) peers_[i]->finish_round(r);
      };
    gossip::run_phased(method_io(), r, pool_, faults_.round_timeout, /*first_sent=*/true, finish);
    finished_ = finish ? r : -1;
  }
  bool eval_round(std::int64_t r) const { return peers_[0]->eval_round(r); }
  void evaluate(std::int64_t r);
  void record(std::int64_t r);
  void checkpoint(std::int64_t r) {
    bool due = false;
    for (int i = 0; i < n_ && !due; ++i) due = alive_[i] && peers_[i]->checkpoint_due(r);
    if (!due) return;
    pool_.parallel_for(n_, [&](std::size_t i) {
      if (alive_[i] && peers_[i]->checkpoint_due(r)) peers_[i]->save_checkpoint(r);
    });
  }
  bool after(std::int64_t r);
  RunResult finish(std::int64_t end, double seconds);

 private:
  void start_peers();
  std::vector<gossip::PeerIo> method_io() {
    std::vector<gossip::PeerIo> io;
    for (int i = 0; i < n_; ++i)
      io.push_back(alive_[i] ? peers_[i]->method_io() : gossip::PeerIo{});
    return io;
  }
  void write_in_flight();
  InProcPeers members() { return {peers_, alive_, transports_}; }

  const config::Config& cfg_;
  const RunOptions& options_;
  const Topology topology_;
  const int n_;
  const FaultOptions faults_;
  const std::string run_dir_;
  std::int64_t resume_round_ = -1;
  const net::LinkModel links_;
  net::InProcNetwork network_;
  std::vector<std::unique_ptr<net::Transport>> transports_;
  ThreadPool pool_;
  std::vector<std::unique_ptr<Peer>> peers_;
  std::vector<char> alive_;
  Progress progress_;
  Membership membership_;
  double last_acc_ = -1;
  std::int64_t finished_ = -1;  // the last round whose metrics lines exchange() wrote
};

void InProcRun::start_peers() {
  MemoryPlan plan;
  plan.peers = n_;
  plan.available = memory_available();
  const std::uint64_t before = heap_in_use();
  const auto dataset = load_data(cfg_);
  plan.shared = heap_growth(before);
  data::Partition partition;
  if (dataset) partition = partition_of(cfg_, *dataset, n_);
  const auto topts = transport_options(cfg_);
  const std::uint64_t links_before = heap_in_use();
  for (int i = 0; i < n_; ++i) transports_.push_back(network_.make_transport(topts));
  for (int i = 0; i < n_; ++i) transports_[i]->start(topology_, i);
  for (int i = 0; i < n_; ++i) transports_[i]->wait_connected();
  plan.per_peer = heap_growth(links_before) / static_cast<std::uint64_t>(n_);
  peers_.resize(n_);
  auto make = [&](std::size_t i) {
    PeerSetup s = peer_setup(cfg_, faults_, topology_, static_cast<int>(i), dataset,
                             dataset ? &partition : nullptr, run_dir_);
    s.transport = transports_[i].get();
    s.write_files = options_.write_files;
    s.resume_round = resume_round_;
    s.simulated = true;
    peers_[i] = std::make_unique<Peer>(s);
  };
  // Peer 0 pays the libraries' one-time costs; peer 1, built alone on this thread, is
  // measured, and the run refused before the rest is built if it cannot fit.
  const std::size_t first = std::min<std::size_t>(2, static_cast<std::size_t>(n_));
  for (std::size_t i = 0; i < first; ++i) {
    const std::uint64_t start = heap_in_use();
    make(i);
    if (i + 1 == first)
      plan.per_peer += heap_growth(start) + peers_[i]->model().size() * sizeof(float);
  }
  log::info("memory: ", plan.describe());
  check_fits(plan);
  pool_.parallel_for(n_ - first, [&](std::size_t i) { make(i + first); });
}

// Every peer alive: the ring all-reduce's sum, computed at once over all buffers (the same
// floats and control-plane counters as its 2 (n - 1) stages of messages, which would cost
// O(n^2) messages: 200 million for 10,000 peers).
void InProcRun::evaluate(std::int64_t r) {
  if (std::all_of(alive_.begin(), alive_.end(), [](char a) { return a; })) {
    std::vector<std::span<float>> buffers(n_);
    pool_.parallel_for(n_, [&](std::size_t i) {
      peers_[i]->prepare_eval(r);
      buffers[i] = peers_[i]->eval_buffer();
      gossip::RingAllreduce::count_traffic(static_cast<int>(i), n_, buffers[i].size(), r,
                                           net::MessageKind::kEvalAverage, net::LinkKind::kControl,
                                           peers_[i]->ctrl_traffic());
    });
    gossip::RingAllreduce::sum_in_place(buffers, pool_);
    return;
  }
  const auto mean = live_average(peers_, alive_);
  for (int i = 0; i < n_; ++i)
    if (alive_[i]) peers_[i]->set_average(mean);
}

// Metrics lines, then the mean over live peers for the progress line and on_round.
void InProcRun::record(std::int64_t r) {
  if (finished_ != r)
    pool_.parallel_for(n_, [&](std::size_t i) {
      if (alive_[i]) peers_[i]->finish_round(r);
    });
  nlohmann::json mean = {{"round", r}};
  double loss = 0, acc = 0, bytes = 0, sim = 0, weight = 0;
  int accs = 0, live = 0;
  for (int i = 0; i < n_; ++i) {
    if (!alive_[i]) continue;
    const auto& l = peers_[i]->last_metrics();
    ++live;
    loss += l.value("loss", 0.0);
    bytes += l.value("bytes_sent", 0.0);
    sim = std::max(sim, l.value("sim_time_s", 0.0));
    weight += peers_[i]->method().weight();
    if (l.contains("test_acc")) {
      acc += l["test_acc"].get<double>();
      ++accs;
    }
  }
  mean["loss"] = loss / live;
  mean["mb_sent"] = bytes / 1e6;
  mean["sim_time_s"] = sim;
  mean["live"] = live;
  if (!std::isnan(weight)) mean["ps_weight_sum"] = weight;  // over the live peers
  if (accs) {
    last_acc_ = acc / accs;
    mean["test_acc"] = last_acc_;
  }
  if (options_.on_round) options_.on_round(r, mean);
  progress_.update(r + 1, loss / live, last_acc_, bytes / 1e6);
}

// The fault schedule: faults.kill_node stops after kill_round, comes back after
// restart_round.
bool InProcRun::after(std::int64_t r) {
  if (r == options_.stop_after) return false;
  const auto& f = faults_;
  if (f.kill_node && r == f.kill_round) {
    if (!f.keep_going)
      throw Error("node " + std::to_string(*f.kill_node) + " died after round " +
                  std::to_string(r + 1) +
                  " (faults.kill_node) and on_peer_failure is stop; set on_peer_failure to "
                  "continue to keep the other nodes training");
    for (int k : f.kill_set()) {
      alive_[k] = 0;
      peers_[k]->log("fault injection: stopped after round " + std::to_string(r + 1));
      log::warn("node ", k, " stopped after round ", r + 1,
                " (fault injection); its neighbours continue without it");
      for (int j : topology_.peers(k))
        if (alive_[j]) peers_[j]->method().set_peer_down(k, r + 1);
    }
  }
  if (f.kill_node && f.restart_round && r == *f.restart_round) {
    for (int k : f.kill_set()) {  // one at a time: a later one takes an earlier one's offer
      alive_[k] = 1;
      InProcPeers p = members();
      rejoin_inprocess(p, topology_, k, r + 1, false);
      log::info("node ", k, " rejoined after round ", r + 1);
    }
  }
  return true;
}

// After a lossy run, what is in flight is delivered and push-sum's total weight written.
void InProcRun::write_in_flight() {
  double sum = 0;
  int live = 0;
  for (int i = 0; i < n_; ++i) {
    if (!alive_[i]) continue;
    sum += peers_[i]->method().weight();
    ++live;
  }
  if (!std::isnan(sum))
    std::ofstream(std::filesystem::path(run_dir_) / "in_flight.json")
        << nlohmann::json{{"nodes", live},
                          {"exchanges", topology_.period()},
                          {"ps_weight_sum", sum}}
               .dump(2)
        << "\n";
}

RunResult InProcRun::finish(std::int64_t end, double seconds) {
  progress_.finish();
  const std::int64_t rounds = cfg_.get<std::int64_t>("rounds");
  bool lossy = links_.loss > 0;
  for (const auto& [k, v] : links_.overrides) lossy = lossy || v.loss > 0;
  std::uint64_t late = 0;
  for (auto& p : peers_) late += p->traffic().msgs_late;
  if (end >= rounds && (lossy || late > 0) &&
      deliver_in_flight(rounds, topology_, method_io(), network_, pool_, faults_.round_timeout) &&
      options_.write_files)
    write_in_flight();
  if (options_.write_files && end >= rounds) {
    for (int i = 0; i < n_; ++i) {
      if (!alive_[i]) continue;
      peers_[i]->save_average_model((std::filesystem::path(run_dir_) / "model.pt").string());
      break;
    }
  }
  if (options_.write_files && membership_.active())
    std::ofstream(std::filesystem::path(run_dir_) / "membership.json")
        << membership_.record(end).dump(2) << "\n";
  for (auto& t : transports_) t->stop();
  RunResult result;
  result.run_dir = run_dir_;
  result.seconds = seconds;
  for (auto& p : peers_) result.last_lines.push_back(p->last_metrics());
  if (options_.write_files) result.summary = summarize(run_dir_);
  return result;
}

}  // namespace

RunResult run_inprocess(const config::Config& cfg, const RunOptions& options) {
  if (gossip::method_info(cfg.get<std::string>("method.name")).asynchronous)
    return run_async_inprocess(cfg, options);
  const auto t0 = std::chrono::steady_clock::now();
  InProcRun run(cfg, options);
  const std::int64_t end = run_rounds(run, run.first_round(), cfg.get<std::int64_t>("rounds"));
  return run.finish(end,
                    std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
}

}  // namespace rumor::run
