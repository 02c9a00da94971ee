#pragma once
// Samplers on rumor::Rng written out here (not <random> distributions) so that every
// node, whatever its standard library, draws the same numbers from the same seed.
#include <cmath>

#include "rumor/common/rng.hpp"

namespace rumor::data::detail {

// Stream ids for Rng::derive, so datasets and partitions never share a stream.
enum Stream : std::uint64_t {
  kStreamBlobs = 0x626c6f6273,
  kStreamLeaf = 0x6c656166,
  kStreamCsvSplit = 0x637376,
  kStreamPartition = 0x7061727469,
};

inline double normal(Rng& rng) {
  // Box-Muller; u1 in (0, 1] so the log is finite.
  const double u1 = 1.0 - rng.uniform();
  const double u2 = rng.uniform();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}

// Gamma(shape, 1) by Marsaglia & Tsang (2000); shape < 1 via the U^(1/shape) boost.
inline double gamma(Rng& rng, double shape) {
  if (shape < 1.0) {
    const double u = 1.0 - rng.uniform();
    return gamma(rng, shape + 1.0) * std::pow(u, 1.0 / shape);
  }
  const double d = shape - 1.0 / 3.0;
  const double c = 1.0 / std::sqrt(9.0 * d);
  for (;;) {
    double x = 0.0;
    double v = 0.0;
    do {
      x = normal(rng);
      v = 1.0 + c * x;
    } while (v <= 0.0);
    v = v * v * v;
    const double u = 1.0 - rng.uniform();
    if (std::log(u) < 0.5 * x * x + d - d * v + d * std::log(v)) return d * v;
  }
}

template <typename T>
void shuffle(std::vector<T>& v, Rng& rng) {
  for (std::size_t i = v.size(); i > 1; --i) {
    const std::size_t j = rng.below(i);
    std::swap(v[i - 1], v[j]);
  }
}

}  // namespace rumor::data::detail
