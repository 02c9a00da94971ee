#pragma once
// Timing helpers shared by the benchmark subcommands.
#include <time.h>

#include <algorithm>
#include <chrono>
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

struct MedianTimes {
  double wall = 0;  // seconds, wall clock
  double cpu = 0;   // seconds of this thread's CPU time (robust when cores are shared)
  double wall_min = 0, wall_max = 0;  // the spread of the wall-clock repeats
};

// Median wall and thread-CPU seconds of `repeats` runs after one warm-up run (which also
// lets buffers reach their steady-state size).
template <typename F>
MedianTimes time_median(int repeats, F&& f) {
  f();
  std::vector<double> wall, cpu;
  for (int r = 0; r < repeats; ++r) {
    const double c0 = thread_cpu_seconds();
    const auto t0 = std::chrono::steady_clock::now();
    f();
    wall.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    cpu.push_back(thread_cpu_seconds() - c0);
  }
  const auto [lo, hi] = std::minmax_element(wall.begin(), wall.end());
  return {median(wall), median(cpu), *lo, *hi};
}

}  // namespace rumor::cli
