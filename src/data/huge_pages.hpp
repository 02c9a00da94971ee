#pragma once
// Large arrays of a data set in transparent huge pages (internal to the data module).
#include <sys/mman.h>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace rumor::data::detail {

// Sizes `v` to n value-initialised elements, asking the kernel for transparent huge pages
// first (its "madvise" mode, Debian's default): a large set then faults in 2 MB at a time
// instead of 4 KB (page faults are costly under virtualisation: an in-process quickstart
// started in 1.3 s instead of 2.3 s on a 2-core VM, Fashion-MNIST being 220 MB), and random
// batch rows, read by every peer process forked from the launcher, miss the TLB far less.
// Where the kernel refuses the advice the pages stay small; nothing else changes.
template <typename T>
void resize_in_huge_pages(std::vector<T>& v, std::size_t n) {
  constexpr std::uintptr_t kHuge = std::uintptr_t{2} << 20;
  v.clear();
  v.reserve(n);  // untouched until the resize below: the advice comes before any fault
  const auto begin = reinterpret_cast<std::uintptr_t>(v.data());
  const std::uintptr_t first = (begin + kHuge - 1) & ~(kHuge - 1);
  const std::uintptr_t last = (begin + n * sizeof(T)) & ~(kHuge - 1);
  if (last > first) ::madvise(reinterpret_cast<void*>(first), last - first, MADV_HUGEPAGE);
  v.resize(n);
}

}  // namespace rumor::data::detail
