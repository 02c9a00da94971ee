#include "rumor/common/log.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iostream>
#include <mutex>

#include "rumor/common/error.hpp"

namespace rumor::log {
namespace {
std::atomic<Level> g_level{Level::kInfo};
std::mutex g_mutex;
std::ofstream g_file;
std::string g_prefix;

const char* level_name(Level l) {
  switch (l) {
    case Level::kDebug:
      return "debug";
    case Level::kInfo:
      return "info";
    case Level::kWarn:
      return "warn";
    case Level::kError:
      return "error";
    case Level::kOff:
      return "off";
  }
  return "?";
}
}  // namespace

Level parse_level(std::string_view name) {
  for (Level l : {Level::kDebug, Level::kInfo, Level::kWarn, Level::kError, Level::kOff}) {
    if (name == level_name(l)) return l;
  }
  throw ConfigError("unknown log level '" + std::string(name) +
                    "'; valid levels: debug, info, warn, error, off");
}

void set_level(Level l) {
  g_level = l;
}
Level level() {
  return g_level;
}

void set_file(const std::string& path) {
  std::lock_guard lock(g_mutex);
  if (g_file.is_open()) g_file.close();
  if (path.empty()) return;
  g_file.open(path, std::ios::app);
  if (!g_file) throw Error("cannot open log file '" + path + "' for writing");
}

void set_prefix(const std::string& prefix) {
  std::lock_guard lock(g_mutex);
  g_prefix = prefix;
}

void write(Level l, std::string_view message) {
  using clock = std::chrono::system_clock;
  const auto now = clock::now();
  const std::time_t t = clock::to_time_t(now);
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char stamp[32];
  std::snprintf(stamp, sizeof stamp, "%02d:%02d:%02d.%03d", tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(ms));
  std::lock_guard lock(g_mutex);
  std::string line = std::string(stamp) + " " + level_name(l) + " ";
  if (!g_prefix.empty()) line += "[" + g_prefix + "] ";
  line.append(message);
  line += '\n';
  std::cerr << line << std::flush;
  if (g_file.is_open()) g_file << line << std::flush;
}

}  // namespace rumor::log
