#pragma once
// Timing helpers shared by the benchmark subcommands.
#include <time.h>

#include <algorithm>
#include <vector>

namespace rumor::cli {

// Median of repeated measurements (upper median for an even count).
inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// CPU time of the calling thread: what a figure costs when other work shares the cores.
inline double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

}  // namespace rumor::cli
