#include "rumor/codec/topk.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <functional>

#include "simd.hpp"

namespace rumor::codec {
namespace {

// |x| as an order-preserving non-negative integer (sign bit cleared).
inline std::int32_t mag_key(float v) {
  return static_cast<std::int32_t>(std::bit_cast<std::uint32_t>(v) & 0x7fffffffu);
}

constexpr std::size_t kSample = 8192;
constexpr std::size_t kBlock = 16;

}  // namespace

// Collects (index, key) of every element with key >= threshold, in index order. Returns
// false (and stops) when more than cap candidates would be needed.
bool TopkSelector::collect(std::span<const float> x, std::int32_t threshold, std::size_t cap) {
  if (cand_idx_.size() < cap + kBlock) {
    cand_idx_.resize(cap + kBlock);
    cand_key_.resize(cap + kBlock);
    scratch_.reserve(cap + kBlock);  // select_among copies at most cap keys
  }
  count_ = simd::collect_at_least(x.data(), x.size(), threshold, cap, cand_idx_.data(),
                                  cand_key_.data());
  return count_ <= cap;
}

// Top k among the count_ collected candidates (count_ >= k), ties to the lower index.
void TopkSelector::select_among(std::size_t count, std::size_t k, std::vector<std::uint32_t>& out) {
  scratch_.assign(cand_key_.begin(), cand_key_.begin() + static_cast<std::ptrdiff_t>(count));
  auto kth = scratch_.begin() + static_cast<std::ptrdiff_t>(k - 1);
  std::nth_element(scratch_.begin(), kth, scratch_.end(), std::greater<>());
  const std::int32_t t = *kth;
  std::size_t greater = 0;
  for (std::size_t j = 0; j < count; ++j) greater += cand_key_[j] > t;
  std::size_t equal_left = k - greater;  // >= 1
  out.resize(k);
  std::size_t o = 0;
  for (std::size_t j = 0; j < count && o < k; ++j) {
    const std::int32_t kv = cand_key_[j];
    if (kv > t) {
      out[o++] = cand_idx_[j];
    } else if (kv == t && equal_left > 0) {
      out[o++] = cand_idx_[j];
      --equal_left;
    }
  }
}

void TopkSelector::select(std::span<const float> x, std::size_t k,
                          std::vector<std::uint32_t>& out) {
  const std::size_t n = x.size();
  if (k >= n) {
    out.resize(n);
    for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<std::uint32_t>(i);
    return;
  }
  if (k == 0) {
    out.clear();
    return;
  }
  // Sampling pays off when the vector is large and k a small fraction of it.
  if (n >= 4 * kSample && k <= n / 8) {
    sample_.resize(kSample);
    for (auto& s : sample_) s = mag_key(x[rng_.below(n)]);
    const double p = static_cast<double>(k) / static_cast<double>(n);
    const double mean = p * kSample;
    // Sample rank whose magnitude ~1.25 k elements exceed, with a 4-sigma margin.
    std::size_t r = static_cast<std::size_t>(std::ceil(mean * 1.05 + 4.0 * std::sqrt(mean) + 2.0));
    if (r < kSample) {
      auto nth = sample_.begin() + static_cast<std::ptrdiff_t>(r - 1);
      std::nth_element(sample_.begin(), nth, sample_.end(), std::greater<>());
      // Room for twice the expected candidate count (r / kSample of n).
      const std::size_t expected = static_cast<std::size_t>(
          static_cast<double>(r) / static_cast<double>(kSample) * static_cast<double>(n));
      const std::size_t cap = std::max(2 * k, 2 * expected) + 4096;
      if (collect(x, *nth, cap) && count_ >= k) {
        select_among(count_, k, out);
        return;
      }
    }
  }
  // Exact fallback over the whole vector: every element is a candidate.
  if (n >= 4 * kSample && k <= n / 8) ++fallbacks_;
  collect(x, 0, n);
  select_among(count_, k, out);
}

}  // namespace rumor::codec
