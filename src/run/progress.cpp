#include "progress.hpp"

#include <unistd.h>

#include <cstdio>

namespace rumor::run {

Progress::Progress(std::int64_t rounds, bool enabled)
    : rounds_(rounds),
      enabled_(enabled),
      tty_(::isatty(STDERR_FILENO) != 0),
      start_(std::chrono::steady_clock::now()),
      last_(start_) {}

void Progress::update(std::int64_t done, double loss, double acc, double mb) {
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  // A terminal gets a redrawn line; logs get one line every 10 s so they stay short.
  const auto every = tty_ ? std::chrono::milliseconds(200) : std::chrono::milliseconds(10000);
  if (done == shown_done_ || (now - last_ < every && done < rounds_)) return;
  shown_done_ = done;
  last_ = now;
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const double left = done > 0 ? elapsed * static_cast<double>(rounds_ - done) / done : 0.0;
  char acc_text[32] = "  -  ";
  if (acc >= 0) std::snprintf(acc_text, sizeof acc_text, "%5.1f%%", 100.0 * acc);
  std::fprintf(stderr,
               "%s%lld/%lld rounds done  loss %.4f  acc %s  sent %.1f MB  %.0f s, %.0f s left%s",
               tty_ ? "\r" : "", static_cast<long long>(done), static_cast<long long>(rounds_),
               loss, acc_text, mb, elapsed, left, tty_ ? "   " : "\n");
  std::fflush(stderr);
  printed_ = true;
}

void Progress::finish() {
  if (enabled_ && tty_ && printed_) std::fprintf(stderr, "\n");
}

}  // namespace rumor::run
