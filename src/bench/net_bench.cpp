#include "rumor/bench/net_bench.hpp"

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "rumor/common/error.hpp"
#include "rumor/common/log.hpp"
#include "rumor/net/secret.hpp"
#include "rumor/net/tcp.hpp"
#include "rumor/topology/topology.hpp"

extern char** environ;

namespace rumor::bench {

using net::LinkKind;
using net::Message;
using net::MessageFilter;
using net::MessageKind;
using net::Payload;
using net::TcpTransport;
using net::Transport;
using net::TransportOptions;

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;
constexpr auto kTake = std::chrono::milliseconds(120000);

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

struct Figures {
  double median = 0, min = 0, max = 0;
};
Figures figures(std::vector<double> v) {
  if (v.empty()) return {};
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  const double med = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
  return {med, v.front(), v.back()};
}

int log2_nodes(int n) {
  return std::max(1, static_cast<int>(std::lround(std::log2(n))));
}

Topology bench_topology(const std::string& mode, int n, const std::vector<int>& ports) {
  std::vector<NodeInfo> nodes(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i)
    nodes[static_cast<std::size_t>(i)] = {i, "127.0.0.1", ports[static_cast<std::size_t>(i)]};
  std::vector<Edge> edges;
  if (mode == "pushsum") {
    // Union of the one-peer exponential schedule: i -> i + 2^k for k < log2 n.
    for (int i = 0; i < n; ++i)
      for (int k = 0; k < log2_nodes(n); ++k) {
        const int j = (i + (1 << k)) % n;
        if (j != i) edges.push_back({i, j, std::nullopt});
      }
    std::sort(edges.begin(), edges.end(), [](const Edge& a, const Edge& b) {
      return std::pair(a.from, a.to) < std::pair(b.from, b.to);
    });
    edges.erase(
        std::unique(edges.begin(), edges.end(),
                    [](const Edge& a, const Edge& b) { return a.from == b.from && a.to == b.to; }),
        edges.end());
    return Topology("bench-pushsum", true, Schedule::kStatic, MixingKind::kUniform, nodes, edges);
  }
  for (int i = 0; i < n; ++i) {
    int a = i, b = (i + 1) % n;
    if (n == 2 && i == 1) break;
    edges.push_back({std::min(a, b), std::max(a, b), std::nullopt});
  }
  return Topology("bench-ring", false, Schedule::kStatic, MixingKind::kMetropolis, nodes, edges);
}

// `secret` set: the data links move to shared memory (network.shm auto); else TCP only.
TransportOptions bench_options(const std::string& secret = {}) {
  TransportOptions o;
  o.secret = secret;
  o.shm = !secret.empty();
  o.run_id = "rumor-bench-net";
  o.connect_timeout = 60s;
  o.retry_min = 10ms;
  o.retry_max = 200ms;
  o.heartbeat_timeout = 0ms;  // rounds can be long under load; never time out a bench link
  return o;
}

// transport shm: waits until the data link to `peer` goes through shared memory (a bench
// that measured TCP under the name shm would be wrong); throws after 30 s.
void wait_shm(const Transport& t, int peer) {
  const auto until = Clock::now() + std::chrono::seconds(30);
  while (true) {
    const auto s = t.stats();
    const net::LinkStats* l = s.find(peer, net::LinkKind::kData);
    if (l && l->shm) return;
    if (Clock::now() > until)
      throw Error("bench net --transport shm: the data link of node " + std::to_string(t.self()) +
                  " to node " + std::to_string(peer) +
                  " did not move to shared memory within 30 s (see the log for why)");
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

// Free loopback ports: bound together (so they differ), then released for the workers.
std::vector<int> free_ports(int n) {
  std::vector<std::unique_ptr<TcpTransport>> held;
  std::vector<int> ports;
  for (int i = 0; i < n; ++i) {
    held.push_back(std::make_unique<TcpTransport>());
    ports.push_back(held.back()->bind("127.0.0.1", 0));
  }
  return ports;
}

// Buffers reused once no in-flight message refers to them any more.
class VectorPool {
 public:
  explicit VectorPool(std::size_t n) : n_(n) {}
  std::shared_ptr<std::vector<float>> get() {
    for (auto& v : pool_) {
      if (v.use_count() == 1) {
        std::atomic_thread_fence(std::memory_order_acquire);  // the network thread is done
        return v;
      }
    }
    pool_.push_back(std::make_shared<std::vector<float>>(n_));
    return pool_.back();
  }

 private:
  std::size_t n_;
  std::vector<std::shared_ptr<std::vector<float>>> pool_;
};

Payload as_payload(const std::shared_ptr<std::vector<float>>& v) {
  return Payload::share(std::shared_ptr<const std::vector<float>>(v));
}

// Barrier over the control ring, as gloo's dist.barrier() before a timed round: an arrival
// token goes 0 -> 1 -> ... -> n-1 -> 0, then node 0 releases both ways round the ring (n/2
// hops to the farthest node). Each node leaves when its release arrives and times its round
// from there, as gloo_gossip.py times each rank from its own exit of the barrier.
void ring_barrier(Transport& t, int n, std::int64_t id) {
  const int me = t.self();
  const int right = (me + 1) % n, left = (me + n - 1) % n;
  auto send = [&](int to, MessageKind k) {
    Message m;
    m.kind = k;
    m.round = id;
    m.link = LinkKind::kControl;
    if (!t.send(to, std::move(m))) throw Error("barrier: send failed");
  };
  auto wait = [&](int from, MessageKind k) {
    MessageFilter f;
    f.sender = from;
    f.round = id;
    f.kind = k;
    f.link = LinkKind::kControl;
    if (!t.take(f, kTake))
      throw Error("barrier " + std::to_string(id) + ": node " + std::to_string(me) +
                  " timed out waiting for node " + std::to_string(from));
  };
  constexpr MessageKind kArrive = MessageKind::kBarrier, kRelease = MessageKind::kBenchRelease;
  if (me == 0) {
    send(right, kArrive);
    wait(left, kArrive);
    send(right, kRelease);
    if (left != right) send(left, kRelease);
    return;
  }
  wait(left, kArrive);
  send(right, kArrive);
  // Release comes from the side nearer to 0 and goes on away from it.
  const bool from_left = me <= n / 2;
  wait(from_left ? left : right, kRelease);
  const int next = from_left ? right : left;
  const bool last = from_left ? (me == n / 2 || next == 0) : (me == n / 2 + 1);
  if (!last && next != 0) send(next, kRelease);
}

// Dissemination barrier (what gloo's barrier does): in step k every node sends to
// me + 2^k and waits for me - 2^k, so all nodes leave within one message of each other;
// the ring barrier releases nodes up to n/2 hops apart. Needs data links at distances
// 1, 2, 4, ... < n, which the push-sum graph has when n <= 2^round(log2 n).
void dissemination_barrier(Transport& t, int n, std::int64_t id) {
  const int me = t.self();
  constexpr MessageKind kStep = MessageKind::kBenchStep;
  for (int d = 1; d < n; d *= 2) {
    Message m;
    m.kind = kStep;
    m.round = -1 - id;  // below every data round, so no data take() can match it
    if (!t.send((me + d) % n, std::move(m))) throw Error("barrier: send failed");
    MessageFilter f;
    f.sender = (me - d % n + n) % n;
    f.round = -1 - id;
    f.kind = kStep;
    f.link = LinkKind::kData;
    if (!t.take(f, kTake))
      throw Error("barrier " + std::to_string(id) + ": node " + std::to_string(me) +
                  " timed out waiting for node " + std::to_string(f.sender));
  }
}

Message take_or_throw(Transport& t, int from, std::int64_t round, std::size_t floats = SIZE_MAX) {
  auto m = t.take(from, round, kTake);
  if (!m)
    throw Error("node " + std::to_string(t.self()) + ": no message from node " +
                std::to_string(from) + " for round " + std::to_string(round));
  if (floats != SIZE_MAX && m->payload.size() != floats * sizeof(float))
    throw Error("node " + std::to_string(t.self()) + ": message of " +
                std::to_string(m->payload.size()) + " bytes from node " + std::to_string(from) +
                ", expected " + std::to_string(floats * sizeof(float)));
  return std::move(*m);
}

nlohmann::json run_pair(const NetBenchOptions& o) {
  auto opt = bench_options(o.transport == "shm" ? net::new_secret() : std::string());
  if (o.tls) {
    opt.tls = true;
    opt.secret = net::new_secret();
  }
  TcpTransport a(opt), b(opt);
  const std::vector<int> ports = {a.bind("127.0.0.1", 0), b.bind("127.0.0.1", 0)};
  const Topology topo = bench_topology("ring", 2, ports);
  a.start(topo, 0);
  b.start(topo, 1);
  a.wait_connected();
  b.wait_connected();
  if (o.transport == "shm") wait_shm(a, 1);
  const int total = o.repeats + 1;
  std::atomic<bool> failed{false};
  std::thread echo([&] {
    try {
      for (int r = 0; r < total; ++r) {
        Message m = take_or_throw(b, 0, r);
        m.sender = -1;
        b.send(0, std::move(m));  // the received buffer goes back as it is
      }
    } catch (const std::exception& e) {
      log::error("bench pair echo: ", e.what());
      failed = true;
    }
  });
  auto v = std::make_shared<std::vector<float>>(o.floats);
  for (std::size_t k = 0; k < v->size(); ++k) (*v)[k] = static_cast<float>(k);
  std::vector<double> gbps;
  bool ok = true;
  for (int r = 0; r < total && !failed; ++r) {
    Message m;
    m.round = r;
    m.payload = as_payload(v);
    const auto t0 = Clock::now();
    a.send(1, std::move(m));
    auto back = a.take(1, r, kTake);
    const double s = seconds_since(t0);
    if (!back || back->payload.size() != o.floats * sizeof(float)) {
      ok = false;
      break;
    }
    if (r > 0) gbps.push_back(2.0 * static_cast<double>(o.floats) * sizeof(float) / s / 1e9);
  }
  echo.join();
  if (!ok || failed) throw Error("bench net pair: a message did not come back");
  const Figures f = figures(gbps);
  return {{"bench", "rumor-net"},
          {"mode", "pair"},
          {"tls", o.tls},
          {"transport", o.transport},
          {"floats", o.floats},
          {"repeats", o.repeats},
          {"gbps", {{"median", f.median}, {"min", f.min}, {"max", f.max}}},
          {"definition",
           "payload GB/s of a D-float message from peer 0 to peer 1 and back, "
           "2*4D bytes / round-trip time"}};
}

// One peer process of ring/pushsum mode: its state and its rounds.
class Worker {
 public:
  Worker(const NetBenchWorker& w, Transport& t)
      : w_(w),
        t_(t),
        n_(w.nodes),
        d_(w.floats),
        pool_(w.floats),
        left_((w.id + n_ - 1) % n_),
        right_((w.id + 1) % n_),
        logn_(log2_nodes(n_)),
        disseminate_(w.mode == "pushsum" && (1 << logn_) >= n_) {
    x_ = pool_.get();
    std::fill(x_->begin(), x_->end(), static_cast<float>(w.id));
    // Push-sum keeps its state halved, h = x/2 (and w/2): the half a round sends is then
    // ready, and x/2 + received (gloo's mul_ then add_) becomes one pass over memory,
    // h' = (h + received) / 2. The bytes sent and the sums are the same; x = 2h.
    if (w.mode == "pushsum") {
      for (float& v : *x_) v *= 0.5f;
      weight_ *= 0.5;
    }
  }

  // Barrier, warm-up, the measured rounds, a final barrier; this worker's figures.
  nlohmann::json run();

 private:
  void round(std::int64_t r) {
    if (w_.mode == "ring") {
      ring_round(r);
    } else {
      pushsum_round(r);
    }
    ++step_;
  }
  void ring_round(std::int64_t r);
  void pushsum_round(std::int64_t r);
  void barrier() {
    if (disseminate_) {
      dissemination_barrier(t_, n_, barrier_id_++);
    } else {
      ring_barrier(t_, n_, barrier_id_++);
    }
  }
  // Push-sum's check, as gloo_gossip.py's: x / w is the exact average of the ranks once
  // every node has heard from all (log2 n rounds of the exponential graph).
  double avg_err() const {
    double err = 0;
    if (w_.mode == "pushsum")
      for (float v : *x_)
        err = std::max(err, std::abs(v / weight_ - (n_ - 1) / 2.0));  // h/w_h = x/w
    return err;
  }

  const NetBenchWorker& w_;
  Transport& t_;
  const int n_;
  const std::size_t d_;
  VectorPool pool_;
  std::shared_ptr<std::vector<float>> x_;
  double weight_ = 1.0;
  const int left_, right_, logn_;
  const bool disseminate_;
  std::int64_t step_ = 0;
  std::int64_t barrier_id_ = 0;
};

void Worker::ring_round(std::int64_t r) {
  for (int to : {right_, left_}) {
    if (to == w_.id) continue;
    Message m;
    m.round = r;
    m.payload = as_payload(x_);
    t_.send(to, std::move(m));
    if (left_ == right_) break;
  }
  Message ml = take_or_throw(t_, left_, r, d_);
  const float* l = reinterpret_cast<const float*>(ml.payload.data());
  auto next = pool_.get();
  // Raw restrict pointers: through the vectors the compiler cannot rule out aliasing
  // with the received buffer and would not vectorize these loops.
  float* __restrict out = next->data();
  const float* __restrict xs = x_->data();
  if (left_ == right_) {
    for (std::size_t k = 0; k < d_; ++k) out[k] = (xs[k] + 2 * l[k]) / 3.0f;
  } else {
    Message mr = take_or_throw(t_, right_, r, d_);
    const float* __restrict rr = reinterpret_cast<const float*>(mr.payload.data());
    for (std::size_t k = 0; k < d_; ++k) out[k] = (xs[k] + l[k] + rr[k]) / 3.0f;
  }
  x_ = next;
}

void Worker::pushsum_round(std::int64_t r) {
  const int hop = 1 << (step_ % logn_);
  const int dst = (w_.id + hop) % n_, src = (w_.id - hop % n_ + n_) % n_;
  Message m;
  m.round = r;
  m.scalars = {weight_};
  m.payload = as_payload(x_);  // x/2: push-sum's outgoing half
  t_.send(dst, std::move(m));
  Message in = take_or_throw(t_, src, r, d_);
  const float* __restrict v = reinterpret_cast<const float*>(in.payload.data());
  // The half still being sent stays untouched: the new state goes to a free buffer.
  auto next = pool_.get();
  {
    float* __restrict out = next->data();
    const float* __restrict h = x_->data();
    for (std::size_t k = 0; k < d_; ++k) out[k] = (h[k] + v[k]) * 0.5f;
  }
  weight_ = (weight_ + (in.scalars.empty() ? 0.0 : in.scalars[0])) * 0.5;
  x_ = next;
}

nlohmann::json Worker::run() {
  std::int64_t r = 0;
  barrier();
  for (int k = 0; k < 2; ++k) round(r++);  // warm-up
  // Per round: this node's own time (gloo's definition) and its start and end on the
  // monotonic clock all workers share, for the span from the first start to the last end.
  std::vector<double> times, starts, ends;
  const auto epoch = [](Clock::time_point tp) {
    return std::chrono::duration<double>(tp.time_since_epoch()).count();
  };
  for (int k = 0; k < w_.rounds; ++k) {
    barrier();
    const auto t0 = Clock::now();
    round(r++);
    const auto t1 = Clock::now();
    times.push_back(std::chrono::duration<double>(t1 - t0).count());
    starts.push_back(epoch(t0));
    ends.push_back(epoch(t1));
  }
  ring_barrier(t_, n_, barrier_id_++);  // nobody stops while others still wait on it
  // Nodes leave that barrier one release hop apart: let the last releases go out before
  // the links close (as the node runner does), so no peer sees a link reset.
  std::this_thread::sleep_for(200ms);
  const auto s = t_.stats();
  return {{"id", w_.id},
          {"times_s", times},
          {"starts_s", starts},
          {"ends_s", ends},
          {"weight", w_.mode == "pushsum" ? 2 * weight_ : weight_},
          {"avg_err", avg_err()},
          {"data_bytes_sent", s.data_bytes_sent},
          {"ctrl_bytes_sent", s.ctrl_bytes_sent},
          {"drops", s.drops}};
}

// Starts one worker process per node; returns their pids.
std::vector<pid_t> spawn_workers(const NetBenchOptions& o, const std::filesystem::path& dir,
                                 const std::vector<int>& ports) {
  std::string ports_csv;
  for (int p : ports) ports_csv += (ports_csv.empty() ? "" : ",") + std::to_string(p);
  std::vector<pid_t> pids;
  for (int i = 0; i < o.nodes; ++i) {
    std::vector<std::string> args = {
        o.exe,           "--log-level",
        "warn",          "bench",
        "net",           "--worker",
        "--mode",        o.mode,
        "--id",          std::to_string(i),
        "--nodes",       std::to_string(o.nodes),
        "--floats",      std::to_string(o.floats),
        "--rounds",      std::to_string(o.rounds),
        "--ports",       ports_csv,
        "--transport",   o.transport,
        "--secret-file", (dir / "secret").string(),
        "--out",         (dir / ("worker-" + std::to_string(i) + ".json")).string()};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid = 0;
    if (posix_spawn(&pid, o.exe.c_str(), nullptr, nullptr, argv.data(), environ) != 0) {
      for (pid_t p : pids) ::kill(p, SIGKILL);
      for (pid_t p : pids) ::waitpid(p, nullptr, 0);
      throw Error("bench net: cannot start worker " + o.exe);
    }
    pids.push_back(pid);
  }
  return pids;
}

// Waits for every worker; kills the ones we started if they overrun. True when all succeeded.
bool wait_workers(const std::vector<pid_t>& pids, Clock::time_point t0, double timeout_s) {
  bool all_ok = true;
  for (std::size_t i = 0; i < pids.size(); ++i) {
    const pid_t pid = pids[i];
    int status = 0;
    while (true) {
      const pid_t r = ::waitpid(pid, &status, WNOHANG);
      if (r == pid) break;
      if (seconds_since(t0) > timeout_s) {
        for (pid_t p : pids) ::kill(p, SIGKILL);
        ::waitpid(pid, &status, 0);
        all_ok = false;
        break;
      }
      std::this_thread::sleep_for(20ms);
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      all_ok = false;
      if (WIFSIGNALED(status))
        log::error("bench net: worker ", i, " died of signal ", WTERMSIG(status));
    }
  }
  if (!all_ok)
    for (pid_t p : pids) ::waitpid(p, nullptr, WNOHANG);
  return all_ok;
}

// The workers' figures, read back from their JSON files.
struct WorkerResults {
  std::vector<std::vector<double>> times, starts, ends;
  std::uint64_t data_bytes = 0, ctrl_bytes = 0, drops = 0;
  double weight_sum = 0, avg_err = 0;
};

WorkerResults read_results(int nodes, const std::filesystem::path& dir) {
  WorkerResults res;
  for (int i = 0; i < nodes; ++i) {
    std::ifstream in(dir / ("worker-" + std::to_string(i) + ".json"));
    const auto j = nlohmann::json::parse(in);
    res.times.push_back(j.at("times_s").get<std::vector<double>>());
    res.starts.push_back(j.at("starts_s").get<std::vector<double>>());
    res.ends.push_back(j.at("ends_s").get<std::vector<double>>());
    res.data_bytes += j.at("data_bytes_sent").get<std::uint64_t>();
    res.ctrl_bytes += j.at("ctrl_bytes_sent").get<std::uint64_t>();
    res.drops += j.at("drops").get<std::uint64_t>();
    res.weight_sum += j.at("weight").get<double>();
    res.avg_err = std::max(res.avg_err, j.at("avg_err").get<double>());
  }
  return res;
}

nlohmann::json summarize(const NetBenchOptions& o, const WorkerResults& res, Clock::time_point t0) {
  std::vector<double> round_ms, span_ms;
  for (std::size_t r = 0; r < static_cast<std::size_t>(o.rounds); ++r) {
    double m = 0, first = INFINITY, last = -INFINITY;
    for (int i = 0; i < o.nodes; ++i) {
      const auto w = static_cast<std::size_t>(i);
      m = std::max(m, res.times[w].at(r));
      first = std::min(first, res.starts[w].at(r));
      last = std::max(last, res.ends[w].at(r));
    }
    round_ms.push_back(m * 1e3);
    span_ms.push_back((last - first) * 1e3);
  }
  const Figures f = figures(round_ms);
  const Figures span = figures(span_ms);
  const double bytes = 4.0 * static_cast<double>(o.floats);
  const double per_rank = (o.mode == "ring" ? 2 * bytes : bytes) / (f.median / 1e3) / 1e9;
  nlohmann::json out = {{"bench", "rumor-net"},
                        {"mode", o.mode},
                        {"transport", o.transport},
                        {"nodes", o.nodes},
                        {"floats", o.floats},
                        {"rounds", o.rounds},
                        {"median_ms", f.median},
                        {"min_ms", f.min},
                        {"max_ms", f.max},
                        {"span_median_ms", span.median},
                        {"span_max_ms", span.max},
                        {"per_rank_sent_GBps", per_rank},
                        {"data_bytes_sent", res.data_bytes},
                        {"ctrl_bytes_sent", res.ctrl_bytes},
                        {"drops", res.drops},
                        {"wall_s", seconds_since(t0)},
                        {"definition",
                         "a barrier (not timed; push-sum: a dissemination barrier over its "
                         "links, as gloo's; ring: over the control ring), then each node times "
                         "its own round from leaving the barrier, as gloo_gossip.py's synced "
                         "mode; a round's time is the slowest node's; span: first start to last "
                         "end over nodes on the shared monotonic clock. Push-sum keeps its state "
                         "halved, so keep-half and add are one pass (same bytes and sums)"}};
  if (o.mode == "pushsum") {
    out["pushsum_weight_sum"] = res.weight_sum;  // conserved: == nodes
    out["pushsum_exact_avg_err"] = res.avg_err;  // max |x/w - mean of the ranks| at the end
  }
  return out;
}

}  // namespace

int run_net_bench_worker(const NetBenchWorker& w) {
  try {
    const Topology topo = bench_topology(w.mode, w.nodes, w.ports);
    const bool shm = !w.secret_file.empty();
    TcpTransport t(bench_options(shm ? net::read_secret_file(w.secret_file) : std::string()));
    t.start(topo, w.id);
    t.wait_connected();
    if (shm)
      for (int p : t.peers(net::LinkKind::kData)) wait_shm(t, p);
    const nlohmann::json out = Worker(w, t).run();
    std::ofstream(w.out) << out.dump() << "\n";
    t.stop();
    return 0;
  } catch (const std::exception& e) {
    log::error("bench net worker ", w.id, ": ", e.what());
    return 1;
  }
}

nlohmann::json run_net_bench(const NetBenchOptions& o) {
  if (o.floats == 0) throw ConfigError("bench net: --floats must be positive");
  if (o.mode == "pair") return run_pair(o);
  if (o.mode != "ring" && o.mode != "pushsum")
    throw ConfigError("bench net: unknown --mode '" + o.mode + "' (pair, ring or pushsum)");
  if (o.nodes < 2) throw ConfigError("bench net: --nodes must be at least 2");
  if (o.exe.empty()) throw Error("bench net: no binary to start the worker processes with");
  const auto dir =
      std::filesystem::temp_directory_path() / ("rumor-bench-net-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::vector<int> ports = free_ports(o.nodes);
  net::write_secret_file((dir / "secret").string(), net::new_secret());
  const auto t0 = Clock::now();
  const std::vector<pid_t> pids = spawn_workers(o, dir, ports);
  if (!wait_workers(pids, t0, o.timeout_s)) {
    std::filesystem::remove_all(dir);
    throw Error("bench net " + o.mode + ": a worker failed (see its log lines above)");
  }
  const WorkerResults res = read_results(o.nodes, dir);
  std::filesystem::remove_all(dir);
  return summarize(o, res, t0);
}

}  // namespace rumor::bench
