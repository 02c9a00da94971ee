#include <doctest/doctest.h>

#include <cmath>
#include <set>

#include "rumor/common/rng.hpp"

TEST_SUITE("common") {
  TEST_CASE("derived streams are reproducible and distinct") {
    auto a = rumor::Rng::derive(7, 1, 2, 3);
    auto b = rumor::Rng::derive(7, 1, 2, 3);
    auto c = rumor::Rng::derive(7, 1, 2, 4);
    bool all_equal_c = true;
    for (int i = 0; i < 100; ++i) {
      const auto x = a();
      CHECK(x == b());
      if (x != c()) all_equal_c = false;
    }
    CHECK_FALSE(all_equal_c);
  }

  TEST_CASE("uniform draws are in range with the right mean") {
    rumor::Rng rng(42);
    double sum = 0;
    const int n = 200000;
    for (int i = 0; i < n; ++i) {
      const double u = rng.uniform();
      REQUIRE(u >= 0.0);
      REQUIRE(u < 1.0);
      sum += u;
    }
    // Standard error of the mean is sqrt(1/12/n) ~ 6.5e-4; 6 sigma.
    CHECK(std::abs(sum / n - 0.5) < 4e-3);
    std::set<std::uint64_t> seen;
    for (int i = 0; i < 1000; ++i) seen.insert(rng.below(10));
    CHECK(seen.size() == 10);
    CHECK(*seen.rbegin() == 9);
  }
}
