#include "peer_process.hpp"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <utility>

#include "node_files.hpp"
#include "rumor/common/error.hpp"
#include "rumor/common/log.hpp"
#include "rumor/common/threads.hpp"

namespace rumor::run {
namespace {

namespace fs = std::filesystem;

// The threads of this process now (/proc/self/task), by name; empty when it cannot tell.
std::vector<std::string> thread_names() {
  std::vector<std::string> names;
  std::error_code ec;
  for (fs::directory_iterator it("/proc/self/task", ec), end; !ec && it != end; it.increment(ec)) {
    std::string name;
    std::getline(std::ifstream(it->path() / "comm"), name);
    names.push_back(name);
  }
  if (ec) names.clear();
  return names;
}

// In the child: stderr to the peer's log, stdout and stdin /dev/null, its own process group
// (Ctrl-C reaches the launcher only; it stops the peers itself).
void child_stdio(const std::string& log_path) {
  ::setpgid(0, 0);
  const int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  const int null_fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  if (log_fd >= 0) ::dup2(log_fd, STDERR_FILENO);
  if (null_fd >= 0) {
    ::dup2(null_fd, STDOUT_FILENO);
    ::dup2(null_fd, STDIN_FILENO);
  }
  ::setenv("RUMOR_LAUNCHED", "1", 1);
}

// In the child, before it starts a thread (its threads inherit the policy, across exec too).
// SCHED_BATCH: a peer's thread woken by a message does not preempt the one running but waits
// for that one to block or end its slice. With more peers than cores every round wakes each
// peer several times, and on a 2-core machine those preemptions were a quarter of the
// context switches. A refusal (a sandbox) leaves the usual policy.
void child_sched(bool batch) {
  if (!batch) return;
  sched_param p{};
  p.sched_priority = 0;
  ::sched_setscheduler(0, SCHED_BATCH, &p);
}

// In a forked child that does not exec: what exec would have done. Handled signals back to
// their default (the launcher catches SIGINT and SIGTERM), nothing blocked, and the
// launcher's close-on-exec descriptors closed.
void as_if_exec() {
  for (int sig = 1; sig < NSIG; ++sig) {
    struct sigaction old {};
    if (::sigaction(sig, nullptr, &old) != 0) continue;
    if (old.sa_handler == SIG_DFL || old.sa_handler == SIG_IGN) continue;
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    ::sigaction(sig, &dfl, nullptr);
  }
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  std::vector<int> fds;
  std::error_code ec;
  for (fs::directory_iterator it("/proc/self/fd", ec), end; !ec && it != end; it.increment(ec))
    fds.push_back(std::atoi(it->path().filename().c_str()));
  for (int fd : fds) {
    const int flags = fd > STDERR_FILENO ? ::fcntl(fd, F_GETFD) : -1;
    if (flags >= 0 && (flags & FD_CLOEXEC)) ::close(fd);
  }
}

[[noreturn]] void run_entry(const LaunchOptions::NodeEntry& entry,
                            const std::vector<std::string>& args) {
  as_if_exec();
  int code = 2;
  try {
    code = entry(args);
  } catch (const std::exception& e) {
    std::cerr << "rumor: unexpected error: " << e.what() << "\n";
  } catch (...) {
    std::cerr << "rumor: unexpected error\n";
  }
  end_process(code);
}

[[noreturn]] void exec_node(const std::string& exe, std::vector<std::string> args) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  ::execv(exe.c_str(), argv.data());
  ::_exit(127);
}

std::vector<std::string> node_args(const PeerCommand& c, int i, bool rejoin) {
  std::vector<std::string> args = {"rumor",
                                   "node",
                                   c.config_path,
                                   "--id",
                                   std::to_string(i),
                                   "--log-level",
                                   log::level() == log::Level::kDebug ? "debug" : "info"};
  for (const auto& s : c.overrides) {
    args.push_back("--set");
    args.push_back(s);
  }
  if (c.resume && !rejoin) args.push_back("--resume");
  if (rejoin) args.push_back("--rejoin");
  return args;
}

}  // namespace

void end_process(int code) {
  std::cout.flush();
  std::cerr.flush();
  std::fflush(nullptr);
  ::_exit(code);
}

bool fork_start_wanted(const LaunchOptions::NodeEntry& entry) {
  const char* exec = std::getenv("RUMOR_LAUNCH_EXEC");
  return entry && !(exec && std::string(exec) == "1");
}

pid_t spawn_peer(const PeerCommand& c, int i, bool rejoin) {
  const std::string log_path = node_file(c.run_dir, i, ".log");
  const auto args = node_args(c, i, rejoin);
  bool by_fork = false;
  if (c.entry) {
    stop_blas_threads();  // the fork would stop them anyway (OpenBLAS's fork handler)
    const auto threads = thread_names();
    by_fork = threads.size() == 1;
    static bool told = false;  // said once per process
    if (!by_fork && !std::exchange(told, true)) {
      std::string names;
      for (const auto& t : threads) names += (names.empty() ? "" : ", ") + t;
      log::info("launch: this process runs ", threads.size(), " threads (", names,
                ") and a fork copies one, so peers start as new `rumor node` processes, "
                "which start slower");
    }
  }
  // What is buffered here would otherwise be written twice, by the launcher and the child.
  std::cout.flush();
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) throw Error("launch: fork failed: " + std::string(std::strerror(errno)));
  if (pid == 0) {
    child_stdio(log_path);
    child_sched(c.sched_batch);
    if (by_fork) run_entry(c.entry, args);
    exec_node(c.exe, args);
  }
  log::debug("launch: peer ", i, " (pid ", pid, ") started ", by_fork ? "by fork" : "by exec");
  return pid;
}

}  // namespace rumor::run
