// One peer per process over TCP (`rumor node`, and each process `rumor launch` starts).
//
// Faults (issue 9). Every exchange waits at most a round deadline (network.round_deadline:
// fixed = network.round_timeout_s, or adaptive = a multiple of the recent median round).
// With on_peer_failure stop (the default) and a fixed deadline, a missing message is an
// error naming the peer, as before. Otherwise the node goes on without it: push-sum absorbs
// the message when it comes, other methods drop it (msgs_late, msgs_missed in the metrics).
//
// on_peer_failure continue: a neighbour whose message is missing at the deadline while its
// link is down, or whose link is down at two round boundaries in a row (neighbours this
// node only sends to), is marked down (Method::set_peer_down): it leaves the mixing and
// nobody waits for it. Exact averages (consensus distance, model.pt) need every node on the
// control ring: once a node is gone they are off for good (test accuracy is still
// reported); the nodes that notice pass a notice around the control ring, so the others
// stop too instead of waiting in the all-reduce until the round timeout. At the end, each node
// exchanges a stop notice with its live neighbours instead of the all-node barrier.
//
// Rejoin protocol (a restarted peer, `rumor node --rejoin`). Round agreement is the hard
// part: the survivors run on, at rounds that differ by a few, and nobody may wait for a
// message the other side will never send.
//   1. The restarted peer j loads its own last checkpoint if it has one, connects, and
//      sends each neighbour with a live link a rejoin request (Method::rejoin_request).
//   2. A neighbour i sees the request at its next round boundary r_i, answers with an
//      offer (Method::rejoin_offer: its model / push-sum mass unless j has a checkpoint;
//      running sums or public copies so both ends agree), keeps j out of the mixing, and
//      pauses at that boundary until j confirms (bounded by the round timeout).
//   3. j accepts every offer, picks s = max_i r_i and confirms s to every neighbour that
//      offered; those not heard from stay down. j runs rounds s, s+1, ...
//   4. i runs its rounds r_i .. s-1 without j and marks j up from round s; from then on
//      both sides send and expect messages of the same rounds.
// Every wait is bounded (deadlines, link-down checks), so a peer that dies again, or a
// neighbour that dies mid-protocol, costs at most a timeout, never a deadlock.
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <thread>
#include <utility>

#include "progress.hpp"
#include "rumor/common/error.hpp"
#include "rumor/common/log.hpp"
#include "rumor/gossip/ring_allreduce.hpp"
#include "rumor/net/tcp.hpp"
#include "rumor/run/peer.hpp"
#include "rumor/run/run.hpp"
#include "rumor/run/setup.hpp"
#include "rumor/train/model.hpp"

namespace rumor::run {
namespace {

using std::chrono::milliseconds;
constexpr std::uint32_t kRejoinConfirmKind = gossip::kRejoinKind + 2;
// Control ring: "no exact average any more" (a node is gone), passed on around the ring so
// that nodes waiting in the all-reduce stop at once instead of at the round timeout.
constexpr std::uint32_t kNoAverageKind = gossip::kRejoinKind + 10;

milliseconds seconds_ms(double s) {
  return milliseconds(static_cast<std::int64_t>(s * 1000));
}

// network.round_deadline and its parameters.
gossip::RoundDeadline round_deadline(const config::Config& cfg) {
  const auto kind = cfg.get<std::string>("network.round_deadline");
  if (kind != "fixed" && kind != "adaptive")
    throw ConfigError(cfg.origin() + ": network.round_deadline must be fixed or adaptive, got \"" +
                      kind + "\"");
  const double factor = cfg.get<double>("network.deadline_factor");
  if (kind == "adaptive" && !(factor > 0))
    throw ConfigError(cfg.origin() + ": network.deadline_factor must be > 0");
  return gossip::RoundDeadline(seconds_ms(cfg.get<double>("network.round_timeout_s")),
                               kind == "adaptive", factor,
                               seconds_ms(cfg.get<double>("network.deadline_min_s")));
}

net::MessageFilter data_filter(int sender, std::uint32_t kind) {
  net::MessageFilter f;
  f.sender = sender;
  f.kind = kind;
  f.link = net::LinkKind::kData;
  return f;
}

std::optional<net::Message> take_from(net::Transport& t, const net::MessageFilter& f,
                                      milliseconds timeout) {
  return gossip::take_or_give_up(t, f, timeout, std::chrono::seconds(1));
}

// Step 2 of the rejoin protocol (neighbour side), at the boundary before round `r`.
// `hold`: first wait up to hold->second for a request from peer hold->first (fault injection:
// a scheduled restart rejoins at a fixed round, whatever the machine's speed).
void serve_rejoins(Peer& peer, net::Transport& t, std::int64_t r, milliseconds timeout,
                   std::map<int, std::int64_t>& up_at,
                   std::optional<std::pair<int, milliseconds>> hold = {}) {
  gossip::Method& method = peer.method();
  std::optional<net::Message> held;
  if (hold) {
    held = t.take(data_filter(hold->first, gossip::kRejoinKind), hold->second);
    if (!held)
      log::warn("peer ", hold->first, " did not ask to rejoin before round ", r + 1, " within ",
                hold->second.count() / 1000.0, " s; going on without it");
  }
  auto next = [&]() -> std::optional<net::Message> {
    if (held) return std::exchange(held, std::nullopt);
    return t.take(data_filter(net::MessageFilter::kAnySender, gossip::kRejoinKind),
                  milliseconds(0));
  };
  while (auto req = next()) {
    const int j = req->sender;
    auto offer = method.rejoin_offer(*req, r);
    method.set_peer_down(j, r);  // out of the mixing until the round j confirms
    up_at.erase(j);
    peer.traffic().add_recv(*req);
    peer.traffic().add_sent(offer);
    t.send(j, std::move(offer));
    auto confirm = take_from(t, data_filter(j, kRejoinConfirmKind), 2 * timeout);
    if (!confirm) {
      log::warn("peer ", j, " asked to rejoin before round ", r + 1,
                " but did not confirm; it stays out of the mixing");
      continue;
    }
    up_at[j] = std::max(confirm->round, r);
    log::info("peer ", j, " rejoins: back in the mixing from round ", up_at[j] + 1);
  }
  for (auto it = up_at.begin(); it != up_at.end();) {
    if (it->second <= r) {
      method.set_peer_up(it->first, r);
      it = up_at.erase(it);
    } else {
      ++it;
    }
  }
}

// Steps 1 and 3 (the restarted peer): returns the round it starts at.
std::int64_t rejoin_run(Peer& peer, net::Transport& t, const Topology& topology, int id,
                        bool from_checkpoint, milliseconds timeout) {
  gossip::Method& method = peer.method();
  std::vector<int> asked;
  for (int j : topology.peers(id)) {
    if (!t.link_up(j, net::LinkKind::kData)) continue;
    auto req = method.rejoin_request(j, from_checkpoint);
    peer.traffic().add_sent(req);
    t.send(j, std::move(req));
    asked.push_back(j);
  }
  std::vector<net::Message> offers;
  for (int j : asked) {
    // A neighbour answers at its next round boundary; it may itself wait a deadline first.
    if (auto m = take_from(t, data_filter(j, gossip::kRejoinOfferKind), 2 * timeout)) {
      peer.traffic().add_recv(*m);
      offers.push_back(std::move(*m));
    } else {
      log::warn("rejoin: no offer from peer ", j, "; it stays out of the mixing");
    }
  }
  if (offers.empty())
    throw ProtocolError("node " + std::to_string(id) +
                        ": cannot rejoin, no neighbour answered (are the others still running, "
                        "with on_peer_failure continue?)");
  std::int64_t start = 0;
  for (const auto& o : offers) start = std::max(start, o.round);
  std::vector<int> offered;
  for (const auto& o : offers) {
    method.rejoin_accept(o);
    offered.push_back(o.sender);
    net::Message confirm;
    confirm.kind = kRejoinConfirmKind;
    confirm.round = start;
    t.send(o.sender, std::move(confirm));
  }
  for (int j : topology.peers(id))
    if (std::find(offered.begin(), offered.end(), j) == offered.end())
      method.set_peer_down(j, start);
  log::info("rejoined with ", offers.size(), " offer(s)",
            from_checkpoint ? " (own checkpoint)" : "", "; starting at round ", start + 1);
  return start;
}

void announce_no_average(net::Transport& t, std::int64_t round) {
  for (int j : t.peers(net::LinkKind::kControl)) {
    net::Message m;
    m.kind = kNoAverageKind;
    m.round = round;
    m.link = net::LinkKind::kControl;
    t.send(j, std::move(m));
  }
}

// End of a run without the all-node barrier: a stop notice to and from each live neighbour
// (a notice comes after all of that neighbour's messages, so nothing it waits for is lost).
void neighbour_stop(Peer& peer, net::Transport& t, const Topology& topology, int id,
                    std::int64_t rounds, milliseconds timeout) {
  std::vector<int> live;
  for (int j : topology.peers(id))
    if (!peer.method().peer_is_down(j) && t.link_up(j, net::LinkKind::kData)) live.push_back(j);
  for (int j : live) {
    net::Message m;
    m.kind = net::kind::kStop;
    m.round = rounds;
    t.send(j, std::move(m));
  }
  for (int j : live)
    if (!take_from(t, data_filter(j, net::kind::kStop), timeout))
      log::warn("peer ", j, " sent no stop notice (gone, or much slower)");
}

}  // namespace

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
  const std::string policy = cfg.get<std::string>("on_peer_failure");
  if (policy != "stop" && policy != "continue")
    throw ConfigError(cfg.origin() + ": on_peer_failure must be stop or continue, got \"" + policy +
                      "\"");
  const bool keep_going = policy == "continue";
  if (keep_going && cfg.get<std::string>("method.name") == "allreduce")
    throw ConfigError(cfg.origin() +
                      ": method allreduce cannot continue without a peer (the ring needs every "
                      "node); use on_peer_failure stop, or a gossip method such as dpsgd or sgp");
  if (options.rejoin && !keep_going)
    throw ConfigError(cfg.origin() +
                      ": --rejoin needs on_peer_failure continue (with stop, the "
                      "others stopped when this peer died; use --resume)");
  if (options.rejoin && options.resume) throw ConfigError("give --rejoin or --resume, not both");
  gossip::RoundDeadline deadline = round_deadline(cfg);

  const std::string run_dir = cfg.run_dir();
  std::filesystem::create_directories(run_dir);
  const std::int64_t resume_round = options.resume ? resume_point(run_dir, topology.size()) : -1;
  std::int64_t own_checkpoint = -1;
  if (options.rejoin)
    if (const auto mine = checkpoint_rounds(run_dir, id); !mine.empty())
      own_checkpoint = mine.back();
  if (id == 0 && !options.resume && !options.rejoin) write_config_record(cfg, run_dir);
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
            me.port, ", connecting to ", topology.peers(id).size(), " neighbours",
            options.rejoin ? " (rejoining)" : "");
  transport.start(topology, id);
  if (options.rejoin) {
    // Some neighbours may be gone: enough that one data link comes up.
    try {
      transport.wait_connected();
    } catch (const ProtocolError& e) {
      int up = 0;
      for (int j : topology.peers(id)) up += transport.link_up(j, net::LinkKind::kData) ? 1 : 0;
      if (up == 0) throw;
      log::warn("rejoin: not every link is up (", e.what(), "); going on with ", up);
    }
  } else {
    transport.wait_connected();
  }
  log::info("all links up");

  PeerSetup s;
  s.config = &cfg;
  s.topology = &topology;
  s.id = id;
  s.dataset = dataset;
  s.shard = std::move(shard);
  s.transport = &transport;
  s.run_dir = run_dir;
  s.resume_round = options.rejoin ? own_checkpoint : resume_round;
  s.rejoin = options.rejoin;
  Peer peer(s);

  const std::int64_t rounds = cfg.get<std::int64_t>("rounds");
  const auto timeout = deadline.timeout();
  std::int64_t first = resume_round + 1;
  if (options.rejoin)
    first = rejoin_run(peer, transport, topology, id, own_checkpoint >= 0, timeout);
  // Exact averages need every node: off for a rejoined node and once a peer is lost.
  bool exact_average = !options.rejoin;
  const bool tolerant = keep_going || deadline.adaptive();
  gossip::LateMessages late, eval_late;
  auto no_average = [&](std::int64_t r) {
    if (!exact_average) return;
    exact_average = false;
    announce_no_average(transport, r);
  };
  std::map<int, std::int64_t> up_at;  // rejoining neighbours: the round they come back
  std::set<int> link_down_before;     // data links found down at the last round boundary
  const auto& kill = cfg.at("faults.kill_node");
  // A scheduled restart (launch with faults.restart_after_s and faults.restart_round): the
  // killed node's neighbours wait for it after round restart_round.
  int hold_for = -1;
  std::int64_t hold_round = -1;
  if (const auto& rr = cfg.at("faults.restart_round");
      !options.rejoin && !rr.is_null() && kill.is_number_integer() &&
      !cfg.at("faults.restart_after_s").is_null()) {
    const auto& nb = topology.peers(id);
    if (std::find(nb.begin(), nb.end(), kill.get<int>()) != nb.end()) {
      hold_for = kill.get<int>();
      hold_round = rr.get<std::int64_t>();
    }
  }
  for (std::int64_t r = first; r < rounds; ++r) {
    const auto round_start = std::chrono::steady_clock::now();
    if (keep_going) {
      std::optional<std::pair<int, milliseconds>> hold;
      if (hold_for >= 0 && r == hold_round + 1 && peer.method().peer_is_down(hold_for))
        hold = std::make_pair(hold_for, seconds_ms(cfg.get<double>("network.connect_timeout_s")));
      serve_rejoins(peer, transport, r, timeout, up_at, hold);
      net::MessageFilter f;
      f.kind = kNoAverageKind;
      f.link = net::LinkKind::kControl;
      if (exact_average && transport.take(f, milliseconds(0))) no_average(r);
      // A neighbour this node only sends to is never missed at a deadline (directed and
      // time-varying graphs): a data link found down at two round boundaries in a row marks
      // it down too, so that no push-sum share goes into a dead link, and sends do not pile
      // up in its queue. (A live peer whose link dropped is then left out as well: links do
      // not drop on their own on a healthy network; it rejoins if restarted.)
      for (int j : topology.peers(id)) {
        if (peer.method().peer_is_down(j) || up_at.count(j)) continue;
        if (transport.link_up(j, net::LinkKind::kData)) {
          link_down_before.erase(j);
        } else if (!link_down_before.insert(j).second) {
          log::warn("peer ", j, " is gone (its link is down): leaving it out of the mixing");
          peer.method().set_peer_down(j, r);
          link_down_before.erase(j);
          no_average(r);
        }
      }
    }
    peer.local(r);
    if (!tolerant) {
      gossip::run_blocking(peer.method_io(), r, timeout);
    } else {
      gossip::WaitPolicy w;
      w.deadline = deadline.next();
      w.fail_on_missing = false;
      for (int j : gossip::run_blocking(peer.method_io(), r, w, late)) {
        if (transport.link_up(j, net::LinkKind::kData)) continue;  // slow, not gone: late
        if (!keep_going)
          throw ProtocolError("node " + std::to_string(id) + ": peer " + std::to_string(j) +
                              " sent nothing for round " + std::to_string(r + 1) +
                              " and its link is down; is that peer alive? (on_peer_failure "
                              "continue goes on without it)");
        if (peer.method().peer_is_down(j)) continue;
        log::warn("peer ", j, " is gone (link down, no message for round ", r + 1,
                  "): leaving it out of the mixing");
        peer.method().set_peer_down(j, r + 1);
        no_average(r);
      }
    }
    if (peer.eval_round(r)) {
      if (exact_average) {
        peer.prepare_eval(r);
        if (!keep_going) {
          gossip::run_blocking(peer.eval_io(), r, timeout);
        } else {
          try {
            gossip::WaitPolicy w;
            w.deadline = timeout;
            w.fail_on_missing = false;
            bool told = false;  // sticky: the notice is taken from the mailbox once
            w.give_up = [&] {
              net::MessageFilter f;
              f.kind = kNoAverageKind;
              f.link = net::LinkKind::kControl;
              told = told || transport.take(f, milliseconds(0)).has_value();
              return told;
            };
            if (!gossip::run_blocking(peer.eval_io(), r, w, eval_late).empty())
              throw ProtocolError("exact average incomplete");
          } catch (const ProtocolError&) {
            // A node on the control ring is gone (the ring throws on a missing chunk).
            log::warn("the exact average of round ", r + 1,
                      " did not complete (a node is gone); evaluation goes on without it");
            no_average(r);
            peer.skip_average();
          }
        }
      } else {
        peer.skip_average();
      }
    }
    peer.finish_round(r);
    deadline.record(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - round_start).count());
    if (peer.checkpoint_due(r)) peer.save_checkpoint(r);
    if (!options.rejoin && kill == id && cfg.get<std::int64_t>("faults.kill_round") == r) {
      log::warn("fault injection: killing this node after round ", r + 1);
      ::raise(SIGKILL);
    }
  }
  if (id == 0 && exact_average)
    peer.save_average_model((std::filesystem::path(run_dir) / "model.pt").string());

  if (keep_going) {
    neighbour_stop(peer, transport, topology, id, rounds, timeout);
  } else {
    // Stop barrier on the control ring: once it completes, every node has finished its
    // last round, so closing links loses nothing anyone still waits for.
    std::vector<float> token(1, 0.0f);
    gossip::RingAllreduce barrier(id, topology.size(), gossip::kAllreduceKind + 2000);
    barrier.begin(token);
    gossip::Traffic ignored;
    gossip::run_blocking({&barrier, &transport, &ignored}, rounds, timeout);
  }
  // Our last messages may still sit in a send queue: give them time to leave.
  std::this_thread::sleep_for(milliseconds(300));
  transport.stop();
  log::info("finished ", rounds, " rounds");

  RunResult result;
  result.run_dir = run_dir;
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  result.last_lines.push_back(peer.last_metrics());
  return result;
}

}  // namespace rumor::run
