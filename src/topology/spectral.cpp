// Spectral figures with Eigen (a well-kept solver rather than a hand-written one).
#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <vector>

#include "rumor/topology/topology.hpp"

namespace rumor {
namespace {

Eigen::MatrixXd to_eigen(const MixingMatrix& w) {
  const int n = w.size();
  Eigen::MatrixXd m(n, n);
  for (int j = 0; j < n; ++j)
    for (int i = 0; i < n; ++i) m(j, i) = w(j, i);
  return m;
}

// Second-largest modulus among the eigenvalues (the largest is 1 for a stochastic matrix).
double second_modulus(const Eigen::MatrixXd& m, bool symmetric) {
  std::vector<double> moduli;
  if (symmetric) {
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

}  // namespace

double slem(const Topology& topology) {
  const int n = topology.size();
  if (n < 2) return 0.0;
  if (!topology.time_varying()) {
    const Eigen::MatrixXd w = to_eigen(topology.mixing(0));
    const bool symmetric = (w - w.transpose()).cwiseAbs().maxCoeff() < 1e-12;
    return second_modulus(w, symmetric);
  }
  const int period = topology.period();
  Eigen::MatrixXd product = Eigen::MatrixXd::Identity(n, n);
  for (int r = 0; r < period; ++r) product = to_eigen(topology.mixing(r)) * product;
  const bool symmetric = (product - product.transpose()).cwiseAbs().maxCoeff() < 1e-12;
  return std::pow(second_modulus(product, symmetric), 1.0 / period);
}

}  // namespace rumor
