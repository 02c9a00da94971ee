// Asynchronous methods in one process, in simulated time: a discrete-event loop. A node's
// local step costs sim.step_s times its slowdown (faults.slow_nodes); at its end the node
// sends its pairwise request; a message arrives after its link's latency plus its size over
// the bandwidth (links.*, one message at a time per link, as in synchronous runs). A
// request is served when it arrives (the server's communication does not wait for its
// computation: its model may change under a step, as in AD-PSGD), the requester waits for
// the answer. Events are taken in (time, order of scheduling), on one thread, so a run is
// deterministic for a seed. Metrics lines are written per local step; intermediate ones
// carry no exact average (it would need every node at once), the last one does.
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <queue>

#include "async_run.hpp"
#include "fault_options.hpp"
#include "link_model.hpp"
#include "progress.hpp"
#include "rumor/common/error.hpp"
#include "rumor/common/log.hpp"
#include "rumor/gossip/pairwise.hpp"
#include "rumor/run/peer.hpp"
#include "rumor/run/setup.hpp"
#include "rumor/train/model.hpp"

namespace rumor::run {
namespace {

struct Event {
  enum Type { kStep, kStepEnd, kArrival };
  double t = 0;
  std::uint64_t order = 0;
  Type type = kStep;
  int node = 0;  // the node it happens at (the receiver of an arrival)
  net::Message message;
  bool operator>(const Event& o) const { return t != o.t ? t > o.t : order > o.order; }
};

// What a simulated asynchronous run cannot model; refused before anything starts.
void check_async_config(const config::Config& cfg, const FaultOptions& f,
                        const net::LinkModel& links) {
  bool lossy = links.loss > 0;
  for (const auto& [k, v] : links.overrides) lossy = lossy || v.loss > 0;
  const std::string method = cfg.get<std::string>("method.name");
  if (lossy)
    throw ConfigError(cfg.origin() + ": method " + method +
                      " in-process does not model lost messages (a lost reply would leave the "
                      "pair disagreeing about their average); set links.loss to 0");
  if (f.kill_node || f.bad_node || f.byzantine)
    throw ConfigError(cfg.origin() + ": method " + method +
                      " supports faults.slow_nodes only (not kill_node, bad_node or byzantine)");
}

class AsyncSim {
 public:
  AsyncSim(const config::Config& cfg, const RunOptions& options);
  // The event loop; false when options.stop_after ended it early.
  bool run();
  RunResult finish(bool complete, double seconds);

 private:
  void start_peers();
  void push(double t, Event::Type type, int node, net::Message m = {});
  void send(int from, int to, net::Message m, double at);
  void on_step(int i, double t);
  void ask(int i);
  void on_arrival(Event& e);
  void on_answer(int i, const net::Message& m);
  void end_step(int i);
  gossip::Pairwise& pw(int i) { return *peers_[i]->method().pairwise(); }
  double& clock(int i) { return peers_[i]->sim_clock().now_s; }

  const config::Config& cfg_;
  const RunOptions& options_;
  const Topology topology_;
  const int n_;
  const FaultOptions faults_;
  const std::string run_dir_;
  const net::LinkModel links_;
  const std::int64_t rounds_;
  std::vector<std::unique_ptr<Peer>> peers_;
  std::vector<std::int64_t> step_;  // the step each node is in
  std::priority_queue<Event, std::vector<Event>, std::greater<>> events_;
  std::uint64_t order_ = 0;
  std::map<std::pair<int, int>, double> link_free_;  // per directed link: busy until
  Progress progress_;
  std::int64_t steps_done_ = 0;
  bool stopped_ = false;
};

AsyncSim::AsyncSim(const config::Config& cfg, const RunOptions& options)
    : cfg_(cfg),
      options_(options),
      topology_(topology_of(cfg)),
      n_(topology_.size()),
      faults_(FaultOptions::parse(cfg, topology_)),
      run_dir_(cfg.run_dir()),
      links_(link_model(cfg, topology_)),
      rounds_(cfg.get<std::int64_t>("rounds")),
      step_(n_, 0),
      progress_(cfg.get<std::int64_t>("rounds"), options.progress) {
  check_async_config(cfg, faults_, links_);
  if (options.write_files && !options.resume) {
    std::filesystem::create_directories(run_dir_);
    write_config_record(cfg, run_dir_);
  }
  train::set_compute_threads(1);  // one step at a time, the same arithmetic on any machine
  start_peers();
}

// Each node starts at its own newest checkpoint when resuming (there is no common round).
void AsyncSim::start_peers() {
  const auto dataset = load_data(cfg_);
  data::Partition partition;
  if (dataset) partition = partition_of(cfg_, *dataset, n_);
  for (int i = 0; i < n_; ++i) {
    PeerSetup s =
        peer_setup(cfg_, faults_, topology_, i, dataset, dataset ? &partition : nullptr, run_dir_);
    s.write_files = options_.write_files;
    s.simulated = true;
    if (options_.resume) s.resume_round = own_resume_round(run_dir_, i);
    peers_.push_back(std::make_unique<Peer>(s));
    if (!peers_.back()->method().pairwise())
      throw Error("method " + cfg_.get<std::string>("method.name") +
                  " is declared asynchronous but has no pairwise protocol");
    step_[i] = s.resume_round + 1;
    push(clock(i), Event::kStep, i);
  }
}

void AsyncSim::push(double t, Event::Type type, int node, net::Message m) {
  events_.push(Event{t, order_++, type, node, std::move(m)});
}

void AsyncSim::send(int from, int to, net::Message m, double at) {
  m.sender = from;
  m.link = net::LinkKind::kData;
  m.sim_time_s = at;
  peers_[from]->traffic().add_sent(m);
  const double arrival =
      net::LinkModel::arrival(links_.link(from, to), at, net::wire_size(m), link_free_[{from, to}]);
  push(arrival, Event::kArrival, to, std::move(m));
}

bool AsyncSim::run() {
  while (!events_.empty() && !stopped_) {
    Event e = events_.top();
    events_.pop();
    if (e.type == Event::kStep) on_step(e.node, e.t);
    if (e.type == Event::kStepEnd) ask(e.node);
    if (e.type == Event::kArrival) on_arrival(e);
  }
  return !stopped_;
}

// The local step is computed now and its cost charged to the clock; the request goes out
// when the step ends.
void AsyncSim::on_step(int i, double t) {
  clock(i) = std::max(clock(i), t);
  peers_[i]->local(step_[i]);
  push(clock(i), Event::kStepEnd, i);
}

void AsyncSim::ask(int i) {
  auto out = pw(i).start(step_[i]);
  if (!out) return end_step(i);
  send(i, out->to, std::move(out->message), clock(i));
}

void AsyncSim::on_arrival(Event& e) {
  Peer& p = *peers_[e.node];
  net::Message& m = e.message;
  p.traffic().add_recv(m);
  if (const auto why = gossip::check_message(p.method(), m)) {
    p.traffic().add_rejected(m, why);
    if (m.kind == net::MessageKind::kPairRequest) send(e.node, m.sender, pw(e.node).busy(m), e.t);
    if (m.kind != net::MessageKind::kPairRequest && pw(e.node).partner() == m.sender) {
      pw(e.node).give_up();  // our answer was unusable: this step goes on without averaging
      end_step(e.node);
    }
    return;
  }
  using K = net::MessageKind;
  if (m.kind == K::kPairRequest) return send(e.node, m.sender, pw(e.node).serve(m), e.t);
  if (m.kind == K::kPairDone) return;  // in-process, done nodes serve until the loop ends
  clock(e.node) = std::max(clock(e.node), e.t);
  on_answer(e.node, m);
}

void AsyncSim::on_answer(int i, const net::Message& m) {
  if (pw(i).finish(m)) return end_step(i);
  ask(i);
}

// A step is over: its metrics line (the last one waits for the exact average at the end),
// a checkpoint when due, then the next step; a node done with its steps tells its
// neighbours and goes on serving them.
void AsyncSim::end_step(int i) {
  Peer& p = *peers_[i];
  const std::int64_t r = step_[i];
  if (r + 1 == rounds_) {
    for (int j : topology_.peers(i)) send(i, j, gossip::pair_done_message(rounds_), clock(i));
    return;
  }
  if (p.eval_round(r)) p.skip_average();
  p.finish_round(r);
  if (p.checkpoint_due(r)) p.save_checkpoint(r);
  if (++steps_done_ % n_ == 0)  // "rounds" on the progress line: steps per node on average
    progress_.update(steps_done_ / n_, p.last_metrics().value("loss", 0.0), -1, 0);
  if (r == options_.stop_after) stopped_ = true;
  ++step_[i];
  push(clock(i), Event::kStep, i);
}

// Every node's last line, with the exact average of the final models; model.pt.
RunResult AsyncSim::finish(bool complete, double seconds) {
  progress_.finish();
  RunResult result;
  result.run_dir = run_dir_;
  if (complete) {
    std::vector<double> sum(peers_[0]->model().size(), 0.0);
    for (const auto& p : peers_)
      for (std::size_t k = 0; k < sum.size(); ++k) sum[k] += p->model()[k];
    std::vector<float> mean(sum.size());
    for (std::size_t k = 0; k < sum.size(); ++k) mean[k] = static_cast<float>(sum[k] / n_);
    for (auto& p : peers_) {
      p->set_average(mean);
      p->finish_round(rounds_ - 1);
    }
    if (options_.write_files)
      peers_[0]->save_average_model((std::filesystem::path(run_dir_) / "model.pt").string());
  }
  result.seconds = seconds;
  for (auto& p : peers_) result.last_lines.push_back(p->last_metrics());
  if (options_.write_files) result.summary = summarize(run_dir_);
  return result;
}

}  // namespace

RunResult run_async_inprocess(const config::Config& cfg, const RunOptions& options) {
  const auto t0 = std::chrono::steady_clock::now();
  AsyncSim sim(cfg, options);
  const bool complete = sim.run();
  return sim.finish(complete,
                    std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
}

}  // namespace rumor::run
