#pragma once
// A node's files in the run directory: node-<i>.jsonl (one metrics line per round, flushed
// as written) and node-<i>.log (timestamped lines). Without a directory (tests) nothing is
// written. Used by one thread at a time (the peer's).
//
// Each line is appended by opening the file, writing and closing it: an in-process run of
// 10,000 peers would otherwise hold 20,000 files open (past a common descriptor limit), and
// closing that many stdio streams costs quadratic time (glibc keeps them in one list).
#include <chrono>
#include <cstdint>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

namespace rumor::run {

class NodeFiles {
 public:
  NodeFiles() = default;  // writes nothing
  // resume_round >= 0: the metrics file is cut back to that round and appended to; append:
  // a rejoining peer adds to what it wrote before it died. Throws Error naming the folder
  // when it cannot write there.
  NodeFiles(const std::string& run_dir, int id, std::int64_t resume_round, bool append);

  bool writing() const { return !metrics_.empty(); }
  void write_metrics(const nlohmann::json& line);
  void log(const std::string& line);

 private:
  std::string metrics_, log_;  // paths; empty: nothing written
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

// RUNDIR/node-<id><ext>: the name of every file of one node (".jsonl", ".log", ".pid", ...).
std::string node_file(const std::string& run_dir, int id, const std::string& ext);

// node-<i>.end.json: what a node measured of itself when it finished (its peak resident
// memory), kept out of the metrics lines so that runs still compare line for line.
std::string node_end_path(const std::string& run_dir, int id);
void write_node_end(const std::string& run_dir, int id, const nlohmann::json& facts);

}  // namespace rumor::run
