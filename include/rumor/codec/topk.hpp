#pragma once
// Exact top-k selection by magnitude without sorting the whole vector.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "rumor/common/rng.hpp"

namespace rumor::codec {

// Selects the k coordinates of largest |x_i|, exactly the set a full sort by (|x| descending,
// index ascending) would give: ties go to the lower index. Comparisons use the magnitude bits,
// so NaN ranks above +-inf. Indices come out in increasing order.
//
// How: a random sample of the magnitudes gives a threshold that ~1.25 k elements exceed; one
// branch-light pass collects the candidates above it; nth_element on the candidates finds the
// k-th magnitude; one pass over the candidates (already in index order) keeps the top k with
// ties to the lower index. When the candidate count is off (too few, or too many from a
// sample miss or heavy ties), it falls back to the same steps over the whole vector, which is
// still exact. Buffers are kept between calls: no allocation in steady state.
class TopkSelector {
 public:
  void select(std::span<const float> x, std::size_t k, std::vector<std::uint32_t>& out);

  // How many selections needed the whole-vector fallback (for tests and tuning).
  std::size_t fallbacks() const { return fallbacks_; }

 private:
  void select_among(std::size_t count, std::size_t k, std::vector<std::uint32_t>& out);
  bool collect(std::span<const float> x, std::int32_t threshold, std::size_t cap);

  Rng rng_{0x746f706b73656cULL};
  std::vector<std::int32_t> sample_;
  std::vector<std::uint32_t> cand_idx_;
  std::vector<std::int32_t> cand_key_;
  std::vector<std::int32_t> scratch_;
  std::size_t count_ = 0;
  std::size_t fallbacks_ = 0;
};

}  // namespace rumor::codec
