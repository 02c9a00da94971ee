#pragma once
// Minimal leveled logging to stderr (and optionally a file). Thread-safe: one line is
// written under a mutex, so lines from several threads never interleave.
#include <sstream>
#include <string>
#include <string_view>

namespace rumor::log {

enum class Level { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3, kOff = 4 };

// Throws rumor::ConfigError on an unknown name; accepted: debug, info, warn, error, off.
Level parse_level(std::string_view name);
void set_level(Level level);
Level level();
// Also append every line to this file (empty path: stop). Throws rumor::Error if it cannot open.
void set_file(const std::string& path);
// Prefix, e.g. "node 3", printed in front of every line.
void set_prefix(const std::string& prefix);

void write(Level level, std::string_view message);

namespace detail {
template <typename... Args>
std::string concat(const Args&... args) {
  std::ostringstream out;
  (out << ... << args);
  return out.str();
}
}  // namespace detail

template <typename... Args>
void debug(const Args&... args) {
  if (level() <= Level::kDebug) write(Level::kDebug, detail::concat(args...));
}
template <typename... Args>
void info(const Args&... args) {
  if (level() <= Level::kInfo) write(Level::kInfo, detail::concat(args...));
}
template <typename... Args>
void warn(const Args&... args) {
  if (level() <= Level::kWarn) write(Level::kWarn, detail::concat(args...));
}
template <typename... Args>
void error(const Args&... args) {
  if (level() <= Level::kError) write(Level::kError, detail::concat(args...));
}

}  // namespace rumor::log
