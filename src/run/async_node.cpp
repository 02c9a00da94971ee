// Asynchronous methods over TCP (`rumor node`), in real time: this node runs its `rounds`
// local steps, each followed by one pairwise exchange (gossip/pairwise.hpp). While it waits
// for an answer it serves the requests that come in (busy, or the crossing request of the
// peer it asks when the pair's coin names this node), so no wait depends on another node's
// wait: no deadlock. Requests that come
// during a local step wait in the mailbox until the step ends. A node done with its steps
// tells its neighbours and serves them until each has said it is done too; then the exact
// average of all final models is taken on the control ring (the last metrics line and
// model.pt), and the stop barrier closes the run. Every wait is bounded by
// network.round_timeout_s (a neighbour silent that long ends the run with an error naming
// it), the final ones by that plus the time a straggler may still need (final_patience).
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <set>

#include "async_run.hpp"
#include "fault_options.hpp"
#include "node_files.hpp"
#include "rumor/common/error.hpp"
#include "rumor/common/log.hpp"
#include "rumor/gossip/pairwise.hpp"
#include "rumor/gossip/ring_allreduce.hpp"
#include "rumor/net/tcp.hpp"
#include "rumor/run/peer.hpp"
#include "rumor/run/setup.hpp"
#include "rumor/train/model.hpp"

namespace rumor::run {
namespace {

using net::MessageKind;
using std::chrono::milliseconds;

class AsyncNode {
 public:
  AsyncNode(const PeerSetup& ps, net::Transport& t, milliseconds timeout)
      : peer_(ps), t_(t), pw_(*peer_.method().pairwise()), timeout_(timeout) {}
  void step(std::int64_t r);
  void serve_until_neighbours_done(std::int64_t rounds);
  // `patience`: how long to wait for the ring (the slowest node may still be running).
  void final_average(std::int64_t rounds, const std::string& run_dir, milliseconds patience);
  const nlohmann::json& last_metrics() const { return peer_.last_metrics(); }

 private:
  void send(int to, net::Message m) {
    peer_.traffic().add_sent(m);
    t_.send(to, std::move(m));
  }
  // Takes one data message (waiting up to `wait`) and handles it; returns it when it is an
  // answer to this node's request that passed the gate.
  std::optional<net::Message> pump(milliseconds wait);
  std::optional<net::Message> handle(net::Message m);
  net::Message await_answer(int from, std::int64_t r);

  Peer peer_;
  net::Transport& t_;
  gossip::Pairwise& pw_;
  milliseconds timeout_;
  std::set<int> done_;  // neighbours that finished their steps
};

std::optional<net::Message> AsyncNode::pump(milliseconds wait) {
  net::MessageFilter f;
  f.link = net::LinkKind::kData;
  auto m = t_.take(f, wait);
  if (!m) return std::nullopt;
  return handle(std::move(*m));
}

std::optional<net::Message> AsyncNode::handle(net::Message m) {
  if (!gossip::is_pairwise_kind(m.kind)) return std::nullopt;  // e.g. a stop notice
  peer_.traffic().add_recv(m);
  if (const auto why = gossip::check_message(peer_.method(), m)) {
    peer_.traffic().add_rejected(m, why);
    if (m.kind == MessageKind::kPairRequest) send(m.sender, pw_.busy(m));
    if (m.kind != MessageKind::kPairRequest && pw_.partner() == m.sender)
      return pw_.busy(m);  // an unusable answer counts as busy: nothing was averaged here
    return std::nullopt;
  }
  if (m.kind == MessageKind::kPairRequest) {
    send(m.sender, pw_.serve(m));
    return std::nullopt;
  }
  if (m.kind == MessageKind::kPairDone) {
    done_.insert(m.sender);
    return std::nullopt;
  }
  return m;
}

// The answer of `from` to this node's request, serving others meanwhile. Bounded: the
// node's model is on its way, so without an answer the sum could not be kept; an error.
net::Message AsyncNode::await_answer(int from, std::int64_t r) {
  const auto until = std::chrono::steady_clock::now() + timeout_;
  while (std::chrono::steady_clock::now() < until)
    if (auto a = pump(milliseconds(50))) return *a;
  throw ProtocolError("node " + std::to_string(peer_.id()) + ": peer " + std::to_string(from) +
                      " did not answer the pairwise request of step " + std::to_string(r + 1) +
                      " within " + std::to_string(timeout_.count() / 1000.0) +
                      " s; is it alive? raise network.round_timeout_s if it is slow");
}

void AsyncNode::step(std::int64_t r) {
  peer_.local(r);
  net::MessageFilter data;
  data.link = net::LinkKind::kData;
  while (auto m = t_.take(data, milliseconds(0)))
    handle(std::move(*m));  // what queued during the step (no answers: nobody was asked)
  while (auto out = pw_.start(r)) {
    const int to = out->to;
    send(to, std::move(out->message));
    if (pw_.finish(await_answer(to, r))) break;
  }
  if (r + 1 == peer_.rounds()) return;  // the last line waits for the exact average
  if (peer_.eval_round(r)) peer_.skip_average();
  peer_.finish_round(r);
  if (peer_.checkpoint_due(r)) peer_.save_checkpoint(r);
}

void AsyncNode::serve_until_neighbours_done(std::int64_t rounds) {
  const auto nb = peer_.topology().peers(peer_.id());
  for (int j : nb) send(j, gossip::pair_done_message(rounds));
  auto quiet_since = std::chrono::steady_clock::now();
  std::uint64_t seen = peer_.traffic().msgs_recv;
  while (done_.size() < nb.size()) {
    pump(milliseconds(50));
    const auto now = std::chrono::steady_clock::now();
    if (peer_.traffic().msgs_recv != seen) {
      seen = peer_.traffic().msgs_recv;
      quiet_since = now;
    } else if (now - quiet_since > timeout_) {
      std::string missing;
      for (int j : nb)
        if (!done_.count(j)) missing += " " + std::to_string(j);
      throw ProtocolError("node " + std::to_string(peer_.id()) + ": neighbours" + missing +
                          " sent nothing for " + std::to_string(timeout_.count() / 1000.0) +
                          " s and did not say they are done; are they alive?");
    }
  }
}

void AsyncNode::final_average(std::int64_t rounds, const std::string& run_dir,
                              milliseconds patience) {
  peer_.prepare_eval(rounds - 1);
  gossip::run_blocking(peer_.eval_io(), rounds - 1, patience);
  peer_.finish_round(rounds - 1);
  if (peer_.id() == 0)
    peer_.save_average_model((std::filesystem::path(run_dir) / "model.pt").string());
  std::vector<float> token(1, 0.0f);  // every node has its average: links may close
  gossip::RingAllreduce barrier(peer_.id(), peer_.topology().size(), MessageKind::kStopBarrier);
  barrier.begin(token);
  gossip::Traffic ignored;
  gossip::run_blocking({&barrier, &t_, &ignored}, rounds, patience);
}

// Nodes finish their steps at their own pace: the exact average waits for the slowest. A
// straggler (faults.slow_nodes) takes at most `slowdown` times as long as this node did.
milliseconds final_patience(const FaultOptions& f, std::chrono::steady_clock::time_point start) {
  const double ran =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double extra = f.slow_nodes.empty() ? 0.0 : (f.slowdown - 1.0) * ran;
  return f.round_timeout + milliseconds(static_cast<std::int64_t>(extra * 1000));
}

void check_async_faults(const config::Config& cfg, const FaultOptions& f) {
  if (f.membership_changes())
    throw ConfigError(cfg.origin() + ": method " + cfg.get<std::string>("method.name") +
                      " is asynchronous: membership changes (standby nodes, faults.join, "
                      "faults.leave, faults.pause) need a synchronous method");
  if (f.kill_node || f.bad_node || f.byzantine)
    throw ConfigError(cfg.origin() + ": method " + cfg.get<std::string>("method.name") +
                      " supports faults.slow_nodes only (not kill_node, bad_node or byzantine)");
}

void connect_async(net::TcpTransport& t, const Topology& topology, int id) {
  t.set_event_handler([](const net::LinkEvent& e) {
    if (e.type != net::LinkEventType::kUp && !e.clean)
      log::warn("link to peer ", e.peer, " (", net::to_string(e.link),
                "): ", net::to_string(e.type), e.detail.empty() ? "" : ": " + e.detail);
  });
  t.start(topology, id);
  t.wait_connected();
  log::info("all links up (asynchronous method: no rounds)");
}

}  // namespace

RunResult run_async_node(const config::Config& cfg, int id, const RunOptions& options) {
  const auto t0 = std::chrono::steady_clock::now();
  const Topology topology = topology_of(cfg);
  if (id < 0 || id >= topology.size())
    throw ConfigError("node id " + std::to_string(id) + " is not in topology '" + topology.name() +
                      "'");
  if (options.rejoin) throw ConfigError("--rejoin is not supported by asynchronous methods");
  const FaultOptions faults = FaultOptions::parse(cfg, topology);
  check_async_faults(cfg, faults);
  const std::string run_dir = cfg.run_dir();
  std::filesystem::create_directories(run_dir);
  if (id == 0 && !options.resume) write_config_record(cfg, run_dir);
  if (!std::getenv("RUMOR_LAUNCHED")) log::set_file(node_file(run_dir, id, ".log"));
  log::set_prefix("node " + std::to_string(id));
  train::set_compute_threads(std::max(1, options.threads));

  const auto dataset = load_data(cfg);
  data::Partition partition;
  if (dataset) partition = partition_of(cfg, *dataset, topology.size());
  PeerSetup ps = peer_setup(cfg, faults, topology, id, dataset, &partition, run_dir);
  // Each node resumes from its own newest checkpoint: nodes never share a round.
  if (options.resume) ps.resume_round = own_resume_round(run_dir, id);

  net::TcpTransport transport(node_transport_options(cfg, id));
  connect_async(transport, topology, id);
  ps.transport = &transport;
  AsyncNode node(ps, transport, faults.round_timeout);
  const std::int64_t rounds = cfg.get<std::int64_t>("rounds");
  const auto steps_start = std::chrono::steady_clock::now();
  for (std::int64_t r = ps.resume_round + 1; r < rounds; ++r) node.step(r);
  node.serve_until_neighbours_done(rounds);
  node.final_average(rounds, run_dir, final_patience(faults, steps_start));
  if (!transport.flush(faults.round_timeout)) log::warn("messages still queued at the end");
  transport.stop();
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  log::info("finished ", rounds, " steps; peak memory ", ru.ru_maxrss / 1024, " MB");
  RunResult result;
  result.run_dir = run_dir;
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  result.last_lines.push_back(node.last_metrics());
  return result;
}

}  // namespace rumor::run
