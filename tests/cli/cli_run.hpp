// Running the rumor executable from a test, as a user would.
#pragma once

#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace cli_test {

struct Result {
  int code = -1;
  std::string out;  // stdout and stderr together
};

// `command` through the shell, output captured.
inline Result shell(const std::string& command) {
  const std::string cmd = command + " 2>&1";
  Result r;
  FILE* p = ::popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int status = ::pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

// Whether host:port can be bound now.
inline bool bindable(const std::string& host, int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  ::inet_pton(AF_INET, host.c_str(), &addr.sin_addr);
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

// A base port p with p+i free for every node i, on 127.0.0.1 or (distinct_hosts) on
// 127.0.0.(i+1), away from launch's default range: other builds may be running tests on
// this machine at the same time.
inline int free_base_port(int nodes, bool distinct_hosts = false) {
  std::mt19937 rng(static_cast<unsigned>(::getpid()));
  for (int attempt = 0; attempt < 50; ++attempt) {
    const int base = 30000 + static_cast<int>(rng() % 30000);
    bool ok = true;
    for (int i = 0; i < nodes && ok; ++i)
      ok = bindable(distinct_hosts ? "127.0.0." + std::to_string(i + 1) : "127.0.0.1", base + i);
    if (ok) return base;
  }
  FAIL("no free range of " << nodes << " ports on loopback");
  return -1;
}

inline std::string rumor_path() {
  return std::string(RUMOR_BINARY_DIR) + "/rumor";
}

inline Result rumor(const std::string& args) {
  return shell(rumor_path() + " " + args);
}

inline std::string src(const std::string& rel) {
  return std::string(RUMOR_SOURCE_DIR) + "/" + rel;
}

// A fresh, empty scratch directory for one test.
inline std::filesystem::path scratch(const std::string& name) {
  const auto d = std::filesystem::temp_directory_path() / "rumor_cli_tests" / name;
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d;
}

// A TCP run small enough for a test: 4 peers, synthetic data, logistic regression.
inline std::string small_config(const std::filesystem::path& dir, const std::string& extra = "") {
  const auto path = dir / "small.json";
  std::ofstream(path) << R"({"name": "cli", "topology": {"gen": "ring", "nodes": 4},
    "method": {"name": "dpsgd"}, "model": {"name": "logreg"},
    "data": {"dataset": "blobs", "train_size": 800, "test_size": 200},
    "rounds": 40, "eval": {"every": 10}, "network": {"connect_timeout_s": 20, "round_timeout_s": 20},
    "output": {"dir": ")" + (dir / "runs").string() +
                             "\"}" + extra + "}";
  return path.string();
}

// The one run directory a test's config wrote.
inline std::filesystem::path only_run(const std::filesystem::path& runs) {
  std::vector<std::filesystem::path> found;
  if (std::filesystem::is_directory(runs))
    for (const auto& e : std::filesystem::directory_iterator(runs)) found.push_back(e.path());
  REQUIRE(found.size() == 1);
  return found[0];
}

// Every node's metrics lines, wall-clock time aside.
inline std::vector<std::vector<nlohmann::json>> node_lines(const std::filesystem::path& run_dir,
                                                           int n) {
  std::vector<std::vector<nlohmann::json>> out(n);
  for (int i = 0; i < n; ++i) {
    std::ifstream in(run_dir / ("node-" + std::to_string(i) + ".jsonl"));
    for (std::string line; std::getline(in, line);) {
      auto j = nlohmann::json::parse(line);
      j.erase("time_s");
      out[i].push_back(j);
    }
  }
  return out;
}

// Push-sum: every one of `rounds` rounds, the weights of the nodes that ran it sum to the
// `started` nodes' (membership changes move mass, they never make or lose any).
inline void check_weight_kept(const std::vector<std::vector<nlohmann::json>>& lines,
                              std::size_t rounds, double started) {
  std::map<std::int64_t, double> sum;
  for (const auto& node : lines)
    for (const auto& l : node) sum[l["round"].get<std::int64_t>()] += l["ps_weight"].get<double>();
  REQUIRE(sum.size() == rounds);
  for (const auto& [round, w] : sum) {
    CAPTURE(round);
    CHECK(std::abs(w - started) < 1e-9);
  }
}

}  // namespace cli_test
