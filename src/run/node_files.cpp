#include "node_files.hpp"

#include <cstdio>
#include <filesystem>

#include "rumor/common/error.hpp"

namespace rumor::run {

std::string node_end_path(const std::string& run_dir, int id) {
  return (std::filesystem::path(run_dir) / ("node-" + std::to_string(id) + ".end.json")).string();
}

void write_node_end(const std::string& run_dir, int id, const nlohmann::json& facts) {
  const std::string path = node_end_path(run_dir, id);
  std::ofstream out(path, std::ios::trunc);
  out << facts.dump() << "\n";
  if (!out) throw Error("node " + std::to_string(id) + ": cannot write " + path);
}

namespace {

namespace fs = std::filesystem;

// Keeps the metrics lines up to `round` (a resumed run rewrites what came after).
void cut_metrics(const fs::path& path, std::int64_t round) {
  std::ifstream in(path);
  std::string kept, line;
  while (std::getline(in, line)) {
    try {
      if (nlohmann::json::parse(line).value("round", std::int64_t{-1}) > round) break;
    } catch (const nlohmann::json::exception&) {
      break;  // a line cut short by the crash
    }
    kept += line + "\n";
  }
  in.close();
  const fs::path tmp = path.string() + ".tmp";
  std::ofstream(tmp, std::ios::trunc) << kept;
  fs::rename(tmp, path);
}

}  // namespace

NodeFiles::NodeFiles(const std::string& run_dir, int id, std::int64_t resume_round, bool append) {
  fs::create_directories(run_dir);
  const auto base = fs::path(run_dir);
  const auto metrics_path = base / ("node-" + std::to_string(id) + ".jsonl");
  if (resume_round >= 0) cut_metrics(metrics_path, resume_round);
  metrics_.open(metrics_path, resume_round >= 0 || append ? std::ios::app : std::ios::trunc);
  log_.open(base / ("node-" + std::to_string(id) + ".log"), std::ios::app);
  if (!metrics_ || !log_)
    throw Error("node " + std::to_string(id) + ": cannot write to run directory " + run_dir +
                "; check that it exists and is writable");
}

void NodeFiles::write_metrics(const nlohmann::json& line) {
  if (metrics_.is_open()) metrics_ << line.dump() << "\n" << std::flush;
}

void NodeFiles::log(const std::string& line) {
  if (!log_.is_open()) return;
  const auto elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  char stamp[32];
  std::snprintf(stamp, sizeof stamp, "[%9.3f s] ", elapsed);
  log_ << stamp << line << "\n" << std::flush;
}

}  // namespace rumor::run
