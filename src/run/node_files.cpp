#include "node_files.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "rumor/common/error.hpp"

namespace rumor::run {

std::string node_file(const std::string& run_dir, int id, const std::string& ext) {
  return (std::filesystem::path(run_dir) / ("node-" + std::to_string(id) + ext)).string();
}

std::string node_end_path(const std::string& run_dir, int id) {
  return node_file(run_dir, id, ".end.json");
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

// Appends `text` to `path` (created if missing; emptied first with `truncate`), through a
// descriptor held only for this call. False when it cannot.
bool append_text(const std::string& path, const std::string& text, bool truncate) {
  const int fd =
      ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | (truncate ? O_TRUNC : O_APPEND), 0644);
  if (fd < 0) return false;
  const char* p = text.data();
  std::size_t left = text.size();
  while (left > 0) {
    const ssize_t n = ::write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    p += n;
    left -= static_cast<std::size_t>(n);
  }
  const int saved = errno;
  ::close(fd);
  errno = saved;
  return left == 0;
}

}  // namespace

NodeFiles::NodeFiles(const std::string& run_dir, int id, std::int64_t resume_round, bool append) {
  fs::create_directories(run_dir);
  metrics_ = node_file(run_dir, id, ".jsonl");
  log_ = node_file(run_dir, id, ".log");
  if (resume_round >= 0) cut_metrics(metrics_, resume_round);
  const bool keep = resume_round >= 0 || append;
  if (!append_text(metrics_, "", !keep) || !append_text(log_, "", false))
    throw Error("node " + std::to_string(id) + ": cannot write to run directory " + run_dir +
                "; check that it exists and is writable");
}

void NodeFiles::write_metrics(const nlohmann::json& line) {
  if (metrics_.empty()) return;
  if (!append_text(metrics_, line.dump() + "\n", false))
    throw Error("cannot append to " + metrics_ + ": " + std::strerror(errno) +
                "; check the disk and the run directory");
}

void NodeFiles::log(const std::string& line) {
  if (log_.empty()) return;
  const auto elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  char stamp[32];
  std::snprintf(stamp, sizeof stamp, "[%9.3f s] ", elapsed);
  append_text(log_, stamp + line + "\n", false);  // a log line lost is no reason to stop
}

}  // namespace rumor::run
