#include "rumor/common/threads.hpp"

#include <dlfcn.h>

#include <cstdlib>
#include <string>

namespace rumor {

void limit_blas_threads(int n) {
  if (n < 1) n = 1;
  const std::string value = std::to_string(n);
  ::setenv("OMP_NUM_THREADS", value.c_str(), 1);
  ::setenv("OPENBLAS_NUM_THREADS", value.c_str(), 1);
  // OpenBLAS reads its environment at load time; if it is already loaded, tell it directly.
  // Looked up at run time so that rumor does not link OpenBLAS itself (LibTorch picks the
  // BLAS through Debian's alternatives).
  // Only when it changes anything: after a fork OpenBLAS restarts its thread pool on this
  // call (the size it chose at load), which a peer forked by `rumor launch` does not need.
  using GetThreads = int (*)();
  using SetThreads = void (*)(int);
  auto get = reinterpret_cast<GetThreads>(::dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
  if (get && get() == n) return;
  if (auto fn = reinterpret_cast<SetThreads>(::dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) {
    fn(n);
  }
}

void stop_blas_threads() {
  using Shutdown = int (*)();
  if (auto fn = reinterpret_cast<Shutdown>(::dlsym(RTLD_DEFAULT, "blas_thread_shutdown_"))) fn();
}

}  // namespace rumor
