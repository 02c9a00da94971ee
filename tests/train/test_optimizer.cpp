#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "rumor/common/error.hpp"
#include "rumor/train/optimizer.hpp"

using namespace rumor;
using namespace rumor::train;

TEST_SUITE("train") {
  TEST_CASE("schedules: constant, step, cosine, warm-up") {
    ScheduleOptions s;
    CHECK(LrSchedule(0.1, s).at(12345) == doctest::Approx(0.1));
    s.kind = "step";
    s.step_size = 10;
    s.gamma = 0.5;
    LrSchedule st(0.2, s);
    CHECK(st.at(0) == doctest::Approx(0.2));
    CHECK(st.at(9) == doctest::Approx(0.2));
    CHECK(st.at(10) == doctest::Approx(0.1));
    CHECK(st.at(25) == doctest::Approx(0.05));
    s = {};
    s.kind = "cosine";
    s.total_steps = 100;
    s.min_lr = 0.01;
    LrSchedule cs(0.11, s);
    CHECK(cs.at(0) == doctest::Approx(0.11));
    CHECK(cs.at(50) == doctest::Approx(0.06));
    CHECK(cs.at(100) == doctest::Approx(0.01));
    CHECK(cs.at(1000) == doctest::Approx(0.01));
    s.warmup_steps = 4;
    LrSchedule ws(0.11, s);
    CHECK(ws.at(0) == doctest::Approx(0.11 / 4));
    CHECK(ws.at(3) == doctest::Approx(0.11));
    CHECK(ws.at(50) == doctest::Approx(0.06));
    s = {};
    s.kind = "exponential";
    CHECK_THROWS_AS(LrSchedule(0.1, s), ConfigError);
    s.kind = "cosine";  // without total_steps
    CHECK_THROWS_AS(LrSchedule(0.1, s), ConfigError);
  }

  TEST_CASE("a joining node follows the schedule from the run's step, with its own step count") {
    OptimizerOptions o;
    o.lr = 0.1;
    o.momentum = 0.9;
    o.schedule.kind = "cosine";
    o.schedule.total_steps = 100;
    const LrSchedule cs(0.1, o.schedule);
    LocalOptimizer opt(1, o);
    std::vector<float> x{1.0f};
    const std::vector<float> g{1.0f};
    opt.follow_schedule_from(60);
    CHECK(opt.steps() == 0);  // momentum starts afresh: m = g at its first step
    CHECK(opt.lr() == doctest::Approx(cs.at(60)));
    CHECK(opt.step(x, g) == doctest::Approx(cs.at(60)));
    CHECK(x[0] == doctest::Approx(1.0 - cs.at(60)));
    CHECK(opt.lr() == doctest::Approx(cs.at(61)));
    opt.follow_schedule_from(30);  // never back
    CHECK(opt.schedule_step() == 61);
    opt.reset();
    CHECK(opt.schedule_step() == 0);
  }

  TEST_CASE("SGD matches the torch.optim.SGD update written out by hand") {
    OptimizerOptions o;
    o.lr = 0.5;
    o.momentum = 0.9;
    o.weight_decay = 0.1;
    for (bool nesterov : {false, true}) {
      CAPTURE(nesterov);
      o.nesterov = nesterov;
      LocalOptimizer opt(2, o);
      std::vector<float> x{1.0f, -2.0f};
      const std::vector<float> g1{0.5f, 0.25f}, g2{-1.0f, 2.0f};
      // step 1: d = g + wd x; m = d; x -= lr * (nesterov ? d + mu m : m)
      double m[2], xr[2] = {1.0, -2.0};
      for (int i = 0; i < 2; ++i) {
        const double d = g1[i] + 0.1 * xr[i];
        m[i] = d;
        xr[i] -= 0.5 * (nesterov ? d + 0.9 * m[i] : m[i]);
      }
      CHECK(opt.step(x, g1) == doctest::Approx(0.5));
      CHECK(x[0] == doctest::Approx(xr[0]));
      CHECK(x[1] == doctest::Approx(xr[1]));
      for (int i = 0; i < 2; ++i) {
        const double d = g2[i] + 0.1 * xr[i];
        m[i] = 0.9 * m[i] + d;
        xr[i] -= 0.5 * (nesterov ? d + 0.9 * m[i] : m[i]);
      }
      opt.step(x, g2);
      CHECK(x[0] == doctest::Approx(xr[0]));
      CHECK(x[1] == doctest::Approx(xr[1]));
      CHECK(opt.steps() == 2);
      opt.reset();
      CHECK(opt.steps() == 0);
      CHECK(opt.momentum_buffer()[0] == 0.0f);
    }
  }

  TEST_CASE("plain SGD and bad options") {
    OptimizerOptions o;
    o.lr = 0.1;
    LocalOptimizer opt(3, o);
    std::vector<float> x{1, 2, 3};
    const std::vector<float> g{1, 1, -1};
    opt.step(x, g);
    CHECK(x[0] == doctest::Approx(0.9));
    CHECK(x[1] == doctest::Approx(1.9));
    CHECK(x[2] == doctest::Approx(3.1));
    std::vector<float> short_g{1};
    CHECK_THROWS(opt.step(x, short_g));
    o.name = "adagrad";  // not a rumor optimizer
    CHECK_THROWS_AS(LocalOptimizer(3, o), ConfigError);
    o.name = "adam";
    o.momentum = 0.5;  // adam keeps its own moments
    CHECK_THROWS_AS(LocalOptimizer(3, o), ConfigError);
    o.momentum = 0.0;
    o.beta2 = 1.0;
    CHECK_THROWS_AS(LocalOptimizer(3, o), ConfigError);
    o.beta2 = 0.999;
    o.eps = 0.0;
    CHECK_THROWS_AS(LocalOptimizer(3, o), ConfigError);
    o.eps = 1e-8;
    CHECK(LocalOptimizer(3, o).state().size() == 2);
    o.name = "sgd";
    o.nesterov = true;  // needs momentum
    CHECK_THROWS_AS(LocalOptimizer(3, o), ConfigError);
    o.nesterov = false;
    o.momentum = 1.5;
    CHECK_THROWS_AS(LocalOptimizer(3, o), ConfigError);
  }
}
