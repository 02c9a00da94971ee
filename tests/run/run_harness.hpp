#pragma once
// Helpers shared by the run tests: topologies by generator, quiet run options, metrics files.
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "rumor/run/run.hpp"

namespace rumor::run_test {

inline nlohmann::json ring(int n) {
  return {{"gen", "ring"}, {"nodes", n}};
}
inline nlohmann::json expo(int n) {
  return {{"gen", "exponential"}, {"nodes", n}};
}

inline run::RunOptions quiet() {
  run::RunOptions o;
  o.progress = false;
  o.threads = 2;
  return o;
}

// One JSON value per line of a metrics file.
inline std::vector<nlohmann::json> read_lines(const std::string& path) {
  std::vector<nlohmann::json> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) out.push_back(nlohmann::json::parse(line));
  return out;
}

}  // namespace rumor::run_test
