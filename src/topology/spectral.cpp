// Spectral figures: the second-largest eigenvalue modulus (SLEM) of the mixing matrix, or of
// the product over one period of a time-varying schedule. Exact where a closed form exists,
// dense eigenvalues (Eigen) for small graphs, Lanczos on the sparse matrix above that, and a
// note instead of a number where none of these is both cheap and trustworthy.
#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numbers>
#include <sstream>
#include <tuple>
#include <vector>

#include "rumor/topology/topology.hpp"

namespace rumor {
namespace {

// Dense eigenvalues cost O(n^3) time and O(n^2) memory: only up to these sizes.
constexpr int kDenseSymmetricLimit = 1000;
constexpr int kDenseGeneralLimit = 400;
constexpr int kLanczosSteps = 600;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::string text(double x) {
  std::ostringstream out;
  out.precision(6);
  out << x;
  return out.str();
}

// The one-peer exponential graph of n nodes mixes x_i <- (x_i + x_{i-h}) / 2 in a round of hop
// h: a circulant matrix, so every round shares the Fourier eigenvectors and Fourier mode j is
// scaled by (1 + w^(-jh)) / 2, of modulus |cos(pi (j h mod n) / n)|. The factor is exactly
// zero when 2 (j h mod n) = n; integer arithmetic decides that, so rounding cannot pass for
// mixing (nor the reverse). The product over a period scales mode j by the product of its
// factors; the SLEM per round is the largest such product over j != 0, to the power 1/period.
SpectralFigures exponential_figures(const Topology& t) {
  const std::int64_t n = t.size();
  const int period = t.period();
  std::vector<std::int64_t> hops;
  for (int r = 0; r < period; ++r) hops.push_back((std::int64_t{1} << r) % n);
  double worst = 0;
  int exact_after = 0;  // rounds after which every mode j != 0 has met a zero factor
  for (std::int64_t j = 1; j < n; ++j) {
    double product = 1;
    int zero_at = -1;
    for (int r = 0; r < period; ++r) {
      const std::int64_t m = (j * hops[r]) % n;
      if (2 * m == n) {
        if (zero_at < 0) zero_at = r;
        product = 0;
      } else {
        product *=
            std::abs(std::cos(std::numbers::pi * static_cast<double>(m) / static_cast<double>(n)));
      }
    }
    worst = std::max(worst, product);
    exact_after = zero_at < 0 || exact_after < 0 ? -1 : std::max(exact_after, zero_at + 1);
  }
  SpectralFigures f;
  f.method = "exact";
  f.slem = worst == 0 ? 0.0 : std::pow(worst, 1.0 / period);
  if (exact_after > 0) {
    f.rounds_to_exact_average = exact_after;
    f.note = "the product of the mixing matrices of rounds 0.." + std::to_string(exact_after - 1) +
             " is exact averaging (finite-time consensus): SLEM 0";
  }
  return f;
}

Eigen::MatrixXd dense(const SparseMixing& w) {
  const int n = w.size();
  Eigen::MatrixXd m = Eigen::MatrixXd::Zero(n, n);
  for (int j = 0; j < n; ++j)
    for (const auto& [i, v] : w.rows[j]) m(j, i) = v;
  return m;
}

// Every entry 1/n up to rounding (entries are products of a few rational weights).
bool is_averaging(const Eigen::MatrixXd& m) {
  const double target = 1.0 / static_cast<double>(m.rows());
  return ((m.array() - target).abs() <= 1e-12).all();
}

// A periodic schedule: the product of its rounds' matrices over one period, built densely.
// When some prefix of rounds multiplies to exact averaging (finite-time consensus, as the
// Base-(k+1) graph and the exponential graph at powers of two), the SLEM is 0 and the figure
// is the shortest such prefix; else the SLEM of the product, to the power 1/period.
SpectralFigures periodic_figures(const Topology& t) {
  const int n = t.size();
  const int period = t.period();
  if (n > kDenseGeneralLimit)
    return {kNaN, "skipped", 0,
            "SLEM skipped: the product over a period is built densely only up to " +
                std::to_string(kDenseGeneralLimit) + " nodes"};
  Eigen::MatrixXd product = Eigen::MatrixXd::Identity(n, n);
  for (int r = 0; r < period; ++r) {
    product = dense(t.sparse_mixing(r)) * product;
    if (is_averaging(product))
      return {0.0, "exact", r + 1,
              "the product of the mixing matrices of rounds 0.." + std::to_string(r) +
                  " is exact averaging (finite-time consensus; every entry 1/n to 1e-12): SLEM 0"};
  }
  Eigen::EigenSolver<Eigen::MatrixXd> solver(product, false);
  std::vector<double> moduli;
  for (const auto& v : solver.eigenvalues()) moduli.push_back(std::abs(v));
  std::sort(moduli.rbegin(), moduli.rend());
  const double second = moduli.size() < 2 ? 0.0 : moduli[1];
  return {std::pow(second, 1.0 / period), "dense", 0,
          "SLEM of the product over one period of " + std::to_string(period) +
              " rounds, to the power 1/period"};
}

// W = (1/n) 1 1^T: one round averages exactly.
bool averages_in_one_round(const SparseMixing& w) {
  const int n = w.size();
  for (const auto& row : w.rows) {
    if (static_cast<int>(row.size()) != n) return false;
    for (const auto& [i, v] : row)
      if (std::abs(v - 1.0 / n) > 1e-12) return false;
  }
  return true;
}

bool symmetric(const SparseMixing& w) {
  for (int j = 0; j < w.size(); ++j) {
    for (const auto& [i, v] : w.rows[j]) {
      const auto& other = w.rows[i];
      const auto it = std::lower_bound(other.begin(), other.end(), std::make_pair(j, -1e300));
      if (it == other.end() || it->first != j || std::abs(it->second - v) > 1e-12) return false;
    }
  }
  return true;
}

double dense_second_modulus(const SparseMixing& w, bool is_symmetric) {
  const Eigen::MatrixXd m = dense(w);
  std::vector<double> moduli;
  if (is_symmetric) {
    Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> solver(m, Eigen::EigenvaluesOnly);
    for (double v : solver.eigenvalues()) moduli.push_back(std::abs(v));
  } else {
    Eigen::EigenSolver<Eigen::MatrixXd> solver(m, false);
    for (const auto& v : solver.eigenvalues()) moduli.push_back(std::abs(v));
  }
  if (moduli.size() < 2) return 0.0;
  std::sort(moduli.rbegin(), moduli.rend());
  return moduli[1];
}

// A start vector fixed by the node index (splitmix64), so figures are reproducible.
double start_entry(std::uint64_t i) {
  std::uint64_t z = i * 0x9E3779B97F4A7C15ull + 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return static_cast<double>((z ^ (z >> 31)) >> 11) * 0x1.0p-53 - 0.5;
}

void remove_mean(std::vector<double>& v) {
  double mean = 0;
  for (double x : v) mean += x;
  mean /= static_cast<double>(v.size());
  for (double& x : v) x -= mean;
}

double norm(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x * x;
  return std::sqrt(s);
}

// Largest-modulus Ritz value of the tridiagonal matrix after k steps, with its residual
// bound (some eigenvalue of W lies within it).
std::pair<double, double> extreme_ritz(const std::vector<double>& alpha,
                                       const std::vector<double>& beta) {
  const auto k = static_cast<Eigen::Index>(alpha.size());
  Eigen::VectorXd diag = Eigen::Map<const Eigen::VectorXd>(alpha.data(), k);
  Eigen::VectorXd sub = Eigen::Map<const Eigen::VectorXd>(beta.data(), k - 1);
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es;
  es.computeFromTridiagonal(diag, sub, Eigen::ComputeEigenvectors);
  Eigen::Index best = 0;
  for (Eigen::Index i = 1; i < k; ++i)
    if (std::abs(es.eigenvalues()(i)) > std::abs(es.eigenvalues()(best))) best = i;
  return {std::abs(es.eigenvalues()(best)),
          std::abs(beta[static_cast<std::size_t>(k - 1)] * es.eigenvectors()(k - 1, best))};
}

// Lanczos on a symmetric doubly stochastic W restricted to the complement of the all-ones
// vector (deflated by removing the mean at every step): its extreme eigenvalues are the
// ones the SLEM takes, and Lanczos finds extreme eigenvalues first. O(edges) per step.
SpectralFigures lanczos_figures(const SparseMixing& w) {
  const int n = w.size();
  std::vector<double> v(n), prev(n, 0.0), next;
  for (int i = 0; i < n; ++i) v[i] = start_entry(static_cast<std::uint64_t>(i));
  remove_mean(v);
  const double v0 = norm(v);
  for (double& x : v) x /= v0;
  std::vector<double> alpha, beta;
  double slem = 0, residual = 1;
  const int steps = std::min(n - 1, kLanczosSteps);
  for (int k = 0; k < steps; ++k) {
    w.apply(v, next);
    remove_mean(next);
    double a = 0;
    for (int i = 0; i < n; ++i) a += next[i] * v[i];
    const double b_prev = beta.empty() ? 0.0 : beta.back();
    for (int i = 0; i < n; ++i) next[i] -= a * v[i] + b_prev * prev[i];
    alpha.push_back(a);
    beta.push_back(norm(next));
    const bool last = k + 1 == steps || beta.back() < 1e-12;
    if (last || (k + 1) % 50 == 0) {
      std::tie(slem, residual) = extreme_ritz(alpha, beta);
      if (last || residual <= 1e-3 * (1 - slem)) break;
    }
    prev.swap(v);
    for (int i = 0; i < n; ++i) v[i] = next[i] / beta.back();
  }
  SpectralFigures f;
  const std::string steps_text = std::to_string(alpha.size()) + " Lanczos steps";
  if (beta.back() < 1e-12 || residual <= 1e-3 * (1 - slem)) {
    f.slem = slem;
    f.method = "lanczos";
    f.note = "SLEM from " + steps_text + " on the sparse mixing matrix (residual " +
             text(residual) + "; dense eigenvalues only up to " +
             std::to_string(kDenseSymmetricLimit) + " nodes)";
  } else {
    f.slem = kNaN;
    f.method = "skipped";
    f.note = "SLEM not resolved: " + steps_text + " give SLEM >= " + text(slem) +
             " (spectral gap <= " + text(1 - slem) + ") with residual " + text(residual) +
             ", not small against the gap";
  }
  return f;
}

}  // namespace

SpectralFigures spectral_figures(const Topology& topology) {
  const int n = topology.size();
  if (n < 2) return {0.0, "exact", 1, ""};
  switch (topology.schedule()) {
    case Schedule::kOnePeerExponential:
      return exponential_figures(topology);
    case Schedule::kPeriodic:
      return periodic_figures(topology);
    case Schedule::kPeerSampling:
      return {kNaN, "skipped", 0, "peer sampling draws every round afresh: no fixed mixing matrix"};
    case Schedule::kStatic:
      break;
  }
  const SparseMixing w = topology.sparse_mixing(0);
  if (averages_in_one_round(w)) return {0.0, "exact", 1, "W averages exactly in one round: SLEM 0"};
  const bool is_symmetric = symmetric(w);
  if (n <= (is_symmetric ? kDenseSymmetricLimit : kDenseGeneralLimit))
    return {dense_second_modulus(w, is_symmetric), "dense", 0, ""};
  if (is_symmetric) return lanczos_figures(w);
  return {kNaN, "skipped", 0,
          "SLEM skipped: mixing is not symmetric and dense eigenvalues stop at " +
              std::to_string(kDenseGeneralLimit) + " nodes"};
}

double slem(const Topology& topology) {
  return spectral_figures(topology).slem;
}

}  // namespace rumor
