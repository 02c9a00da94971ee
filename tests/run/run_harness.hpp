#pragma once
// Helpers shared by the run tests: topologies by generator, quiet run options, metrics files.
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "rumor/config/config.hpp"
#include "rumor/run/run.hpp"

namespace rumor::run_test {

inline nlohmann::json ring(int n) {
  return {{"gen", "ring"}, {"nodes", n}};
}
inline nlohmann::json expo(int n) {
  return {{"gen", "exponential"}, {"nodes", n}};
}

// A small run on synthetic data: no files needed, a few seconds at most.
inline config::Config small(const std::string& method, nlohmann::json topology,
                            std::vector<std::string> sets = {}) {
  const auto dir = std::filesystem::temp_directory_path() / "rumor_run_tests";
  nlohmann::json c = {{"name", "t-" + method},
                      {"seed", 5},
                      {"topology", topology},
                      {"method", {{"name", method}}},
                      {"data",
                       {{"dataset", "blobs"},
                        {"train_size", 1600},
                        {"test_size", 400},
                        {"partition", {{"kind", "dirichlet"}, {"alpha", 1.0}}}}},
                      {"model", {{"name", "logreg"}}},
                      {"optimizer", {{"lr", 0.1}}},
                      {"batch_size", 16},
                      {"rounds", 100},
                      {"eval", {{"every", 25}}},
                      {"output", {{"dir", dir.string()}}}};
  return config::Config::from_json(c, "test", RUMOR_SOURCE_DIR, sets);
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
