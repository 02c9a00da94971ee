// Spectral figures of time-varying graphs: exact finite-time averaging is reported as such
// (SLEM 0 and the rounds it takes), and elsewhere the per-round SLEM is the product's, not
// rounding noise.
#include <doctest/doctest.h>

#include <Eigen/Dense>
#include <cmath>

#include "rumor/topology/generators.hpp"
#include "rumor/topology/topology.hpp"

using namespace rumor;

namespace {

Topology exponential(int n) {
  GenOptions o;
  o.nodes = n;
  return generate_topology("exponential", o);
}

// Largest |x_i - mean| after `rounds` rounds of the schedule from round 0, relative to the
// start's, starting from all the mass on node 0.
double deviation_after(const Topology& t, int rounds) {
  const int n = t.size();
  std::vector<double> x(n, 0.0), y;
  x[0] = 1.0;
  double mean = 0;
  for (double v : x) mean += v / n;
  auto dev = [&] {
    double d = 0;
    for (double v : x) d = std::max(d, std::abs(v - mean));
    return d;
  };
  const double start = dev();
  for (int r = 0; r < rounds; ++r) {
    t.sparse_mixing(r).apply(x, y);
    x.swap(y);
  }
  return dev() / start;
}

}  // namespace

TEST_SUITE("topology") {
  TEST_CASE("the exponential graph at powers of two averages exactly in log2 n rounds") {
    for (int log_n : {1, 2, 4, 10, 12}) {
      const int n = 1 << log_n;
      CAPTURE(n);
      const auto t = exponential(n);
      const auto s = t.summary();
      CHECK(s.slem == 0.0);
      CHECK(s.spectral_gap == 1.0);
      CHECK(s.slem_method == "exact");
      CHECK(s.rounds_to_exact_average == log_n);
      // Independent of the figure: the schedule averages in log2 n rounds and not before.
      CHECK(deviation_after(t, log_n) < 1e-12);
      // One round short, node 0's mass covers half the nodes: deviation 1/n of the start.
      if (log_n > 1) CHECK(deviation_after(t, log_n - 1) > 0.5 / n);
    }
  }

  TEST_CASE("other sizes: no finite-time claim, and the SLEM bounds the contraction") {
    for (int n : {3, 12, 100, 1000, 1023}) {
      CAPTURE(n);
      const auto t = exponential(n);
      const auto f = spectral_figures(t);
      CHECK(f.rounds_to_exact_average == 0);
      CHECK(f.slem > 0.01);
      CHECK(f.slem < 1.0);
      // The product over a period is circulant (normal): it shrinks x - mean by at most
      // SLEM^period, and a few periods bring the deviation near that rate.
      const int p = t.period();
      CHECK(deviation_after(t, p) <= std::sqrt(n) * std::pow(f.slem, p) * (1 + 1e-9));
    }
  }

  TEST_CASE("the exact figure matches dense eigenvalues of the product where those are sound") {
    for (int n : {12, 100}) {
      CAPTURE(n);
      const auto t = exponential(n);
      Eigen::MatrixXd p = Eigen::MatrixXd::Identity(n, n);
      for (int r = 0; r < t.period(); ++r) {
        Eigen::MatrixXd w = Eigen::MatrixXd::Zero(n, n);
        const auto m = t.sparse_mixing(r);
        for (int j = 0; j < n; ++j)
          for (const auto& [i, v] : m.rows[j]) w(j, i) = v;
        p = w * p;
      }
      Eigen::EigenSolver<Eigen::MatrixXd> es(p, false);
      std::vector<double> mod;
      for (const auto& v : es.eigenvalues()) mod.push_back(std::abs(v));
      std::sort(mod.rbegin(), mod.rend());
      CHECK(spectral_figures(t).slem ==
            doctest::Approx(std::pow(mod[1], 1.0 / t.period())).epsilon(1e-8));
    }
  }

  TEST_CASE("a complete graph averages in one round, a ring does not") {
    GenOptions o;
    for (int n : {7, 8}) {
      o.nodes = n;
      const auto c = spectral_figures(generate_topology("complete", o));
      CHECK(c.slem == 0.0);
      CHECK(c.rounds_to_exact_average == 1);
    }
    const auto r = spectral_figures(generate_topology("ring", o));
    CHECK(r.method == "dense");
    CHECK(r.rounds_to_exact_average == 0);
  }
}
