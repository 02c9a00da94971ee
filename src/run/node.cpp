// `rumor node`: one peer per process over TCP, run by the blocking driver: the round steps
// of round.hpp, each waiting on this node's mailbox.
//
// Faults. Every exchange waits at most a round deadline (network.round_deadline: fixed =
// network.round_timeout_s, or adaptive = a multiple of the recent median round). With
// on_peer_failure stop (the default) and a fixed deadline, a missing message is an error
// naming the peer. Otherwise the node goes on without it: push-sum absorbs the message when
// it comes, other methods drop it (msgs_late, msgs_missed in the metrics).
//
// on_peer_failure continue: a neighbour whose message is missing at the deadline while its
// link is down, or whose link is down at two round boundaries in a row (neighbours this
// node only sends to), is marked down (Method::set_peer_down): it leaves the mixing and
// nobody waits for it. So is one whose messages were refused network.max_rejects times
// (its connection is closed as well). Either way the node tells it (down_notices.hpp), and
// it leaves this node out in turn: both ends of a link agree on "down". Exact averages
// (consensus distance, model.pt) need every node on the control ring: once a node is gone
// they are off (test accuracy is still reported) until every node is reachable on the ring
// again (average_resume.hpp); the nodes that notice pass a notice around the control ring,
// so the others stop too instead of waiting in the all-reduce until the round timeout. At
// the end, each node exchanges a stop notice with its live neighbours instead of the
// all-node barrier.
// A restarted peer, and a live one whose link came back, return through the rejoin
// hand-over (rejoin.hpp).
//
// Elastic membership (on_peer_failure continue): a standby node of the topology is not waited
// for at the start; started later it joins through the same hand-over (its neighbours hold
// at the round faults.join names for it). SIGTERM or faults.leave makes a node leave
// gracefully (leave.hpp). With standby nodes exact averages are off from the start. Such a
// node also hands the run's settings to `rumor node --join` (join.hpp), so that a host without
// the config file can take a standby slot.
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <thread>

#include "async_run.hpp"
#include "average_resume.hpp"
#include "degree_notices.hpp"
#include "demand_links.hpp"
#include "down_notices.hpp"
#include "fault_options.hpp"
#include "leave.hpp"
#include "node_files.hpp"
#include "rejoin.hpp"
#include "round.hpp"
#include "rumor/common/error.hpp"
#include "rumor/common/log.hpp"
#include "rumor/gossip/ring_allreduce.hpp"
#include "rumor/net/tcp.hpp"
#include "rumor/run/checkpoint.hpp"
#include "rumor/run/join.hpp"
#include "rumor/run/peer.hpp"
#include "rumor/run/run.hpp"
#include "rumor/run/setup.hpp"
#include "rumor/train/model.hpp"

namespace rumor::run {

std::int64_t last_good_checkpoint(const std::string& run_dir, int id) {
  const auto mine = checkpoint_rounds(run_dir, id);
  for (auto r = mine.rbegin(); r != mine.rend(); ++r) {
    const auto problem = checkpoint_problem(checkpoint_path(run_dir, id, *r));
    if (problem.empty()) return *r;
    log::warn("passing over checkpoint ", checkpoint_path(run_dir, id, *r), ": ", problem);
  }
  return -1;
}

std::int64_t own_resume_round(const std::string& run_dir, int id) {
  const std::int64_t r = last_good_checkpoint(run_dir, id);
  if (r < 0)
    throw Error(run_dir + ": node " + std::to_string(id) +
                " has no good checkpoint to resume from; start the run again");
  return r;
}

namespace {

using net::MessageKind;
using std::chrono::milliseconds;

// SIGTERM under on_peer_failure continue: leave the run gracefully at the next boundary.
std::atomic<bool> g_leave_requested{false};
extern "C" void on_sigterm(int) {
  g_leave_requested = true;
}
// SIGCONT: this process was stopped (a pause); the round it was in took that long.
std::atomic<bool> g_continued{false};
extern "C" void on_sigcont(int) {
  g_continued = true;
}

net::MessageFilter no_average_filter() {
  net::MessageFilter f;
  f.kind = MessageKind::kNoAverage;
  f.link = net::LinkKind::kControl;
  return f;
}

// Everything a node needs before its peer exists: checked config, run directory, data.
struct NodeSetup {
  const config::Config& cfg;
  int id;
  RunOptions options;
  Topology topology;
  FaultOptions faults;
  std::string run_dir;
  std::int64_t resume_round = -1;
  std::int64_t own_checkpoint = -1;  // --rejoin: this node's last checkpoint

  NodeSetup(const config::Config& c, int node, const RunOptions& o)
      : cfg(c), id(node), options(o), topology(topology_of(c)) {
    if (id < 0 || id >= topology.size())
      throw ConfigError("node id " + std::to_string(id) + " is not in topology '" +
                        topology.name() + "' (ids 0.." + std::to_string(topology.size() - 1) + ")");
    faults = FaultOptions::parse(cfg, topology);
    if (options.rejoin && !faults.keep_going)
      throw ConfigError(cfg.origin() +
                        ": --rejoin needs on_peer_failure continue (with stop, the "
                        "others stopped when this peer died; use --resume)");
    if (options.rejoin && options.resume) throw ConfigError("give --rejoin or --resume, not both");
    run_dir = cfg.run_dir();
    std::filesystem::create_directories(run_dir);
    if (options.resume) resume_round = resume_point(run_dir, topology.size());
    if (options.rejoin) own_checkpoint = last_good_checkpoint(run_dir, id);
    if (id == 0 && !options.resume && !options.rejoin) write_config_record(cfg, run_dir);
  }
};

// The blocking driver: the steps of round.hpp for this node's peer, over TCP.
class TcpNode {
 public:
  TcpNode(const NodeSetup& s, net::Transport& t, const PeerSetup& ps, DemandLinks* demand,
          milliseconds heartbeat_timeout)
      : s_(s),
        heartbeat_timeout_(heartbeat_timeout),
        t_(t),
        demand_(demand),
        peer_(ps),
        deadline_(s.faults.deadline()),
        rejoin_(peer_, t, s.faults.round_timeout,
                s.cfg.get<std::int64_t>("network.max_rounds_ahead")),
        down_(peer_.method(), t),
        resume_(t, {s.id, s.topology.size(), s.cfg.get<std::int64_t>("eval.every"),
                    s.cfg.get<std::int64_t>("rounds"),
                    std::min<milliseconds>(4 * s.faults.round_timeout, std::chrono::seconds(5))}),
        leave_(peer_, t, s.faults.round_timeout),
        degrees_(peer_, t),
        exact_average_(!s.options.rejoin && s.faults.standby.empty()),
        tolerant_(s.faults.keep_going || s.faults.adaptive_deadline) {
    const auto& f = s.faults;
    // A scheduled restart (launch with faults.restart_after_s and restart_round): the
    // killed node's neighbours wait for it after round restart_round.
    const auto nb = s.topology.peers(s.id);
    for (int k : f.kill_set())
      if (!s.options.rejoin && f.restart_round && f.restart_after_s && hold_for_ < 0 &&
          !f.killed(s.id, f.kill_round) && std::find(nb.begin(), nb.end(), k) != nb.end()) {
        hold_for_ = k;  // the first killed neighbour (its request; the others are settled later)
        hold_round_ = *f.restart_round;
      }
    // Standby neighbours are out of the mixing until they join.
    for (int j : nb)
      if (s.topology.standby(j)) peer_.method().set_peer_down(j, 0);
    if (const auto* e = first_event(f.leaves, s.id)) leave_.request(e->round);
    if (f.membership_changes()) peer_.method().use_live_mixing(initial_live_degrees(s.topology));
  }

  std::int64_t first_round() {
    if (!s_.options.rejoin && !s_.topology.standby(s_.id)) return s_.resume_round + 1;
    const std::int64_t start = rejoin_.rejoin(s_.own_checkpoint >= 0);
    // Both ends of each link it came back on agree that the link is up from `start`.
    for (int j : s_.topology.peers(s_.id))
      if (!peer_.method().peer_is_down(j)) peer_.method().set_peer_up(j, start);
    peer_.follow_schedule(start);
    return start;
  }

  std::int64_t boundary(std::int64_t r) {
    const auto last_start = round_start_;
    round_start_ = std::chrono::steady_clock::now();
    if (demand_) demand_->open(r);
    t_.set_round(r);  // gossip for rounds far past this one is refused unread
    if (!s_.faults.keep_going) return r;
    const double gap = std::chrono::duration<double>(round_start_ - last_start).count();
    if (g_continued.exchange(false) && r > 0) stopped(r, gap);
    if (typical_round_s_ > 0 &&
        gap > static_cast<double>(s_.faults.max_lag_rounds + 1) * typical_round_s_)
      lagged_ = true;  // paused, or stalled, for more than faults.max_lag_rounds rounds
    if (g_leave_requested && r + 1 < peer_.rounds()) leave_.request(r + 1);
    serve_rejoins(r);
    for (int j : s_.topology.peers(s_.id))
      if (rejoin_.pending(j)) down_.forget(j);
    down_.boundary(r);
    if (!leave_.boundary(r).empty()) no_average(r);
    if (exact_average_ && t_.take(no_average_filter(), milliseconds(0))) no_average(r);
    if (!exact_average_ && resume_.boundary(r)) exact_average_ = true;  // every node is back
    watch_links(r);
    if (peer_.method().live_mixing()) degrees_.boundary(r);
    return r;
  }
  // A peer cut off from all its neighbours, let back in from a later round, continues there.
  std::optional<std::int64_t> skip_to() {
    const auto to = rejoin_.take_jump();
    if (to) peer_.follow_schedule(*to);
    return to;
  }
  void local(std::int64_t r) { peer_.local(r); }
  void exchange(std::int64_t r);
  bool eval_round(std::int64_t r) const { return peer_.eval_round(r); }
  void evaluate(std::int64_t r);
  void record(std::int64_t r) {
    for (int j : peer_.finish_round(r))
      if (s_.faults.keep_going) refused_out(j, r);
    const double took =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - round_start_).count();
    deadline_.record(took);
    // A pause is not a typical round: it moves the average by at most 0.4 of one.
    typical_round_s_ = typical_round_s_ < 0
                           ? took
                           : 0.9 * typical_round_s_ + 0.1 * std::min(took, 4 * typical_round_s_);
  }
  void checkpoint(std::int64_t r) {
    if (peer_.checkpoint_due(r)) peer_.save_checkpoint(r);
  }
  bool after(std::int64_t r) {
    if (!s_.options.rejoin && s_.faults.killed(s_.id, r)) {
      log::warn("fault injection: killing this node after round ", r + 1);
      ::raise(SIGKILL);
    }
    left_ = leave_.leaves_after(r);
    if (left_) left_before_ = r + 1;
    return !left_;
  }
  // The first round this node did not run because it left gracefully (-1: it did not).
  std::int64_t left_before() const { return left_before_; }
  // Each time the process was stopped (SIGSTOP, then SIGCONT): after which round, how long.
  const nlohmann::json& stopped() const { return stopped_; }
  void finish(std::int64_t rounds);
  const nlohmann::json& last_metrics() const { return peer_.last_metrics(); }

 private:
  void no_average(std::int64_t r);
  void stopped(std::int64_t r, double seconds);
  void serve_rejoins(std::int64_t r);
  static const MembershipEvent* first_event(const std::vector<MembershipEvent>& events, int id) {
    for (const auto& e : events)
      if (e.node == id) return &e;
    return nullptr;
  }
  void watch_links(std::int64_t r);
  void leave_out(int j, std::int64_t from, const std::string& why);
  void refused_out(int j, std::int64_t r);
  void stop_with_neighbours(std::int64_t rounds);

  const NodeSetup& s_;
  milliseconds heartbeat_timeout_;  // the links' (a pause longer than it closes them)
  net::Transport& t_;
  DemandLinks* demand_;  // peer sampling: data links open when first drawn
  Peer peer_;
  gossip::RoundDeadline deadline_;
  Rejoin rejoin_;
  DownNotices down_;       // both ends of a link agree on "down"
  AverageResume resume_;   // exact averages back once every node is
  GracefulLeave leave_;    // SIGTERM / faults.leave: the hand-over and goodbye
  DegreeNotices degrees_;  // live mixing: degrees announced to the neighbours
  bool left_ = false;      // this node left the run gracefully
  std::int64_t left_before_ = -1;
  nlohmann::json stopped_ = nlohmann::json::array();
  bool exact_average_;  // exact averages need every node: off while one is gone
  bool tolerant_;       // wait with deadlines and go on without what is missing
  gossip::LateMessages late_, eval_late_;
  // Data links found down at a round boundary, and since when.
  std::map<int, std::chrono::steady_clock::time_point> link_down_since_;
  // True when peer j's data link was down the last time it was looked at and still is, at
  // least link_down_grace later.
  bool link_gone(int j);
  int hold_for_ = -1;
  std::int64_t hold_round_ = -1;
  std::chrono::steady_clock::time_point round_start_;
  double typical_round_s_ = -1;  // a moving average of round times (a pause's length in rounds)
  bool lagged_ = false;          // a round took over faults.max_lag_rounds typical rounds
};

void TcpNode::no_average(std::int64_t r) {
  if (!exact_average_) return;
  exact_average_ = false;
  for (int j : t_.peers(net::LinkKind::kControl)) {
    net::Message m;
    m.kind = MessageKind::kNoAverage;
    m.round = r;
    m.link = net::LinkKind::kControl;
    t_.send(j, std::move(m));
  }
}

// This process was stopped (SIGSTOP) during round r (1-based), `seconds` long. Longer than
// the links' heartbeat, its neighbours have closed their links to it and left it out: it
// leaves them out too, so that it is let back in (from their round) by the rejoin hand-over
// rather than run on from its own round with edges the others have dropped.
void TcpNode::stopped(std::int64_t r, double seconds) {
  stopped_.push_back({{"round", r}, {"seconds", seconds}});
  const double heartbeat = std::chrono::duration<double>(heartbeat_timeout_).count();
  if (heartbeat <= 0 || seconds <= heartbeat) return;
  // Only the neighbours whose data link was closed have left it out (a pause near the
  // heartbeat may close the control links only); the closes show once the network thread
  // has read them: wait for them a little (bounded).
  const auto nb = s_.topology.peers(s_.id);
  auto closed = [&](int j) { return !t_.link_up(j, net::LinkKind::kData); };
  for (int k = 0; k < 25 && !std::all_of(nb.begin(), nb.end(), closed); ++k)
    std::this_thread::sleep_for(milliseconds(20));
  bool any = false;
  for (int j : nb)
    if (closed(j) && !peer_.method().peer_is_down(j) && !rejoin_.pending(j)) {
      leave_out(j, r,
                "this node was stopped for " + std::to_string(seconds) +
                    " s, past the links' heartbeat, and its link is closed");
      any = true;
    }
  if (any) no_average(r);
}

// Rejoin requests are answered at every boundary. A scheduled restart (faults.restart_round)
// and a scripted join of a standby neighbour (faults.join) are waited for at their round, at
// most network.connect_timeout_s, so that they come in at a fixed round.
void TcpNode::serve_rejoins(std::int64_t r) {
  std::vector<std::pair<int, milliseconds>> holds;
  if (hold_for_ >= 0 && r == hold_round_ + 1 && peer_.method().peer_is_down(hold_for_))
    holds.emplace_back(hold_for_, s_.faults.connect_timeout);
  const auto nb = s_.topology.peers(s_.id);
  for (const auto& e : s_.faults.joins)
    if (e.round == r && std::find(nb.begin(), nb.end(), e.node) != nb.end() &&
        peer_.method().peer_is_down(e.node))
      holds.emplace_back(e.node, s_.faults.connect_timeout);
  // Back from a pause longer than faults.max_lag_rounds with every neighbour out: the
  // readmission takes the neighbours' model (push-sum keeps its own state: its mass).
  bool all_out = true;
  for (int j : nb) all_out = all_out && peer_.method().peer_is_down(j);
  if (!all_out) lagged_ = false;
  rejoin_.take_models(lagged_ && all_out && std::isnan(peer_.method().weight()));
  std::vector<int> moved;
  if (holds.empty()) moved = rejoin_.serve(r);
  for (const auto& h : holds) {
    const auto m = rejoin_.serve(r, h);
    moved.insert(moved.end(), m.begin(), m.end());
  }
  for (int j : moved) down_.forget(j);
}

void TcpNode::leave_out(int j, std::int64_t from, const std::string& why) {
  log::warn("peer ", j, " is gone (", why, "): leaving it out of the mixing");
  down_.leave_out(j, from, DownNotices::Reason::kLinkGone, "gone: " + why);
}

// A neighbour left out for messages refused network.max_rejects times (finish_round): it
// is told, and its connection is closed (what it has in flight is not read).
void TcpNode::refused_out(int j, std::int64_t r) {
  const std::string why = "network.max_rejects of its messages refused";
  down_.leave_out(j, r + 1, DownNotices::Reason::kRefused, why);
  rejoin_.bar(j);  // never let back in
  t_.close_link(j, net::LinkKind::kData, why);
}

// A neighbour this node only sends to is never missed at a deadline (directed and
// time-varying graphs): a data link found down at two round boundaries in a row, at least
// the tolerant waits' link_down_grace apart, marks it down too, so that no push-sum share
// goes into a dead link, and sends do not pile up in its queue. (A live peer whose link
// dropped is then left out as well, and let back in through the rejoin hand-over once its
// link is up again (rejoin.hpp). The grace lets a link whose connection was taken over by another
// holder of the run secret, and then taken back, come up again first.)
void TcpNode::watch_links(std::int64_t r) {
  for (int j : s_.topology.peers(s_.id)) {
    if (peer_.method().peer_is_down(j) || rejoin_.pending(j)) continue;
    if (link_gone(j)) {
      leave_out(j, r, "its link is down");
      no_average(r);
    }
  }
}

bool TcpNode::link_gone(int j) {
  const auto now = std::chrono::steady_clock::now();
  if (t_.link_up(j, net::LinkKind::kData)) {
    link_down_since_.erase(j);
    return false;
  }
  const auto [it, fresh] = link_down_since_.emplace(j, now);
  if (fresh || now - it->second < gossip::WaitPolicy{}.link_down_grace) return false;
  link_down_since_.erase(it);
  return true;
}

void TcpNode::exchange(std::int64_t r) {
  if (!tolerant_) return gossip::run_blocking(peer_.method_io(), r, s_.faults.round_timeout);
  gossip::WaitPolicy w;
  w.deadline = deadline_.next();
  w.fail_on_missing = false;
  w.stop_waiting_for = [this, r](int j) { return down_.told_by(j) || leave_.leaving(j, r); };
  for (int j : gossip::run_blocking(peer_.method_io(), r, w, late_)) {
    if (down_.told_by(j)) continue;      // it left this node out: so will this node, next round
    if (leave_.leaving(j, r)) continue;  // it left the run: its goodbye comes at the boundary
    if (!link_gone(j)) continue;         // slow, or its connection is being replaced: late
    if (!s_.faults.keep_going)
      throw ProtocolError("node " + std::to_string(s_.id) + ": peer " + std::to_string(j) +
                          " sent nothing for round " + std::to_string(r + 1) +
                          " and its link is down; is that peer alive? (on_peer_failure "
                          "continue goes on without it)");
    if (peer_.method().peer_is_down(j)) continue;
    leave_out(j, r + 1, "link down, no message for round " + std::to_string(r + 1));
    no_average(r);
  }
}

void TcpNode::evaluate(std::int64_t r) {
  if (!exact_average_) return peer_.skip_average();
  peer_.prepare_eval(r);
  if (!s_.faults.keep_going)
    return gossip::run_blocking(peer_.eval_io(), r, s_.faults.round_timeout);
  try {
    gossip::WaitPolicy w;
    w.deadline = s_.faults.round_timeout;
    w.fail_on_missing = false;
    bool told = false;  // sticky: the notice is taken from the mailbox once
    w.give_up = [&] {
      told = told || t_.take(no_average_filter(), milliseconds(0)).has_value();
      return told;
    };
    if (!gossip::run_blocking(peer_.eval_io(), r, w, eval_late_).empty())
      throw ProtocolError("exact average incomplete");
  } catch (const ProtocolError&) {
    // A node on the control ring is gone (the ring throws on a missing chunk).
    log::warn("the exact average of round ", r + 1,
              " did not complete (a node is gone); evaluation goes on without it");
    no_average(r);
    peer_.skip_average();
  }
}

// End of a run without the all-node barrier: a stop notice to and from each live neighbour
// (a notice comes after all of that neighbour's messages, so nothing it waits for is lost).
void TcpNode::stop_with_neighbours(std::int64_t rounds) {
  down_.boundary(rounds);  // a neighbour that left this node out sends no stop notice
  std::vector<int> live;
  for (int j : s_.topology.peers(s_.id))
    if (!peer_.method().peer_is_down(j) && t_.link_up(j, net::LinkKind::kData)) live.push_back(j);
  for (int j : live) {
    net::Message m;
    m.kind = MessageKind::kStop;
    m.round = rounds;
    t_.send(j, std::move(m));
  }
  for (int j : live) {
    net::MessageFilter f;
    f.sender = j;
    f.kind = MessageKind::kStop;
    f.link = net::LinkKind::kData;
    if (!gossip::take_or_give_up(t_, f, s_.faults.round_timeout,
                                 gossip::WaitPolicy{}.link_down_grace,
                                 [&] { return down_.told_by(j); }))
      log::warn("peer ", j, " sent no stop notice (gone, much slower, or it left this node out)");
  }
}

void TcpNode::finish(std::int64_t rounds) {
  if (left_) return;  // its neighbours took its goodbye; they wait for nothing more
  if (s_.id == 0 && exact_average_)
    peer_.save_average_model((std::filesystem::path(s_.run_dir) / "model.pt").string());
  if (s_.faults.keep_going) {
    stop_with_neighbours(rounds);
  } else {
    // Stop barrier on the control ring: once it completes, every node has finished its
    // last round, so closing links loses nothing anyone still waits for.
    std::vector<float> token(1, 0.0f);
    gossip::RingAllreduce barrier(s_.id, s_.topology.size(), MessageKind::kStopBarrier);
    barrier.begin(token);
    gossip::Traffic ignored;
    gossip::run_blocking({&barrier, &t_, &ignored}, rounds, s_.faults.round_timeout);
  }
}

// With standby nodes in the topology: the links to the nodes running from the start, not to
// standby ones (they connect when they join). A standby node joining goes on once one data
// link is up and the others are up or network.connect_timeout_s has passed.
void wait_for_running(net::TcpTransport& t, const NodeSetup& s) {
  const bool joining = s.topology.standby(s.id);
  const auto deadline = std::chrono::steady_clock::now() + s.faults.connect_timeout;
  auto missing = [&]() -> std::optional<std::pair<int, net::LinkKind>> {
    for (int j : s.topology.peers(s.id))
      if (!s.topology.standby(j) && !t.link_up(j, net::LinkKind::kData))
        return std::make_pair(j, net::LinkKind::kData);
    if (!joining)
      for (int j : s.topology.control_peers(s.id))
        if (!s.topology.standby(j) && !t.link_up(j, net::LinkKind::kControl))
          return std::make_pair(j, net::LinkKind::kControl);
    return std::nullopt;
  };
  while (auto m = missing()) {
    if (std::chrono::steady_clock::now() >= deadline) {
      int up = 0;
      for (int j : s.topology.peers(s.id)) up += t.link_up(j, net::LinkKind::kData) ? 1 : 0;
      if (joining && up > 0) {
        log::warn("joining: no link to node ", m->first, " (gone?); going on with ", up);
        return;
      }
      throw ProtocolError("node " + std::to_string(s.id) + ": no " + net::to_string(m->second) +
                          " link to node " + std::to_string(m->first) + " within " +
                          std::to_string(s.faults.connect_timeout.count()) +
                          " ms; check that it runs with the same topology, run id and secret");
    }
    std::this_thread::sleep_for(milliseconds(20));  // links come up on the network thread
  }
  log::info("links to the running nodes up", joining ? " (joining)" : "");
}

void connect(net::TcpTransport& t, const NodeSetup& s, bool on_demand) {
  t.set_event_handler([](const net::LinkEvent& e) {
    if (e.type == net::LinkEventType::kUp) return;
    if (e.clean)  // a neighbour that finished its run: expected at the end, nothing lost
      log::debug("link to peer ", e.peer, " (", net::to_string(e.link), "): closed: ", e.detail);
    else
      log::warn("link to peer ", e.peer, " (", net::to_string(e.link),
                "): ", net::to_string(e.type), e.detail.empty() ? "" : ": " + e.detail);
  });
  const auto& me = s.topology.node(s.id);
  log::info("run ", s.cfg.run_id(), ": node ", s.id, " of ", s.topology.size(), " on ", me.host,
            ":", me.port, ", connecting to ",
            on_demand ? std::string("the control ring (data links when the schedule draws them)")
                      : std::to_string(s.topology.peers(s.id).size()) + " neighbours",
            s.options.rejoin ? " (rejoining)" : "");
  t.start(s.topology, s.id);
  if (!s.faults.standby.empty()) return wait_for_running(t, s);
  try {
    t.wait_connected();
  } catch (const ProtocolError& e) {
    // Rejoining, some neighbours may be gone: enough that one data link comes up.
    int up = 0;
    for (int j : s.topology.peers(s.id)) up += t.link_up(j, net::LinkKind::kData) ? 1 : 0;
    if (!s.options.rejoin || up == 0) throw;
    log::warn("rejoin: not every link is up (", e.what(), "); going on with ", up);
  }
  log::info(on_demand ? "control ring up" : "all links up");
}

// Data links that came up during the run (the full mesh under peer sampling, unless they
// opened on demand): the ones up now or that carried bytes.
int data_links_used(const net::Transport& t) {
  int n = 0;
  for (const auto& l : t.stats().links)
    n += l.link == net::LinkKind::kData && (l.up || l.bytes_sent + l.bytes_recv > 0) ? 1 : 0;
  return n;
}

void warn_links_model(const config::Config& c, int id) {
  if (id == 0 &&
      (c.get<double>("links.latency_s") > 0 || c.get<double>("links.bandwidth_MBps") > 0 ||
       c.get<double>("links.loss") > 0 || !c.at("links.overrides").empty()))
    log::warn(
        "links.* model in-process links only; over TCP the real network decides (emulate "
        "one with tc netem in a network namespace)");
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

namespace {
std::filesystem::path pid_file(const std::string& run_dir, int id) {
  return node_file(run_dir, id, ".pid");
}
}  // namespace

void request_leave(const config::Config& cfg, int id) {
  const auto path = pid_file(cfg.run_dir(), id);
  std::ifstream in(path);
  long pid = 0;
  if (!(in >> pid) || pid <= 1)
    throw Error(path.string() + ": no pid of a running node " + std::to_string(id) +
                " (is it running on this machine, with on_peer_failure continue?)");
  if (::kill(static_cast<pid_t>(pid), SIGTERM) != 0)
    throw Error("node " + std::to_string(id) + " (pid " + std::to_string(pid) + ", from " +
                path.string() + "): " + std::strerror(errno) + "; has it finished?");
  log::info("asked node ", id, " (pid ", pid, ") to leave the run");
}

RunResult run_node(const config::Config& cfg, int id, const RunOptions& options) {
  if (gossip::method_info(cfg.get<std::string>("method.name")).asynchronous)
    return run_async_node(cfg, id, options);
  const auto t0 = std::chrono::steady_clock::now();
  const NodeSetup s(cfg, id, options);
  if (!std::getenv("RUMOR_LAUNCHED"))
    log::set_file(
        (std::filesystem::path(s.run_dir) / ("node-" + std::to_string(id) + ".log")).string());
  log::set_prefix("node " + std::to_string(id));
  train::set_compute_threads(std::max(1, options.threads));
  warn_links_model(cfg, id);
  net::TransportOptions topts = node_transport_options(cfg, id);
  // A standby slot may be taken by `rumor node --join` this node's address (join.hpp).
  if (s.faults.keep_going && !s.faults.standby.empty() && !topts.secret.empty())
    topts.join_settings = join_settings(cfg);

  const auto dataset = load_data(cfg);
  data::Partition partition;
  if (dataset) partition = partition_of(cfg, *dataset, s.topology.size());
  PeerSetup ps = peer_setup(cfg, s.faults, s.topology, id, dataset, &partition, s.run_dir);
  ps.resume_round = options.rejoin ? s.own_checkpoint : s.resume_round;
  ps.rejoin = options.rejoin;

  if (s.faults.keep_going) {
    struct sigaction sa {};
    sa.sa_handler = on_sigterm;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGTERM, &sa, nullptr);  // leave gracefully instead of dying
    sa.sa_handler = on_sigcont;
    ::sigaction(SIGCONT, &sa, nullptr);                            // note pauses for the summary
    std::ofstream(pid_file(s.run_dir, id)) << ::getpid() << "\n";  // for rumor node --leave
  }
  net::TcpTransport transport(topts);
  std::optional<DemandLinks> demand;
  if (DemandLinks::apply(s.topology, s.faults.keep_going))
    demand.emplace(transport, s.topology, id);
  connect(transport, s, demand.has_value());
  ps.transport = &transport;
  TcpNode node(s, transport, ps, demand ? &*demand : nullptr, topts.heartbeat_timeout);
  const std::int64_t rounds = cfg.get<std::int64_t>("rounds");
  run_rounds(node, node.first_round(), rounds);
  node.finish(rounds);
  const int links = data_links_used(transport);
  // Our last messages may still sit in a send queue: they leave before the close.
  if (!transport.flush(s.faults.round_timeout))
    log::warn("some messages were still queued ", s.faults.round_timeout.count() / 1000.0,
              " s after the last round; closing anyway");
  transport.stop();
  std::error_code ignored;
  std::filesystem::remove(pid_file(s.run_dir, id), ignored);  // nothing left to ask to leave
  // Peak resident memory: what peers made this node buffer shows here.
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  log::info("finished ", rounds, " rounds; peak memory ", ru.ru_maxrss / 1024, " MB");
  nlohmann::json end = {
      {"node", id}, {"peak_rss_mb", ru.ru_maxrss / 1024.0}, {"data_links", links}};
  if (node.left_before() >= 0) end["left_before_round"] = node.left_before();
  if (!node.stopped().empty()) end["stopped"] = node.stopped();
  write_node_end(s.run_dir, id, end);

  RunResult result;
  result.run_dir = s.run_dir;
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  result.last_lines.push_back(node.last_metrics());
  return result;
}

}  // namespace rumor::run
