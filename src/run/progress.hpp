#pragma once
// One live progress line on stderr: round, mean loss, mean accuracy, MB sent, time left.
#include <chrono>
#include <cstdint>
#include <string>

namespace rumor::run {

class Progress {
 public:
  Progress(std::int64_t rounds, bool enabled);
  // `acc` < 0: not known yet.
  void update(std::int64_t rounds_done, double loss, double acc, double mb_sent);
  void finish();

 private:
  std::int64_t rounds_;
  bool enabled_, tty_;
  std::chrono::steady_clock::time_point start_, last_;
  bool printed_ = false;
  std::int64_t shown_done_ = -1;  // the count last printed: the final line is printed once
};

}  // namespace rumor::run
