// `rumor launch`: every peer of the topology as a child process on this machine.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <thread>

#include "fault_options.hpp"
#include "node_files.hpp"
#include "peer_process.hpp"
#include "progress.hpp"
#include "rumor/common/error.hpp"
#include "rumor/common/log.hpp"
#include "rumor/common/rng.hpp"
#include "rumor/net/secret.hpp"
#include "rumor/run/run.hpp"
#include "rumor/run/setup.hpp"

namespace rumor::run {
namespace {

namespace fs = std::filesystem;
std::atomic<bool> g_interrupted{false};

extern "C" void on_sigint(int) {
  g_interrupted = true;
}

bool port_free(const std::string& host, int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  if (::inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
    ::close(fd);
    return true;  // not an IPv4 literal: let the node report it
  }
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

bool range_free(const Topology& t, int base) {
  for (const auto& node : t.nodes())
    if (base + node.id > 65535 || !port_free(node.host, base + node.id)) return false;
  return true;
}

std::string last_line(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  const std::streamoff from = std::max<std::streamoff>(0, size - 4096);
  in.seekg(from);
  std::string tail((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!tail.empty() && tail.back() == '\n') tail.pop_back();
  const auto nl = tail.rfind('\n');
  return nl == std::string::npos ? (from == 0 ? tail : std::string()) : tail.substr(nl + 1);
}

std::string tail_lines(const fs::path& path, std::size_t count) {
  std::ifstream in(path);
  std::deque<std::string> lines;
  std::string line;
  while (std::getline(in, line)) {
    lines.push_back(line);
    if (lines.size() > count) lines.pop_front();
  }
  std::string out;
  for (const auto& l : lines) out += "    " + l + "\n";
  return out;
}

std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exit status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status))
    return std::string("killed by signal ") + std::to_string(WTERMSIG(status)) + " (" +
           ::strsignal(WTERMSIG(status)) + ")";
  return "status " + std::to_string(status);
}

void stop_children(const std::vector<pid_t>& pids, const std::vector<bool>& alive) {
  for (std::size_t i = 0; i < pids.size(); ++i)
    if (alive[i]) ::kill(pids[i], SIGTERM);
  // Bounded wait, then force.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  std::vector<bool> left = alive;
  while (std::chrono::steady_clock::now() < deadline) {
    bool any = false;
    for (std::size_t i = 0; i < pids.size(); ++i) {
      if (!left[i]) continue;
      int st = 0;
      if (::waitpid(pids[i], &st, WNOHANG) == pids[i])
        left[i] = false;
      else
        any = true;
    }
    if (!any) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  for (std::size_t i = 0; i < pids.size(); ++i) {
    if (!left[i]) continue;
    ::kill(pids[i], SIGKILL);
    int st = 0;
    ::waitpid(pids[i], &st, 0);
  }
}

// The config file and overrides of a launch: as given, or a recorded run's own config.json
// with its results left where they are.
PeerCommand peer_command(const LaunchOptions& o) {
  PeerCommand c;
  c.overrides = o.overrides;
  c.config_path = o.config_path;
  c.resume = !o.resume_dir.empty();
  c.sched_batch = o.sched_batch;
  if (c.resume) {
    c.config_path = (fs::path(o.resume_dir) / "config.json").string();
    c.overrides = {"output.dir=" + recorded_config(o.resume_dir).get<std::string>("output.dir")};
  }
  return c;
}

// When the topology file leaves ports to us: keep the default range when it is free, else
// find one. Returns the network.base_port override; nothing when the file sets the ports.
std::optional<std::string> base_port_override(const Topology& topology) {
  if (topology.ports_explicit()) return std::nullopt;
  int base = 29500;
  Rng rng = Rng::derive(static_cast<std::uint64_t>(::getpid()), 0x9047);
  int attempts = 0;
  while (!range_free(topology, base)) {
    if (++attempts > 100)
      throw Error("launch: no free range of " + std::to_string(topology.size()) +
                  " ports found on this machine; set base_port in the topology file");
    // Below Linux's ephemeral range (32768-60999): a port there may be taken meanwhile as
    // the source port of an outgoing connection (even one to a standby node's port).
    base = 10000 + static_cast<int>(rng.below(22000));
  }
  return "network.base_port=" + std::to_string(base);
}

// Peers of a launch authenticate each other with a fresh secret of this run (RUNDIR/secret,
// 0600), unless the config names its own. Returns the network.secret_file override.
std::optional<std::string> run_secret_override(const config::Config& cfg,
                                               const std::string& run_dir) {
  if (cfg.at("network.secret_file").is_string()) return std::nullopt;
  const std::string path = fs::absolute(fs::path(run_dir) / "secret").string();
  net::write_secret_file(path, net::new_secret());
  return "network.secret_file=" + path;
}

std::string self_exe() {
  char exe[4096];
  const ssize_t len = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (len <= 0) throw Error("launch: cannot find the rumor executable (/proc/self/exe)");
  exe[len] = '\0';
  return exe;
}

// Ctrl-C and SIGTERM set g_interrupted while the peers run; restore() puts the old handlers back.
class InterruptFlag {
 public:
  InterruptFlag() {
    struct sigaction sa {};
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGINT, &sa, &old_int_);
    ::sigaction(SIGTERM, &sa, &old_term_);
  }
  void restore() {
    ::sigaction(SIGINT, &old_int_, nullptr);
    ::sigaction(SIGTERM, &old_term_, nullptr);
  }

 private:
  struct sigaction old_int_ = {};
  struct sigaction old_term_ = {};
};

using Clock = std::chrono::steady_clock;

// The peer processes of a launch and what became of them.
struct PeerSet {
  explicit PeerSet(int n)
      : pids(n, -1), alive(n, false), lost(n, false), restarts(n, 0), restart_at(n) {}
  void start(const PeerCommand& c, int i, bool rejoin) {
    pids[i] = spawn_peer(c, i, rejoin);
    alive[i] = true;
  }
  std::vector<pid_t> pids;
  std::vector<bool> alive;
  std::vector<bool> lost;  // died (on_peer_failure continue), not finished
  std::vector<int> restarts;
  std::vector<std::optional<Clock::time_point>> restart_at;
  int running = 0;
  int failed = -1, failed_status = 0;  // the first peer that failed (on_peer_failure stop)
};

// How the launcher reacts to a peer that dies.
struct FailurePolicy {
  bool keep_going = false;      // on_peer_failure continue
  double restart_after = -1.0;  // faults.restart_after_s; < 0: no restart
  bool progress = false;        // a progress line is shown: start messages on a new line
};

// Waits up to `most` between polls, waking within 10 ms once a peer has exited (not reaped
// here): the last peer's exit is seen at once, not up to a poll later.
void wait_poll(std::chrono::milliseconds most) {
  const auto until = Clock::now() + most;
  for (;;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    siginfo_t info{};
    if (::waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid != 0) return;
    if (Clock::now() >= until) return;
  }
}

// Reaps the peers that exited since the last poll.
void reap_exited(PeerSet& p, const FailurePolicy& policy) {
  for (std::size_t i = 0; i < p.pids.size(); ++i) {
    if (!p.alive[i]) continue;
    int status = 0;
    if (::waitpid(p.pids[i], &status, WNOHANG) != p.pids[i]) continue;
    p.alive[i] = false;
    --p.running;
    const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    p.lost[i] = !ok;
    if (ok) continue;
    if (policy.keep_going) {
      // The others go on; the launcher reports the loss (and restarts the peer if asked).
      if (policy.progress) std::cerr << "\n";
      std::cerr << "launch: peer " << i << " (pid " << p.pids[i]
                << ") died: " << describe_status(status)
                << "; on_peer_failure continue: the others go on without it\n";
      if (policy.restart_after >= 0 && p.restarts[i] < 3)
        p.restart_at[i] =
            Clock::now() +
            std::chrono::milliseconds(static_cast<std::int64_t>(policy.restart_after * 1000));
    } else if (p.failed < 0) {
      p.failed = static_cast<int>(i);
      p.failed_status = status;
    }
  }
}

// Restarts the dead peers whose restart time has come; they rejoin the running peers.
void restart_due(PeerSet& p, const PeerCommand& c, const FailurePolicy& policy) {
  for (std::size_t i = 0; i < p.pids.size(); ++i) {
    if (!p.restart_at[i] || Clock::now() < *p.restart_at[i]) continue;
    p.restart_at[i].reset();
    if (p.running == 0) break;  // nobody left to rejoin
    ++p.restarts[i];
    p.start(c, static_cast<int>(i), true);
    ++p.running;
    p.lost[i] = false;
    if (policy.progress) std::cerr << "\n";
    std::cerr << "launch: restarted peer " << i << " (pid " << p.pids[i] << "); it rejoins\n";
  }
}

// Progress from the newest metrics line of every node (peers that died left out).
// `last_acc`: the last mean test accuracy every counted node reported, kept between polls.
void show_progress(Progress& progress, const std::string& run_dir, const std::vector<bool>& lost,
                   std::int64_t rounds, double& last_acc) {
  std::int64_t done = rounds;
  double loss = 0, mb = 0, acc = 0;
  int accs = 0, seen = 0, counted = 0;
  for (std::size_t i = 0; i < lost.size(); ++i) {
    if (lost[i]) continue;
    ++counted;
    const std::string line = last_line(node_file(run_dir, static_cast<int>(i), ".jsonl"));
    if (line.empty()) {
      done = 0;
      continue;
    }
    try {
      const auto j = nlohmann::json::parse(line);
      done = std::min(done, j.value("round", std::int64_t{-1}) + 1);
      loss += j.value("loss", 0.0);
      mb += j.value("bytes_sent", 0.0) / 1e6;
      if (j.contains("test_acc")) {
        acc += j["test_acc"].get<double>();
        ++accs;
      }
      ++seen;
    } catch (const nlohmann::json::exception&) {
      // A line being written right now: skip this poll.
    }
  }
  if (accs == counted && counted > 0) last_acc = acc / counted;
  if (seen > 0) progress.update(done, loss / seen, last_acc, mb);
}

// The newest round any counted node has finished (from its metrics file); -1 before any.
std::int64_t newest_round(const std::string& run_dir, const PeerSet& p) {
  std::int64_t newest = -1;
  for (std::size_t i = 0; i < p.pids.size(); ++i) {
    if (!p.alive[i]) continue;
    const std::string line = last_line(node_file(run_dir, static_cast<int>(i), ".jsonl"));
    try {
      if (!line.empty())
        newest = std::max(newest, nlohmann::json::parse(line).value("round", std::int64_t{-1}));
    } catch (const nlohmann::json::exception&) {
      // a line being written right now: the next poll reads it
    }
  }
  return newest;
}

// Scripted joins (faults.join): a standby peer is started a few rounds before its round; its
// neighbours hold there for its request (at most network.connect_timeout_s).
void start_joiners(PeerSet& p, const PeerCommand& c, const FaultOptions& f,
                   std::vector<bool>& started, const FailurePolicy& policy) {
  if (f.joins.empty() || p.running == 0) return;
  const std::int64_t newest = newest_round(c.run_dir, p);
  for (std::size_t k = 0; k < f.joins.size(); ++k) {
    const auto& e = f.joins[k];
    if (started[k] || newest + 3 < e.round) continue;
    started[k] = true;
    p.start(c, e.node, false);
    ++p.running;
    if (policy.progress) std::cerr << "\n";
    std::cerr << "launch: started standby peer " << e.node << " (pid " << p.pids[e.node]
              << "); it joins before round " << e.round + 1 << "\n";
  }
}

// Scripted pauses (faults.pause) of peer processes: SIGSTOP once the peer has logged the
// round before its pause round, SIGCONT `seconds` later. What its neighbours do meanwhile is
// theirs to decide (they wait up to the round deadline, then go on without it).
struct Pauses {
  explicit Pauses(std::size_t n) : stopped(n), done(n, false) {}
  std::vector<std::optional<Clock::time_point>> stopped;
  std::vector<bool> done;
};

void pause_due(PeerSet& p, const PeerCommand& c, const FaultOptions& f, Pauses& state,
               const FailurePolicy& policy) {
  for (std::size_t k = 0; k < f.pauses.size(); ++k) {
    const auto& e = f.pauses[k];
    if (state.done[k] || !p.alive[e.node]) continue;
    if (auto& at = state.stopped[k]; at) {
      if (Clock::now() <
          *at + std::chrono::milliseconds(static_cast<std::int64_t>(e.seconds * 1000)))
        continue;
      ::kill(p.pids[e.node], SIGCONT);
      state.done[k] = true;
      if (policy.progress) std::cerr << "\n";
      std::cerr << "launch: resumed peer " << e.node << " after " << e.seconds << " s\n";
      continue;
    }
    const std::string line = last_line(node_file(c.run_dir, e.node, ".jsonl"));
    try {
      if (line.empty() ||
          nlohmann::json::parse(line).value("round", std::int64_t{-1}) + 1 < e.round)
        continue;
    } catch (const nlohmann::json::exception&) {
      continue;  // a line being written right now
    }
    ::kill(p.pids[e.node], SIGSTOP);
    state.stopped[k] = Clock::now();
    if (policy.progress) std::cerr << "\n";
    std::cerr << "launch: paused peer " << e.node << " (SIGSTOP) before round " << e.round + 1
              << " for " << e.seconds << " s\n";
  }
}

// Ctrl-C: stop every peer and summarize what was written.
int finish_interrupted(const PeerSet& p, const std::string& run_dir) {
  stop_children(p.pids, p.alive);
  std::cerr << "launch: interrupted; stopped all peers. What was written is kept in " << run_dir
            << "\n";
  try {
    std::cerr << summary_text(summarize(run_dir));
  } catch (const Error&) {
  }
  return 130;
}

// A peer failed (on_peer_failure stop): stop the others and show the end of its log.
int finish_failed(const PeerSet& p, const std::string& run_dir) {
  stop_children(p.pids, p.alive);
  const auto log_path = node_file(run_dir, p.failed, ".log");
  std::cerr << "launch: peer " << p.failed << " (pid " << p.pids[p.failed]
            << ") failed: " << describe_status(p.failed_status) << "; stopped the other peers.\n"
            << "  last lines of " << log_path << ":\n"
            << tail_lines(log_path, 12);
  try {
    summarize(run_dir);
  } catch (const Error&) {
  }
  return 1;
}

// Every peer ended: print the summary and name the peers that died and did not finish.
int finish_completed(const std::string& run_dir, const std::vector<bool>& lost,
                     std::int64_t rounds) {
  const auto summary = summarize(run_dir);
  std::cout << summary_text(summary);
  // A peer that died may have been restarted by hand (rumor node --rejoin) and finished.
  std::vector<int> gone;
  for (std::size_t i = 0; i < lost.size(); ++i) {
    if (!lost[i]) continue;
    const std::string line = last_line(node_file(run_dir, static_cast<int>(i), ".jsonl"));
    try {
      if (!line.empty() &&
          nlohmann::json::parse(line).value("round", std::int64_t{-1}) + 1 == rounds)
        continue;
    } catch (const nlohmann::json::exception&) {
    }
    gone.push_back(static_cast<int>(i));
  }
  if (gone.empty()) return 0;
  const std::size_t n = lost.size();
  std::cerr << "launch: " << gone.size() << " peer(s) died and did not finish:";
  for (int i : gone) std::cerr << " " << i;
  std::cerr << " (see their node-<i>.log); the figures above are over the " << n - gone.size()
            << " that did\n";
  return gone.size() == n ? 1 : 0;
}

}  // namespace

int launch(const LaunchOptions& o) {
  PeerCommand cmd = peer_command(o);
  config::Config cfg = config::Config::load(cmd.config_path, cmd.overrides);
  Topology topology = topology_of(cfg);
  if (auto port = base_port_override(topology)) {
    cmd.overrides.push_back(*port);
    cfg = config::Config::load(cmd.config_path, cmd.overrides);
    topology = topology_of(cfg);
  }
  const int n = topology.size();
  // Checked here as every peer will check it, so a bad config fails once, before any spawn.
  const FaultOptions faults = FaultOptions::parse(cfg, topology);
  cmd.run_dir = cfg.run_dir();
  fs::create_directories(cmd.run_dir);
  if (cmd.resume && gossip::method_info(cfg.get<std::string>("method.name")).asynchronous) {
    std::cerr << "launch: resuming each node from its own newest checkpoint (no common round: "
                 "the method is asynchronous)\n";
  } else if (cmd.resume) {
    const std::int64_t after = resume_point(cmd.run_dir, n);  // warns first if it falls back
    std::cerr << "launch: resuming after round " << after + 1 << "\n";
  } else {
    write_config_record(cfg, cmd.run_dir);
  }
  if (auto secret = run_secret_override(cfg, cmd.run_dir)) cmd.overrides.push_back(*secret);
  FailurePolicy policy;
  policy.keep_going = faults.keep_going;
  policy.restart_after = faults.restart_after_s.value_or(-1.0);
  policy.progress = o.progress;
  cmd.exe = self_exe();

  std::cerr << "launch: run " << cfg.run_id() << ", " << n << " peers on this machine, results in "
            << cmd.run_dir << "\n";
  if (fork_start_wanted(o.node_entry)) {
    cmd.entry = o.node_entry;
    // Loaded once here: the forked peers find it in the cache, shared copy-on-write.
    keep_data_loaded(cfg);
  }
  InterruptFlag interrupt;
  PeerSet peers(n);
  for (int i = 0; i < n; ++i) {
    if (topology.standby(i)) continue;  // started when it joins (faults.join), or by hand
    peers.start(cmd, i, false);
    ++peers.running;
  }
  std::vector<bool> joined(faults.joins.size(), false);
  Pauses paused(faults.pauses.size());

  const std::int64_t rounds = cfg.get<std::int64_t>("rounds");
  Progress progress(rounds, o.progress);
  double last_acc = -1;
  while (peers.running > 0) {
    wait_poll(std::chrono::milliseconds(200));
    reap_exited(peers, policy);
    restart_due(peers, cmd, policy);
    start_joiners(peers, cmd, faults, joined, policy);
    pause_due(peers, cmd, faults, paused, policy);
    if (g_interrupted || (peers.failed >= 0 && !policy.keep_going)) break;
    std::vector<bool> skip = peers.lost;  // and standby peers not started yet
    for (int i = 0; i < n; ++i) skip[i] = skip[i] || peers.pids[i] < 0;
    show_progress(progress, cmd.run_dir, skip, rounds, last_acc);
  }
  progress.finish();
  interrupt.restore();

  if (g_interrupted) return finish_interrupted(peers, cmd.run_dir);
  if (peers.failed >= 0) return finish_failed(peers, cmd.run_dir);
  return finish_completed(cmd.run_dir, peers.lost, rounds);
}

}  // namespace rumor::run
