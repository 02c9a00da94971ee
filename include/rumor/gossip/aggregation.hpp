#pragma once
// How an averaging method (dpsgd, qgm) combines its own model x_i with the models its
// neighbours sent (method.aggregation). `mean` is the plain Metropolis-weighted average and
// is computed by the method itself (unchanged); the other rules are Byzantine-robust:
//
//   clip          self-centred clipping (He, Karimireddy, Jaggi 2022, "Byzantine-robust
//                 decentralized learning via ClippedGossip"):
//                   x_i <- x_i + sum_j W_ij CLIP(x_j - x_i, tau_i),
//                   CLIP(v, tau) = v min(1, tau / ||v||_2).
//                 A neighbour's pull is bounded by W_ij tau_i however far away it claims to
//                 be. Radius: method.clip_tau when set, else adaptive (see adaptive_radius).
//   trimmed-mean  coordinate-wise over {x_i} and the received models: in every coordinate
//                 the method.trim largest and method.trim smallest values are dropped and
//                 the rest averaged (unweighted).
//   median        coordinate-wise median of {x_i} and the received models (an even count
//                 takes the mean of the two middle values).
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace rumor::gossip {

enum class Aggregation { kMean, kClip, kTrimmedMean, kMedian };

// "mean", "clip", "trimmed-mean", "median"; throws ConfigError naming `where` otherwise.
Aggregation parse_aggregation(const std::string& name, const std::string& where);
std::string to_string(Aggregation a);

// The adaptive clipping radius: the (b+1)-th largest of the distances ||x_j - x_i|| to the
// neighbours heard from (b = method.clip_b, the neighbours assumed Byzantine), so the b
// farthest are clipped to it and the others are not touched; with b+1 or fewer distances,
// the smallest one. This is the rule of the authors' released ClippedGossip code
// (SelfCenteredClipping without a fixed tau, which takes the second-largest distance:
// b = 1). The paper's analysed rule, tau_i = sqrt(sum_{j good} W_ij ||x_i - x_j||^2 /
// delta_i), needs to know which neighbours are good, which a node does not.
double adaptive_radius(std::vector<double> distances, int b);

struct ClipResult {
  double tau = 0;   // the radius used
  int clipped = 0;  // neighbours whose difference was longer than tau
};

// out = self + sum_j weights[j] CLIP(neighbours[j] - self, tau); tau < 0: adaptive with b.
// `out` may not alias an input.
ClipResult clipped_gossip(std::span<const float> self,
                          const std::vector<std::span<const float>>& neighbours,
                          const std::vector<double>& weights, double tau, int b,
                          std::span<float> out);

// Coordinate-wise trimmed mean over {self} and the neighbours, `trim` values dropped at each
// end (reduced so that at least one value is left). Returns the trim used.
int trimmed_mean(std::span<const float> self, const std::vector<std::span<const float>>& neighbours,
                 int trim, std::span<float> out);

// Coordinate-wise median over {self} and the neighbours.
void coordinate_median(std::span<const float> self,
                       const std::vector<std::span<const float>>& neighbours, std::span<float> out);

}  // namespace rumor::gossip
