#pragma once
// A fixed pool of worker threads for running many peers' steps in parallel, phase by
// phase (the in-process driver). parallel_for blocks until every index is done and
// rethrows the first exception a task threw.
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace rumor {

class ThreadPool {
 public:
  // threads == 0: one per hardware core.
  explicit ThreadPool(std::size_t threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  std::size_t size() const { return workers_.empty() ? 1 : workers_.size(); }
  // Calls fn(i) for i in [0, n), spread over the workers (and the calling thread).
  void parallel_for(std::size_t n, const std::function<void(std::size_t)>& fn);

 private:
  void work();
  void run_tasks();

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable start_cv_, done_cv_;
  const std::function<void(std::size_t)>* fn_ = nullptr;
  std::size_t n_ = 0, next_ = 0, busy_ = 0;
  std::uint64_t generation_ = 0;
  bool stop_ = false;
  std::exception_ptr error_;
};

}  // namespace rumor
