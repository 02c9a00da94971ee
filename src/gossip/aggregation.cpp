#include "rumor/gossip/aggregation.hpp"

#include <algorithm>
#include <cmath>

#include "rumor/common/error.hpp"

namespace rumor::gossip {
namespace {

constexpr struct {
  Aggregation rule;
  const char* name;
} kRules[] = {{Aggregation::kMean, "mean"},
              {Aggregation::kClip, "clip"},
              {Aggregation::kTrimmedMean, "trimmed-mean"},
              {Aggregation::kMedian, "median"}};

// A column holds a node's neighbourhood, a handful of values: insertion sort, which puts
// them in the same order as std::sort.
void sort_small(std::vector<float>& c) {
  for (std::size_t i = 1; i < c.size(); ++i) {
    const float x = c[i];
    std::size_t j = i;
    for (; j > 0 && c[j - 1] > x; --j) c[j] = c[j - 1];
    c[j] = x;
  }
}

// Calls f(column) for every coordinate with the values of self and every neighbour there.
template <typename F>
void for_each_column(std::span<const float> self,
                     const std::vector<std::span<const float>>& neighbours, F&& f) {
  std::vector<float> column(neighbours.size() + 1);
  for (std::size_t k = 0; k < self.size(); ++k) {
    column[0] = self[k];
    for (std::size_t j = 0; j < neighbours.size(); ++j) column[j + 1] = neighbours[j][k];
    f(k, column);
  }
}

void check_sizes(std::span<const float> self, const std::vector<std::span<const float>>& nb,
                 std::span<float> out) {
  if (out.size() != self.size())
    throw Error("aggregation: output has " + std::to_string(out.size()) + " values, model " +
                std::to_string(self.size()));
  for (const auto& x : nb)
    if (x.size() != self.size())
      throw Error("aggregation: a neighbour's model has " + std::to_string(x.size()) +
                  " values, this node's " + std::to_string(self.size()));
}

}  // namespace

Aggregation parse_aggregation(const std::string& name, const std::string& where) {
  std::string valid;
  for (const auto& r : kRules) {
    if (name == r.name) return r.rule;
    valid += std::string(valid.empty() ? "" : ", ") + r.name;
  }
  throw ConfigError(where + ": method.aggregation \"" + name + "\" is not one of " + valid);
}

std::string to_string(Aggregation a) {
  for (const auto& r : kRules)
    if (r.rule == a) return r.name;
  return "?";
}

double adaptive_radius(std::vector<double> distances, int b) {
  if (distances.empty()) return 0.0;
  std::sort(distances.begin(), distances.end(), std::greater<>());
  const std::size_t k =
      std::min<std::size_t>(static_cast<std::size_t>(std::max(b, 0)), distances.size() - 1);
  return distances[k];
}

ClipResult clipped_gossip(std::span<const float> self,
                          const std::vector<std::span<const float>>& neighbours,
                          const std::vector<double>& weights, double tau, int b,
                          std::span<float> out) {
  check_sizes(self, neighbours, out);
  if (weights.size() != neighbours.size())
    throw Error("clipped gossip: " + std::to_string(weights.size()) + " weights for " +
                std::to_string(neighbours.size()) + " neighbours");
  std::vector<double> dist(neighbours.size());
  for (std::size_t j = 0; j < neighbours.size(); ++j) {
    double s = 0;
    for (std::size_t k = 0; k < self.size(); ++k) {
      const double d = static_cast<double>(neighbours[j][k]) - self[k];
      s += d * d;
    }
    dist[j] = std::sqrt(s);
  }
  ClipResult r;
  r.tau = tau >= 0 ? tau : adaptive_radius(dist, b);
  std::copy(self.begin(), self.end(), out.begin());
  for (std::size_t j = 0; j < neighbours.size(); ++j) {
    const bool clip = dist[j] > r.tau;
    r.clipped += clip ? 1 : 0;
    // The neighbour's pull W_ij (x_j - x_i), shortened to length W_ij tau when longer.
    const float w = static_cast<float>(weights[j] * (clip ? r.tau / dist[j] : 1.0));
    for (std::size_t k = 0; k < self.size(); ++k) out[k] += w * (neighbours[j][k] - self[k]);
  }
  return r;
}

int trimmed_mean(std::span<const float> self, const std::vector<std::span<const float>>& neighbours,
                 int trim, std::span<float> out) {
  check_sizes(self, neighbours, out);
  const int n = static_cast<int>(neighbours.size()) + 1;
  const int b = std::clamp(trim, 0, (n - 1) / 2);
  const float keep = static_cast<float>(n - 2 * b);
  for_each_column(self, neighbours, [&](std::size_t k, std::vector<float>& c) {
    sort_small(c);
    float s = 0;
    for (int i = b; i < n - b; ++i) s += c[static_cast<std::size_t>(i)];
    out[k] = s / keep;
  });
  return b;
}

void coordinate_median(std::span<const float> self,
                       const std::vector<std::span<const float>>& neighbours,
                       std::span<float> out) {
  check_sizes(self, neighbours, out);
  const std::size_t n = neighbours.size() + 1;
  for_each_column(self, neighbours, [&](std::size_t k, std::vector<float>& c) {
    sort_small(c);
    out[k] = n % 2 ? c[n / 2] : 0.5f * (c[n / 2 - 1] + c[n / 2]);
  });
}

}  // namespace rumor::gossip
