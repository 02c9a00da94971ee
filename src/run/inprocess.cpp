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
// through the method's rejoin hand-over.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>

#include "progress.hpp"
#include "rumor/common/error.hpp"
#include "rumor/common/log.hpp"
#include "rumor/common/thread_pool.hpp"
#include "rumor/net/inproc.hpp"
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

// The links.* keys as a simulated-time link model.
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

// A restarted peer without a checkpoint rejoins through its live neighbours' offers.
void rejoin(std::vector<std::unique_ptr<Peer>>& peers, const std::vector<char>& alive,
            const Topology& topology, int k, std::int64_t round, net::Transport& transport) {
  Peer& me = *peers[k];
  me.sim_clock().inbox.clear();
  while (transport.take(net::MessageFilter{}, std::chrono::milliseconds(0))) {
    // what reached the dead node is gone with it
  }
  int offers = 0;
  for (int j : topology.peers(k)) {
    if (!alive[j]) continue;
    Peer& nb = *peers[j];
    auto request = me.method().rejoin_request(j, false);
    request.sender = k;
    me.traffic().add_sent(request);
    nb.traffic().add_recv(request);
    auto offer = nb.method().rejoin_offer(request, round);
    offer.sender = j;
    nb.traffic().add_sent(offer);
    me.traffic().add_recv(offer);
    me.method().rejoin_accept(offer);
    // The restarted node starts when its neighbours are (in simulated time).
    me.sim_clock().now_s = std::max(me.sim_clock().now_s, nb.sim_clock().now_s);
    ++offers;
  }
  if (offers == 0)
    throw Error("node " + std::to_string(k) + " cannot rejoin after round " +
                std::to_string(round) + ": none of its neighbours is alive");
  me.log("rejoined after round " + std::to_string(round) + " with " + std::to_string(offers) +
         " neighbour offer(s)");
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

}  // namespace

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

  const net::LinkModel model = link_model(cfg, topology);  // checked before the slow part
  const auto dataset = load_data(cfg);
  data::Partition partition;
  if (dataset) partition = partition_of(cfg, *dataset, n);

  net::InProcNetwork network(model);
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
    s.simulated = true;
    peers[i] = std::make_unique<Peer>(s);
  });

  // Fault schedule.
  const auto& kill = cfg.at("faults.kill_node");
  const int kill_node = kill.is_null() ? -1 : kill.get<int>();
  const std::int64_t kill_round = cfg.get<std::int64_t>("faults.kill_round");
  const auto& restart = cfg.at("faults.restart_round");
  const std::int64_t restart_round = restart.is_null() ? -1 : restart.get<std::int64_t>();
  const bool keep_going = cfg.get<std::string>("on_peer_failure") == "continue";
  if (kill_node >= n)
    throw ConfigError(cfg.origin() + ": faults.kill_node " + std::to_string(kill_node) +
                      " is not a node of topology '" + topology.name() + "'");
  if (kill_node >= 0 && restart_round >= 0 && restart_round <= kill_round)
    throw ConfigError(cfg.origin() + ": faults.restart_round must come after faults.kill_round");
  std::vector<char> alive(n, 1);
  if (cfg.get<std::string>("network.round_deadline") != "fixed")
    log::warn("network.round_deadline ", cfg.get<std::string>("network.round_deadline"),
              " applies to TCP runs; in-process nodes wait network.round_timeout_s simulated "
              "seconds for a message");

  const std::int64_t rounds = cfg.get<std::int64_t>("rounds");
  const auto timeout = std::chrono::milliseconds(
      static_cast<std::int64_t>(cfg.get<double>("network.round_timeout_s") * 1000));
  bool lossy = model.loss > 0;
  for (const auto& [k, v] : model.overrides) lossy = lossy || v.loss > 0;
  Progress progress(rounds, options.progress);
  double last_acc = -1;
  std::int64_t r = resume_round + 1;
  auto method_io = [&] {
    std::vector<gossip::PeerIo> io;
    for (int i = 0; i < n; ++i) io.push_back(alive[i] ? peers[i]->method_io() : gossip::PeerIo{});
    return io;
  };
  for (; r < rounds; ++r) {
    pool.parallel_for(n, [&](std::size_t i) {
      if (alive[i]) peers[i]->local(r);
    });
    auto io = method_io();
    gossip::run_phased(io, r, pool, timeout);
    const bool all_alive = std::all_of(alive.begin(), alive.end(), [](char a) { return a; });
    if (peers[0]->eval_round(r)) {
      if (all_alive) {
        io.clear();
        for (auto& p : peers) {
          p->prepare_eval(r);
          io.push_back(p->eval_io());
        }
        gossip::run_phased(io, r, pool, timeout);
      } else {
        const auto mean = live_average(peers, alive);
        for (int i = 0; i < n; ++i)
          if (alive[i]) peers[i]->set_average(mean);
      }
    }
    pool.parallel_for(n, [&](std::size_t i) {
      if (!alive[i]) return;
      peers[i]->finish_round(r);
      if (peers[i]->checkpoint_due(r)) peers[i]->save_checkpoint(r);
    });

    nlohmann::json mean = {{"round", r}};
    double loss = 0, acc = 0, bytes = 0, sim = 0;
    int accs = 0, live = 0;
    for (int i = 0; i < n; ++i) {
      if (!alive[i]) continue;
      const auto& l = peers[i]->last_metrics();
      ++live;
      loss += l.value("loss", 0.0);
      bytes += l.value("bytes_sent", 0.0);
      sim = std::max(sim, l.value("sim_time_s", 0.0));
      if (l.contains("test_acc")) {
        acc += l["test_acc"].get<double>();
        ++accs;
      }
    }
    mean["loss"] = loss / live;
    mean["mb_sent"] = bytes / 1e6;
    mean["sim_time_s"] = sim;
    if (accs) {
      last_acc = acc / accs;
      mean["test_acc"] = last_acc;
    }
    if (options.on_round) options.on_round(r, mean);
    progress.update(r + 1, loss / live, last_acc, bytes / 1e6);
    if (r == options.stop_after) break;

    if (kill_node >= 0 && r == kill_round) {
      if (!keep_going)
        throw Error("node " + std::to_string(kill_node) + " died after round " +
                    std::to_string(r + 1) +
                    " (faults.kill_node) and on_peer_failure is stop; set on_peer_failure to "
                    "continue to keep the other nodes training");
      alive[kill_node] = 0;
      peers[kill_node]->log("fault injection: stopped after round " + std::to_string(r + 1));
      log::warn("node ", kill_node, " stopped after round ", r + 1,
                " (fault injection); its neighbours continue without it");
      for (int j : topology.peers(kill_node))
        if (alive[j]) peers[j]->method().set_peer_down(kill_node, r + 1);
    }
    if (kill_node >= 0 && r == restart_round) {
      alive[kill_node] = 1;
      rejoin(peers, alive, topology, kill_node, r + 1, *transports[kill_node]);
      log::info("node ", kill_node, " rejoined after round ", r + 1);
    }
  }
  progress.finish();
  std::uint64_t late = 0;
  for (auto& p : peers) late += p->traffic().msgs_late;
  if (r >= rounds && (lossy || late > 0) &&
      deliver_in_flight(rounds, topology, method_io(), network, pool, timeout) &&
      options.write_files) {
    // The total push-sum weight once delivered, for the summary (ps_weight_sum_delivered_dev).
    double sum = 0;
    int live = 0;
    for (int i = 0; i < n; ++i) {
      if (!alive[i]) continue;
      sum += peers[i]->method().weight();
      ++live;
    }
    if (!std::isnan(sum))
      std::ofstream(std::filesystem::path(run_dir) / "in_flight.json")
          << nlohmann::json{{"nodes", live},
                            {"exchanges", topology.period()},
                            {"ps_weight_sum", sum}}
                 .dump(2)
          << "\n";
  }
  if (options.write_files && r >= rounds) {
    for (int i = 0; i < n; ++i) {
      if (!alive[i]) continue;
      peers[i]->save_average_model((std::filesystem::path(run_dir) / "model.pt").string());
      break;
    }
  }
  for (auto& t : transports) t->stop();

  RunResult result;
  result.run_dir = run_dir;
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (auto& p : peers) result.last_lines.push_back(p->last_metrics());
  if (options.write_files) result.summary = summarize(run_dir);
  return result;
}

}  // namespace rumor::run
