// `rumor launch`: every peer of the topology as a child process on this machine.
#include <arpa/inet.h>
#include <fcntl.h>
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

#include "progress.hpp"
#include "rumor/common/error.hpp"
#include "rumor/common/log.hpp"
#include "rumor/common/rng.hpp"
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

}  // namespace

int launch(const LaunchOptions& o) {
  std::vector<std::string> overrides = o.overrides;
  std::string config_path = o.config_path;
  const bool resume = !o.resume_dir.empty();
  if (resume) {
    // Continue a recorded run: its own config.json, results where they are.
    config_path = (fs::path(o.resume_dir) / "config.json").string();
    overrides = {"output.dir=" + recorded_config(o.resume_dir).get<std::string>("output.dir")};
  }
  config::Config cfg = config::Config::load(config_path, overrides);
  Topology topology = topology_of(cfg);
  if (!topology.ports_explicit()) {
    // The file leaves ports to us: keep the default range when it is free, else find one.
    int base = 29500;
    Rng rng = Rng::derive(static_cast<std::uint64_t>(::getpid()), 0x9047);
    int attempts = 0;
    while (!range_free(topology, base)) {
      if (++attempts > 100)
        throw Error("launch: no free range of " + std::to_string(topology.size()) +
                    " ports found on this machine; set base_port in the topology file");
      base = 30000 + static_cast<int>(rng.below(30000));
    }
    overrides.push_back("network.base_port=" + std::to_string(base));
    cfg = config::Config::load(config_path, overrides);
    topology = topology_of(cfg);
  }
  const int n = topology.size();
  const std::string run_dir = cfg.run_dir();
  fs::create_directories(run_dir);
  if (resume) {
    const std::int64_t after = resume_point(run_dir, n);  // warns first if it falls back
    std::cerr << "launch: resuming after round " << after + 1 << "\n";
  } else {
    write_config_record(cfg, run_dir);
  }
  const bool keep_going = cfg.get<std::string>("on_peer_failure") == "continue";

  char exe[4096];
  const ssize_t len = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (len <= 0) throw Error("launch: cannot find the rumor executable (/proc/self/exe)");
  exe[len] = '\0';

  std::cerr << "launch: run " << cfg.run_id() << ", " << n << " peers on this machine, results in "
            << run_dir << "\n";
  struct sigaction sa {};
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  struct sigaction old_int {
  }, old_term{};
  ::sigaction(SIGINT, &sa, &old_int);
  ::sigaction(SIGTERM, &sa, &old_term);

  std::vector<pid_t> pids(n, -1);
  std::vector<bool> alive(n, false);
  // Starts peer i; `rejoin`: a restart of a peer that died (on_peer_failure continue).
  auto spawn = [&](int i, bool rejoin) {
    const std::string log_path =
        (fs::path(run_dir) / ("node-" + std::to_string(i) + ".log")).string();
    std::vector<std::string> args = {"rumor",
                                     "node",
                                     config_path,
                                     "--id",
                                     std::to_string(i),
                                     "--log-level",
                                     log::level() == log::Level::kDebug ? "debug" : "info"};
    for (const auto& s : overrides) {
      args.push_back("--set");
      args.push_back(s);
    }
    if (resume && !rejoin) args.push_back("--resume");
    if (rejoin) args.push_back("--rejoin");
    const pid_t pid = ::fork();
    if (pid < 0) throw Error("launch: fork failed: " + std::string(std::strerror(errno)));
    if (pid == 0) {
      ::setpgid(0, 0);  // Ctrl-C reaches the launcher only; it stops the peers itself
      const int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      const int null_fd = ::open("/dev/null", O_RDWR);
      if (log_fd >= 0) ::dup2(log_fd, STDERR_FILENO);
      if (null_fd >= 0) {
        ::dup2(null_fd, STDOUT_FILENO);
        ::dup2(null_fd, STDIN_FILENO);
      }
      ::setenv("RUMOR_LAUNCHED", "1", 1);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(exe, argv.data());
      ::_exit(127);
    }
    pids[i] = pid;
    alive[i] = true;
  };
  for (int i = 0; i < n; ++i) spawn(i, false);

  const std::int64_t rounds = cfg.get<std::int64_t>("rounds");
  const auto& restart_cfg = cfg.at("faults.restart_after_s");
  const double restart_after = restart_cfg.is_null() ? -1.0 : restart_cfg.get<double>();
  using clock = std::chrono::steady_clock;
  std::vector<std::optional<clock::time_point>> restart_at(n);
  std::vector<int> restarts(n, 0);
  std::vector<bool> lost(n, false);  // died (on_peer_failure continue), not finished
  Progress progress(rounds, o.progress);
  int failed = -1, failed_status = 0;
  int running = n;
  double last_acc = -1;
  while (running > 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    for (int i = 0; i < n; ++i) {
      if (!alive[i]) continue;
      int status = 0;
      if (::waitpid(pids[i], &status, WNOHANG) != pids[i]) continue;
      alive[i] = false;
      --running;
      const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
      lost[i] = !ok;
      if (ok) continue;
      if (keep_going) {
        // The others go on; the launcher reports the loss (and restarts the peer if asked).
        if (o.progress) std::cerr << "\n";
        std::cerr << "launch: peer " << i << " (pid " << pids[i]
                  << ") died: " << describe_status(status)
                  << "; on_peer_failure continue: the others go on without it\n";
        if (restart_after >= 0 && restarts[i] < 3)
          restart_at[i] = clock::now() + std::chrono::milliseconds(
                                             static_cast<std::int64_t>(restart_after * 1000));
      } else if (failed < 0) {
        failed = i;
        failed_status = status;
      }
    }
    for (int i = 0; i < n; ++i) {
      if (!restart_at[i] || clock::now() < *restart_at[i]) continue;
      restart_at[i].reset();
      if (running == 0) break;  // nobody left to rejoin
      ++restarts[i];
      spawn(i, true);
      ++running;
      lost[i] = false;
      if (o.progress) std::cerr << "\n";
      std::cerr << "launch: restarted peer " << i << " (pid " << pids[i] << "); it rejoins\n";
    }
    if (g_interrupted || (failed >= 0 && !keep_going)) break;
    // Progress from the newest metrics line of every node (peers that died left out).
    std::int64_t done = rounds;
    double loss = 0, mb = 0, acc = 0;
    int accs = 0, seen = 0, counted = 0;
    for (int i = 0; i < n; ++i) {
      if (lost[i]) continue;
      ++counted;
      const std::string line =
          last_line(fs::path(run_dir) / ("node-" + std::to_string(i) + ".jsonl"));
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
  progress.finish();
  ::sigaction(SIGINT, &old_int, nullptr);
  ::sigaction(SIGTERM, &old_term, nullptr);

  if (g_interrupted) {
    stop_children(pids, alive);
    std::cerr << "launch: interrupted; stopped all peers. What was written is kept in " << run_dir
              << "\n";
    try {
      std::cerr << summary_text(summarize(run_dir));
    } catch (const Error&) {
    }
    return 130;
  }
  if (failed >= 0) {
    stop_children(pids, alive);
    const auto log_path = fs::path(run_dir) / ("node-" + std::to_string(failed) + ".log");
    std::cerr << "launch: peer " << failed << " (pid " << pids[failed]
              << ") failed: " << describe_status(failed_status) << "; stopped the other peers.\n"
              << "  last lines of " << log_path.string() << ":\n"
              << tail_lines(log_path, 12);
    try {
      summarize(run_dir);
    } catch (const Error&) {
    }
    return 1;
  }
  const auto summary = summarize(run_dir);
  std::cout << summary_text(summary);
  // A peer that died may have been restarted by hand (rumor node --rejoin) and finished.
  std::vector<int> gone;
  for (int i = 0; i < n; ++i) {
    if (!lost[i]) continue;
    const std::string line =
        last_line(fs::path(run_dir) / ("node-" + std::to_string(i) + ".jsonl"));
    try {
      if (!line.empty() &&
          nlohmann::json::parse(line).value("round", std::int64_t{-1}) + 1 == rounds)
        continue;
    } catch (const nlohmann::json::exception&) {
    }
    gone.push_back(i);
  }
  if (!gone.empty()) {
    std::cerr << "launch: " << gone.size() << " peer(s) died and did not finish:";
    for (int i : gone) std::cerr << " " << i;
    std::cerr << " (see their node-<i>.log); the figures above are over the " << n - gone.size()
              << " that did\n";
    if (gone.size() == static_cast<std::size_t>(n)) return 1;
  }
  return 0;
}

}  // namespace rumor::run
