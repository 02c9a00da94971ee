// Running the rumor executable from a test, as a user would.
#pragma once

#include <doctest/doctest.h>

#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

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

}  // namespace cli_test
