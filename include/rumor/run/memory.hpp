#pragma once
// What an in-process run will hold, known before it starts: one peer is built alone and the
// heap it takes is counted (model, gradients, optimizer, method and transport state, files),
// plus the message it will have in flight (one encoded model: in-process payloads are shared
// by every receiver, never copied); the dataset is loaded once for all peers. Compared with
// the memory the machine can give, so a run that cannot fit is refused at once, saying how
// much it needs, instead of being killed by the kernel hours later.
#include <cstdint>
#include <string>

#include "rumor/config/config.hpp"

namespace rumor::run {

struct MemoryPlan {
  int peers = 0;
  std::uint64_t per_peer = 0;   // bytes one peer holds
  std::uint64_t shared = 0;     // bytes all peers share (the dataset)
  std::uint64_t available = 0;  // bytes the machine can give (0: unknown)
  std::uint64_t need() const { return shared + per_peer * static_cast<std::uint64_t>(peers); }
  // "10000 peers x 1.2 MB + 0.2 GB shared = 12.2 GB (22.9 GB available)"
  std::string describe() const;
};

// Heap bytes in use now: the calling thread's malloc arena plus blocks mapped on their own
// (glibc mallinfo2). Differences measure what the calling thread allocated in between.
std::uint64_t heap_in_use();
// heap_in_use() now minus `before`, 0 when the heap shrank meanwhile (another thread freed).
std::uint64_t heap_growth(std::uint64_t before);
// Bytes the machine can still give this process: MemAvailable, lowered to the cgroup's
// memory limit when one is set; 0 when neither can be read.
std::uint64_t memory_available();
// Throws Error when `plan` needs more than is available: what, how much, and what to do.
void check_fits(const MemoryPlan& plan);
// Measures one peer of the config's in-process run (its data loaded, its transport started
// alone, nothing sent): what `rumor launch --dry-run` reports.
MemoryPlan plan_inprocess_memory(const config::Config& cfg);

}  // namespace rumor::run
