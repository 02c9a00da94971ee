// Byzantine-robust aggregation (method.aggregation): the rules on hand-made vectors, the
// clipping radius, agreement with plain averaging where they must agree, and the refusal
// by methods the option does not fit.
#include <doctest/doctest.h>

#include <cmath>
#include <string>

#include "harness.hpp"
#include "rumor/common/error.hpp"
#include "rumor/gossip/aggregation.hpp"

using namespace rumor;
using namespace rumor::gossip;
using rumor::gossip::testing::gen;
using rumor::gossip::testing::Sim;

namespace {

std::vector<std::span<const float>> spans(const std::vector<std::vector<float>>& v) {
  return {v.begin(), v.end()};
}

std::string refusal(const std::string& method, const std::string& codec,
                    const nlohmann::json& params) {
  const Topology t = gen("ring", 4);
  MethodContext ctx;
  ctx.topology = &t;
  ctx.codec = codec::make_codec(codec);
  ctx.params = params;
  try {
    make_method(method, ctx);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_SUITE("gossip") {
  TEST_CASE("aggregation: coordinate-wise median of hand-made vectors") {
    const std::vector<float> self = {1, 10, 0};
    const std::vector<std::vector<float>> nb = {{2, 20, 0}, {100, -5, 0}, {3, 0, 7}};
    std::vector<float> out(3);
    coordinate_median(self, spans(nb), out);
    // Columns {1,2,100,3}, {10,20,-5,0}, {0,0,0,7}: even count, mean of the middle two.
    CHECK(out[0] == doctest::Approx(2.5));
    CHECK(out[1] == doctest::Approx(5.0));
    CHECK(out[2] == doctest::Approx(0.0));
    // Odd count: the middle value; one outlier cannot move it past the honest values.
    const std::vector<std::vector<float>> two = {{2, 20, 0}, {1e6f, -1e6f, 5}};
    coordinate_median(self, spans(two), out);
    CHECK(out[0] == 2.0f);
    CHECK(out[1] == 10.0f);
    CHECK(out[2] == 0.0f);
  }

  TEST_CASE("aggregation: trimmed mean drops `trim` values at each end of every coordinate") {
    const std::vector<float> self = {1, 10};
    const std::vector<std::vector<float>> nb = {{2, 20}, {100, -5}, {3, 0}, {4, 1}};
    std::vector<float> out(2);
    CHECK(trimmed_mean(self, spans(nb), 1, out) == 1);
    // {1,2,3,4,100} -> {2,3,4}; {-5,0,1,10,20} -> {0,1,10}.
    CHECK(out[0] == doctest::Approx(3.0));
    CHECK(out[1] == doctest::Approx(11.0 / 3.0));
    CHECK(trimmed_mean(self, spans(nb), 2, out) == 2);
    CHECK(out[0] == doctest::Approx(3.0));  // the median
    CHECK(out[1] == doctest::Approx(1.0));
    // trim 0 is the unweighted mean; a trim too large is reduced to leave one value.
    CHECK(trimmed_mean(self, spans(nb), 0, out) == 0);
    CHECK(out[0] == doctest::Approx(22.0));
    CHECK(trimmed_mean(self, spans(nb), 9, out) == 2);
  }

  TEST_CASE("aggregation: the adaptive radius is the (b+1)-th largest neighbour distance") {
    CHECK(adaptive_radius({1, 5, 3}, 1) == 3);
    CHECK(adaptive_radius({1, 5, 3}, 0) == 5);  // nothing clipped
    CHECK(adaptive_radius({1, 5, 3}, 2) == 1);
    CHECK(adaptive_radius({1, 5, 3}, 7) == 1);  // fewer neighbours than b+1: the smallest
    CHECK(adaptive_radius({4}, 1) == 4);        // one neighbour: not clipped
    CHECK(adaptive_radius({}, 1) == 0);
  }

  TEST_CASE("aggregation: clipped gossip bounds a far neighbour's pull and leaves close ones") {
    const std::vector<float> self = {0, 0, 0};
    const std::vector<std::vector<float>> nb = {{1, 0, 0}, {0, 2, 0}, {0, 0, 100}};
    const std::vector<double> w = {0.25, 0.25, 0.25};
    std::vector<float> out(3);
    auto r = clipped_gossip(self, spans(nb), w, -1, 1, out);  // adaptive: tau = 2
    CHECK(r.tau == doctest::Approx(2.0));
    CHECK(r.clipped == 1);
    CHECK(out[0] == doctest::Approx(0.25));
    CHECK(out[1] == doctest::Approx(0.5));
    CHECK(out[2] == doctest::Approx(0.5));  // 0.25 * 2 instead of 0.25 * 100
    // A fixed radius larger than every distance: plain Metropolis mixing.
    r = clipped_gossip(self, spans(nb), w, 1e9, 1, out);
    CHECK(r.clipped == 0);
    CHECK(out[2] == doctest::Approx(25.0));
    // The attacker moves as far as it likes: the update stays within W_ij tau.
    const std::vector<std::vector<float>> far = {{1, 0, 0}, {0, 2, 0}, {0, 0, 1e7f}};
    clipped_gossip(self, spans(far), w, -1, 1, out);
    CHECK(out[2] == doctest::Approx(0.5));
    // Radius 0: every neighbour is ignored, the node keeps its model.
    r = clipped_gossip(self, spans(nb), w, 0, 1, out);
    CHECK(r.clipped == 3);
    CHECK(out[0] == 0.0f);
  }

  TEST_CASE("aggregation: clip with a huge radius and trimmed-mean with trim 0 mix as mean") {
    // Clipping that clips nothing is D-PSGD's Metropolis mixing (up to rounding).
    Sim mean(gen("torus", 9), "dpsgd", "fp32", 16);
    Sim clip(gen("torus", 9), "dpsgd", "fp32", 16, {{"aggregation", "clip"}, {"clip_tau", 1e30}});
    // On the complete graph Metropolis weights are uniform: trim 0 is the same average.
    Sim complete(gen("complete", 5), "dpsgd", "fp32", 16);
    Sim trim0(gen("complete", 5), "dpsgd", "fp32", 16,
              {{"aggregation", "trimmed-mean"}, {"trim", 0}});
    for (int r = 0; r < 5; ++r) {
      mean.round(r);
      clip.round(r);
      complete.round(r);
      trim0.round(r);
    }
    for (std::size_t i = 0; i < mean.models.size(); ++i)
      for (std::size_t k = 0; k < 16; ++k)
        CHECK(clip.models[i][k] == doctest::Approx(mean.models[i][k]).epsilon(1e-5));
    for (std::size_t i = 0; i < complete.models.size(); ++i)
      for (std::size_t k = 0; k < 16; ++k)
        CHECK(trim0.models[i][k] == doctest::Approx(complete.models[i][k]).epsilon(1e-5));
    CHECK(clip.methods[0]->round_metrics().at("clip_clipped") == 0);
    CHECK(mean.methods[0]->round_metrics().empty());  // mean adds nothing to the metrics
  }

  TEST_CASE("aggregation: clipped gossip reaches consensus, coordinate-wise rules contract") {
    // Clipping always pulls towards every neighbour, by at most W_ij tau: consensus.
    Sim clip(gen("torus", 9), "dpsgd", "fp32", 8, {{"aggregation", "clip"}});
    const double start = clip.consensus_distance();
    for (int r = 0; r < 60; ++r) clip.round(r);
    CHECK(clip.consensus_distance() < 0.01 * start);
    // Median and trimmed mean never move a node outside its neighbourhood's range, so the
    // spread shrinks, but on a sparse graph they can stop short of consensus (a node that
    // is the median of its neighbourhood stays put): a known limit of these rules there.
    // Here trimmed-mean reached 1e-15 of the start, median stopped at about 0.09 of it.
    for (const std::string rule : {"trimmed-mean", "median"}) {
      CAPTURE(rule);
      Sim s(gen("torus", 9), "dpsgd", "fp32", 8, {{"aggregation", rule}});
      for (int r = 0; r < 60; ++r) s.round(r);
      CHECK(s.consensus_distance() < 0.5 * start);
    }
  }

  TEST_CASE("aggregation: push-sum and public-copy methods refuse it with the reason") {
    const nlohmann::json clip = {{"aggregation", "clip"}};
    CHECK(refusal("sgp", "fp32", clip).find("push-sum") != std::string::npos);
    CHECK(refusal("choco", "topk:0.5", clip).find("public copies") != std::string::npos);
    CHECK(refusal("squarm", "topk:0.5", clip).find("public copies") != std::string::npos);
    CHECK(refusal("allreduce", "fp32", clip).find("aggregation") != std::string::npos);
    // mean is everyone's default; dpsgd and qgm take every rule; a wrong name is named.
    CHECK(refusal("sgp", "fp32", {{"aggregation", "mean"}}).empty());
    CHECK(refusal("dpsgd", "fp32", clip).empty());
    CHECK(refusal("qgm", "fp32", {{"aggregation", "median"}}).empty());
    CHECK(refusal("dpsgd", "fp32", {{"aggregation", "krum"}}).find("trimmed-mean") !=
          std::string::npos);
  }
}
