// In-process transport: the TCP transport's semantics (handshake checks, lower id dials,
// per-link counters, bounded queues while a link is down) without sockets. Messages are
// handed over by pointer. Events are emitted on the thread that calls start()/stop() of the
// node whose arrival or departure changed the link (handlers must be thread-safe).
#include "rumor/net/inproc.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <map>
#include <queue>
#include <set>
#include <shared_mutex>
#include <thread>

#include "frame.hpp"
#include "rumor/common/error.hpp"
#include "rumor/common/log.hpp"
#include "rumor/common/rng.hpp"
#include "rumor/topology/topology.hpp"

namespace rumor::net {
namespace {

using Clock = std::chrono::steady_clock;

class InProcTransport;

struct Delivery {
  Clock::time_point due;
  std::uint64_t order = 0;
  int to = -1;
  std::uint64_t incarnation = 0;
  std::uint64_t bytes = 0;
  Message message;
  bool operator>(const Delivery& o) const { return due != o.due ? due > o.due : order > o.order; }
};

}  // namespace

struct InProcNetwork::State {
  explicit State(LinkModel m) : model(m) {}
  ~State() {
    {
      std::lock_guard lock(delivery_mutex);
      quit = true;
    }
    delivery_cv.notify_all();
    if (delivery_thread.joinable()) delivery_thread.join();
  }

  LinkModel model;
  std::atomic<bool> lossless{false};
  std::shared_mutex registry_mutex;  // unique: start/stop; shared: deliveries
  std::map<int, InProcTransport*> nodes;
  std::map<int, std::uint64_t> incarnations;
  // Running nodes that have a link to a node, by that node: who dials it when it starts
  // (found without asking every running node, which is quadratic in the nodes).
  std::map<int, std::set<std::pair<int, LinkKind>>> listed_by;

  // Link model: deliveries ordered by due time, run by one thread.
  std::mutex delivery_mutex;
  std::condition_variable delivery_cv;
  std::priority_queue<Delivery, std::vector<Delivery>, std::greater<>> pending;
  std::map<std::tuple<int, int, int>, Clock::time_point> link_free_at;
  std::uint64_t order = 0;
  bool quit = false;
  std::thread delivery_thread;

  void schedule(int from, int to, LinkKind kind, std::uint64_t incarnation, std::uint64_t bytes,
                Message m);
  void run_deliveries();
  void deliver_now(int to, std::uint64_t incarnation, std::uint64_t bytes, Message m);
};

namespace {

struct LinkState {
  LinkStats stats;
  bool up = false;
  bool ever_up = false;
  std::uint64_t next_seq = 0;
  std::uint64_t peer_incarnation = 0;
  double sim_free_at_s = 0;     // simulated time: when the link has sent what it was given
  std::deque<Message> pending;  // queued while down
  std::size_t pending_bytes = 0;
  std::string last_error;
};

class InProcTransport final : public Transport {
 public:
  InProcTransport(std::shared_ptr<InProcNetwork::State> state, TransportOptions options)
      : state_(std::move(state)), options_(std::move(options)) {}
  ~InProcTransport() override { stop(); }

  void start(const Topology& topology, int self) override {
    if (started_) throw Error("in-process transport started twice");
    if (self < 0 || self >= topology.size())
      throw TopologyError("node id " + std::to_string(self) + " outside the topology '" +
                          topology.name() + "'");
    self_ = self;
    data_peers_ = topology.peers(self);
    control_peers_ = options_.control_ring ? topology.control_peers(self) : std::vector<int>{};
    for (int p : data_peers_) add_link(p, LinkKind::kData);
    for (int p : control_peers_) add_link(p, LinkKind::kControl);
    started_ = true;
    std::vector<std::pair<InProcTransport*, LinkEvent>> events;
    {
      std::unique_lock lock(state_->registry_mutex);
      if (state_->nodes.count(self))
        throw Error("in-process node " + std::to_string(self) + " is already running");
      state_->nodes[self] = this;
      incarnation_ = ++state_->incarnations[self];
      // Lower id dials: this node dials higher registered peers, lower registered nodes
      // that list this node dial it.
      for (auto& [key, link] : links_)
        if (self < key.first)
          if (auto it = state_->nodes.find(key.first); it != state_->nodes.end())
            handshake(*this, *it->second, static_cast<LinkKind>(key.second), events);
      for (const auto& [id, kind] : state_->listed_by[self])
        if (id < self) handshake(*state_->nodes.at(id), *this, kind, events);
      for (auto& [key, link] : links_)
        state_->listed_by[key.first].insert({self, static_cast<LinkKind>(key.second)});
    }
    for (auto& [node, ev] : events) node->emit(std::move(ev));
  }

  void wait_connected(std::optional<std::chrono::milliseconds> timeout) override {
    const auto t = timeout.value_or(options_.connect_timeout);
    std::unique_lock lock(mu_);
    const bool ok = cv_.wait_for(lock, t, [&] {
      return std::all_of(links_.begin(), links_.end(), [](auto& kv) { return kv.second.up; });
    });
    if (ok) return;
    for (auto& [key, link] : links_) {
      if (link.up) continue;
      std::string msg = "node " + std::to_string(self_) + ": no " +
                        to_string(static_cast<LinkKind>(key.second)) + " link to node " +
                        std::to_string(key.first) + " (in-process) within " +
                        std::to_string(t.count()) + " ms";
      if (!link.last_error.empty()) msg += "; last failure: " + link.last_error;
      throw ProtocolError(msg + ". Check that the node is started with the same topology.");
    }
  }

  bool send(int to, Message message) override {
    const auto key = std::make_pair(to, static_cast<int>(message.link));
    std::shared_lock reg(state_->registry_mutex);
    std::unique_lock lock(mu_);
    auto it = links_.find(key);
    if (it == links_.end())
      throw ProtocolError("node " + std::to_string(self_) + " cannot send to node " +
                          std::to_string(to) + ": not a " + to_string(message.link) + " neighbour");
    LinkState& link = it->second;
    message.sender = self_;
    if (stopped_) {
      link.stats.drops += 1;
      return false;
    }
    if (!link.up) {
      if (link.pending.size() >= options_.send_queue_messages ||
          link.pending_bytes + message.payload.size() > options_.send_queue_bytes) {
        link.stats.drops += 1;
        return false;
      }
      link.pending_bytes += message.payload.size();
      link.pending.push_back(std::move(message));
      return true;
    }
    message.seq = ++link.next_seq;
    const std::uint64_t bytes = wire_size(message);
    const LinkModel& model = state_->model;
    const bool data = message.link == LinkKind::kData;
    const LinkParams& params = data ? model.link(self_, to) : model;
    if (data && params.loss > 0 && !state_->lossless.load(std::memory_order_relaxed) &&
        Rng::derive(model.seed, static_cast<std::uint64_t>(self_), static_cast<std::uint64_t>(to),
                    message.seq)
                .uniform() < params.loss) {
      link.stats.drops += 1;  // lost on the wire: sent bytes still count
      link.stats.bytes_sent += bytes;
      link.stats.msgs_sent += 1;
      return true;
    }
    link.stats.bytes_sent += bytes;
    link.stats.msgs_sent += 1;
    const std::uint64_t inc = link.peer_incarnation;
    if (model.simulated)
      message.sim_time_s =
          LinkModel::arrival(params, message.sim_time_s, bytes, link.sim_free_at_s);
    lock.unlock();
    if (model.active() && !model.simulated) {
      state_->schedule(self_, to, message.link, inc, bytes, std::move(message));
    } else {
      state_->deliver_now(to, inc, bytes, std::move(message));
    }
    return true;
  }

  void stop() override {
    if (!started_ || stopped_) {
      stopped_ = true;
      mailbox_.close();
      return;
    }
    std::vector<std::pair<InProcTransport*, LinkEvent>> events;
    {
      std::unique_lock reg(state_->registry_mutex);
      {
        std::lock_guard lock(mu_);
        stopped_ = true;
        for (auto& [key, link] : links_) {
          link.stats.drops += link.pending.size();
          link.pending.clear();
          link.pending_bytes = 0;
          link.up = false;
        }
      }
      state_->nodes.erase(self_);
      for (auto& [key, link] : links_)
        state_->listed_by[key.first].erase({self_, static_cast<LinkKind>(key.second)});
      // The running nodes with a link to this one (in id order).
      for (const auto& [id, k] : state_->listed_by[self_]) {
        InProcTransport* node = state_->nodes.at(id);
        if (node->link_down(self_, k, "node " + std::to_string(self_) + " stopped"))
          events.push_back({node, {LinkEventType::kDown, self_, k, "peer stopped", true}});
      }
    }
    for (auto& [node, ev] : events) node->emit(std::move(ev));
    mailbox_.close();
  }

  TransportStats stats() const override {
    std::lock_guard lock(mu_);
    TransportStats out;
    for (const auto& [key, link] : links_) {
      LinkStats s = link.stats;
      s.up = link.up;
      out.add(s);
    }
    out.refused_handshakes = refused_total_;
    return out;
  }

  bool link_up(int peer, LinkKind link) const override {
    std::lock_guard lock(mu_);
    auto it = links_.find({peer, static_cast<int>(link)});
    return it != links_.end() && it->second.up;
  }

  // Called with the registry locked (shared or unique).
  void receive(std::uint64_t incarnation, std::uint64_t bytes, Message m) {
    {
      std::lock_guard lock(mu_);
      if (incarnation != incarnation_ || stopped_) return;
      auto it = links_.find({m.sender, static_cast<int>(m.link)});
      if (it == links_.end() || !it->second.up) return;
      it->second.stats.bytes_recv += bytes;
      it->second.stats.msgs_recv += 1;
    }
    mailbox_.push(std::move(m));
  }

  bool has_link(int peer, LinkKind k) const {
    std::lock_guard lock(mu_);
    return links_.count({peer, static_cast<int>(k)}) > 0;
  }

  using Transport::emit;

 private:
  void add_link(int peer, LinkKind kind) {
    LinkState s;
    s.stats.peer = peer;
    s.stats.link = kind;
    links_[{peer, static_cast<int>(kind)}] = std::move(s);
  }

  // Registry locked (unique). Emulates the TCP handshake: `d` dials `a`, `a` checks.
  static void handshake(InProcTransport& d, InProcTransport& a, LinkKind kind,
                        std::vector<std::pair<InProcTransport*, LinkEvent>>& events) {
    std::string err;
    if (a.options_.run_id != d.options_.run_id)
      err =
          "run id '" + d.options_.run_id + "' differs from this node's '" + a.options_.run_id + "'";
    else if (a.options_.secret != d.options_.secret)
      err = "authentication failed (wrong or missing shared secret)";
    else if (!a.has_link(d.self_, kind))
      err = "node " + std::to_string(d.self_) + " is not a " + to_string(kind) +
            " neighbour of node " + std::to_string(a.self_);
    if (!err.empty()) {
      {
        std::lock_guard lock(a.mu_);
        a.refused_total_ += 1;
        if (auto it = a.links_.find({d.self_, static_cast<int>(kind)}); it != a.links_.end())
          it->second.stats.refused += 1;
      }
      {
        std::lock_guard lock(d.mu_);
        if (auto it = d.links_.find({a.self_, static_cast<int>(kind)}); it != d.links_.end())
          it->second.last_error = "refused by node " + std::to_string(a.self_) + ": " + err;
      }
      log::warn("node ", a.self_, ": refused a ", to_string(kind), " connection claiming node ",
                d.self_, ": ", err);
      events.push_back({&a, {LinkEventType::kRefused, d.self_, kind, err}});
      return;
    }
    for (auto [x, y] : {std::pair{&d, &a}, std::pair{&a, &d}}) {
      std::lock_guard lock(x->mu_);
      LinkState& l = x->links_.at({y->self_, static_cast<int>(kind)});
      const bool again = l.ever_up;
      if (again) l.stats.reconnects += 1;
      l.up = l.ever_up = true;
      l.peer_incarnation = y->incarnation_;
      l.last_error.clear();
      x->cv_.notify_all();
      events.push_back({x, {LinkEventType::kUp, y->self_, kind, again ? "reconnected" : ""}});
    }
    // What was queued while the link was down goes out now, in order (no link model).
    for (auto [x, y] : {std::pair{&d, &a}, std::pair{&a, &d}}) {
      std::vector<std::pair<std::uint64_t, Message>> out;
      {
        std::lock_guard lock(x->mu_);
        LinkState& l = x->links_.at({y->self_, static_cast<int>(kind)});
        while (!l.pending.empty()) {
          Message m = std::move(l.pending.front());
          l.pending.pop_front();
          m.seq = ++l.next_seq;
          const std::uint64_t bytes = wire_size(m);
          l.stats.bytes_sent += bytes;
          l.stats.msgs_sent += 1;
          out.emplace_back(bytes, std::move(m));
        }
        l.pending_bytes = 0;
      }
      for (auto& [bytes, m] : out) y->receive(y->incarnation_, bytes, std::move(m));
    }
  }

  // Registry locked (unique). Returns true when the link was up.
  bool link_down(int peer, LinkKind k, const std::string& reason) {
    std::lock_guard lock(mu_);
    auto it = links_.find({peer, static_cast<int>(k)});
    if (it == links_.end() || !it->second.up) return false;
    it->second.up = false;
    it->second.last_error = reason;
    it->second.stats.drops += it->second.pending.size();
    it->second.pending.clear();
    it->second.pending_bytes = 0;
    return true;
  }

  std::shared_ptr<InProcNetwork::State> state_;
  TransportOptions options_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::pair<int, int>, LinkState> links_;
  std::uint64_t refused_total_ = 0;
  std::uint64_t incarnation_ = 0;
  bool started_ = false;
  bool stopped_ = false;
};

}  // namespace

void InProcNetwork::State::deliver_now(int to, std::uint64_t incarnation, std::uint64_t bytes,
                                       Message m) {
  // Caller holds the registry lock in shared mode (send()) or takes it here (delivery thread).
  auto it = nodes.find(to);
  if (it != nodes.end()) it->second->receive(incarnation, bytes, std::move(m));
}

void InProcNetwork::State::schedule(int from, int to, LinkKind kind, std::uint64_t incarnation,
                                    std::uint64_t bytes, Message m) {
  const auto now = Clock::now();
  std::lock_guard lock(delivery_mutex);
  const LinkParams& p = kind == LinkKind::kData ? model.link(from, to) : model;
  auto& free_at = link_free_at[{from, to, static_cast<int>(kind)}];
  auto start = std::max(now, free_at);
  auto busy = p.bandwidth_Bps > 0 ? std::chrono::duration_cast<Clock::duration>(
                                        std::chrono::duration<double>(bytes / p.bandwidth_Bps))
                                  : Clock::duration::zero();
  free_at = start + busy;
  Delivery d;
  d.due = free_at +
          std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(p.latency_s));
  d.order = ++order;
  d.to = to;
  d.incarnation = incarnation;
  d.bytes = bytes;
  d.message = std::move(m);
  pending.push(std::move(d));
  if (!delivery_thread.joinable()) delivery_thread = std::thread([this] { run_deliveries(); });
  delivery_cv.notify_all();
}

void InProcNetwork::State::run_deliveries() {
  std::unique_lock lock(delivery_mutex);
  while (!quit) {
    if (pending.empty()) {
      delivery_cv.wait(lock);
      continue;
    }
    const auto due = pending.top().due;
    if (Clock::now() < due) {
      delivery_cv.wait_until(lock, due);
      continue;
    }
    Delivery d = std::move(const_cast<Delivery&>(pending.top()));
    pending.pop();
    lock.unlock();
    {
      std::shared_lock reg(registry_mutex);
      deliver_now(d.to, d.incarnation, d.bytes, std::move(d.message));
    }
    lock.lock();
  }
}

InProcNetwork::InProcNetwork(LinkModel model) : state_(std::make_shared<State>(model)) {}
InProcNetwork::~InProcNetwork() = default;

void InProcNetwork::set_lossless(bool lossless) {
  state_->lossless = lossless;
}

std::unique_ptr<Transport> InProcNetwork::make_transport(TransportOptions options) {
  return std::make_unique<InProcTransport>(state_, std::move(options));
}

}  // namespace rumor::net
