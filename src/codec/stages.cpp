#include "stages.hpp"

#include <algorithm>
#include <bit>

namespace rumor::codec::detail {

void block_random_indices(std::size_t d, std::size_t k, const CodecContext& ctx,
                          std::vector<std::uint32_t>& idx, std::vector<float>* width) {
  constexpr std::uint64_t kStream = 0x72616e646bULL;  // "randk"
  Rng rng = Rng::derive(ctx.seed, ctx.round, ctx.sender, kStream);
  idx.resize(k);
  if (width) width->resize(k);
  for (std::size_t j = 0; j < k; ++j) {
    __extension__ using U128 = unsigned __int128;
    const std::uint64_t lo = static_cast<std::uint64_t>(static_cast<U128>(j) * d / k);
    const std::uint64_t hi = static_cast<std::uint64_t>(static_cast<U128>(j + 1) * d / k);
    idx[j] = static_cast<std::uint32_t>(lo + rng.below(hi - lo));
    if (width) (*width)[j] = static_cast<float>(hi - lo);
  }
}

SketchHash::SketchHash(std::uint64_t seed, std::uint32_t rows, std::uint32_t cols)
    : rows_(std::min(rows, kMaxSketchRows)), cols_(cols) {
  Rng rng = Rng::derive(seed, 0x736b65746368ULL, rows, cols);  // from the shared seed alone
  for (std::uint32_t r = 0; r < rows_; ++r) key_[r] = static_cast<std::uint32_t>(rng() >> 32);
}

void SketchHash::sketch(std::span<const float> x, float* table) const {
  // Blocks of x stay in L1 while every row visits them: x is read from memory once.
  constexpr std::size_t kBlock = 2048;
  for (std::size_t lo = 0; lo < x.size(); lo += kBlock) {
    const std::size_t len = std::min(x.size() - lo, kBlock);
    for (std::uint32_t r = 0; r < rows_; ++r) {
      simd::sketch_add(static_cast<std::uint32_t>(lo), len, key_[r], cols_, x.data() + lo,
                       table + static_cast<std::size_t>(r) * cols_);
    }
  }
}

void SketchHash::estimate(const float* table, std::span<float> est,
                          std::vector<float>& vals) const {
  // Per block of keys: each row's signed bucket values (row by row), then the median per key
  // (a min/max network for 5 rows, insertion sort otherwise).
  constexpr std::size_t kBlock = 1024;
  vals.resize(static_cast<std::size_t>(rows_) * kBlock);
  for (std::size_t lo = 0; lo < est.size(); lo += kBlock) {
    const std::size_t len = std::min(est.size() - lo, kBlock);
    for (std::uint32_t r = 0; r < rows_; ++r) {
      simd::sketch_lookup(static_cast<std::uint32_t>(lo), len, key_[r], cols_,
                          table + static_cast<std::size_t>(r) * cols_,
                          vals.data() + static_cast<std::size_t>(r) * kBlock);
    }
    if (rows_ == 5) {
      const float* v0 = vals.data();
      const float* v1 = v0 + kBlock;
      const float* v2 = v1 + kBlock;
      const float* v3 = v2 + kBlock;
      const float* v4 = v3 + kBlock;
      for (std::size_t j = 0; j < len; ++j) {
        // median of 5: drop the smaller of two pair-maxima's... (standard 6-comparison form)
        float a0 = std::min(v0[j], v1[j]), a1 = std::max(v0[j], v1[j]);
        float b0 = std::min(v2[j], v3[j]), b1 = std::max(v2[j], v3[j]);
        // The smaller of the two pair minima cannot be the median; neither the larger maximum.
        const float lo3 = std::max(a0, b0);
        const float hi3 = std::min(a1, b1);
        const float c = v4[j];
        // Median of {lo3, hi3, c}.
        est[lo + j] = std::max(std::min(lo3, hi3), std::min(std::max(lo3, hi3), c));
      }
    } else {
      float v[kMaxSketchRows] = {};
      for (std::size_t j = 0; j < len; ++j) {
        for (std::uint32_t r = 0; r < rows_; ++r) {
          const float e = vals[static_cast<std::size_t>(r) * kBlock + j];
          std::uint32_t i = r;
          while (i > 0 && v[i - 1] > e) {
            v[i] = v[i - 1];
            --i;
          }
          v[i] = e;
        }
        const std::uint32_t m = rows_ / 2;
        est[lo + j] = (rows_ & 1u) ? v[m] : 0.5f * (v[m - 1] + v[m]);
      }
    }
  }
}

}  // namespace rumor::codec::detail
