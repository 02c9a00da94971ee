// The pairwise protocol of asynchronous methods (adpsgd): each exchange keeps the sum of
// the models, crossing requests cannot deadlock, and answers nobody asked for are refused.
#include <doctest/doctest.h>

#include "harness.hpp"
#include "rumor/common/error.hpp"
#include "rumor/gossip/pairwise.hpp"

using namespace rumor;
using namespace rumor::gossip;
using testing::gen;
using testing::Sim;

namespace {

Pairwise& pw(Sim& s, int i) {
  return *s.methods[i]->pairwise();
}

// The message as node `to` receives it from `from`.
net::Message delivered(net::Message m, int from) {
  m.sender = from;
  m.link = net::LinkKind::kData;
  return m;
}

std::vector<double> sums(const Sim& s) {
  std::vector<double> sum(s.models[0].size(), 0.0);
  for (const auto& x : s.models)
    for (std::size_t k = 0; k < sum.size(); ++k) sum[k] += x[k];
  return sum;
}

void check_same_sum(const std::vector<double>& a, const std::vector<double>& b) {
  for (std::size_t k = 0; k < a.size(); ++k) REQUIRE(a[k] == doctest::Approx(b[k]).epsilon(1e-6));
}

}  // namespace

TEST_CASE("adpsgd conserves the sum of models in each pairwise exchange") {
  Sim s(gen("ring", 6), "adpsgd", "fp32", 64);
  Rng rng = Rng::derive(3, 1);
  int averaged = 0;
  for (int e = 0; e < 200; ++e) {
    const auto before = sums(s);
    const int i = static_cast<int>(rng.below(6));
    auto req = pw(s, i).start(e);
    REQUIRE(req);
    const int j = req->to;
    CHECK(pw(s, i).locked());
    auto in = delivered(req->message, i);
    REQUIRE_FALSE(s.methods[j]->check(in));
    auto answer = delivered(pw(s, j).serve(in), j);
    REQUIRE_FALSE(s.methods[i]->check(answer));
    CHECK(pw(s, i).finish(answer));
    CHECK_FALSE(pw(s, i).locked());
    // Both ends hold the very same average, and the sum did not move.
    CHECK(s.models[i] == s.models[j]);
    check_same_sum(before, sums(s));
    ++averaged;
  }
  CHECK(averaged == 200);
  CHECK(s.consensus_distance() < 1e-3);  // pairwise averages alone reach consensus
  CHECK(s.methods[0]->round_metrics().at("pair_exchanges").get<std::uint64_t>() > 0);
}

TEST_CASE("adpsgd: two nodes asking each other average once, without deadlock") {
  Sim s(gen("ring", 2), "adpsgd", "fp32", 16);
  const auto before = sums(s);
  auto a = pw(s, 0).start(0);  // both locked, each asking the other
  auto b = pw(s, 1).start(0);
  REQUIRE((a && b && a->to == 1 && b->to == 0));
  // Node 0 refuses the crossing request of the higher id; node 1 serves the lower id's.
  auto to1 = delivered(pw(s, 0).serve(delivered(b->message, 1)), 0);
  CHECK(to1.kind == net::MessageKind::kPairBusy);
  auto to0 = delivered(pw(s, 1).serve(delivered(a->message, 0)), 1);
  CHECK(to0.kind == net::MessageKind::kPairReply);
  CHECK(pw(s, 0).finish(to0));
  CHECK_FALSE(pw(s, 1).finish(to1));  // busy: node 1 asks again
  CHECK(s.models[0] == s.models[1]);
  check_same_sum(before, sums(s));
  CHECK(s.methods[1]->round_metrics().at("pair_busy") == 1);
}

TEST_CASE("adpsgd: a locked node answers busy and gives up after max_tries") {
  Sim s(gen("ring", 4), "adpsgd", "fp32", 8, {{"max_tries", 2}});
  // Node 3 has the highest id: a locked neighbour refuses it whoever that neighbour asks.
  auto req = pw(s, 3).start(0);
  REQUIRE(req);
  const int j = req->to;
  REQUIRE(pw(s, j).start(0));
  const auto mine = s.models[3], theirs = s.models[j];
  auto answer = delivered(pw(s, j).serve(delivered(req->message, 3)), j);
  CHECK(answer.kind == net::MessageKind::kPairBusy);
  CHECK_FALSE(pw(s, 3).finish(answer));
  CHECK(s.models[3] == mine);  // nothing averaged on either end
  CHECK(s.models[j] == theirs);
  auto again = pw(s, 3).start(0);
  REQUIRE(again);
  CHECK(pw(s, 3).finish(delivered(pw(s, 3).busy(again->message), again->to)));
  CHECK(s.methods[3]->round_metrics().at("pair_skipped") == 1);
  CHECK(s.methods[3]->round_metrics().at("pair_busy") == 2);
}

TEST_CASE("adpsgd refuses answers nobody asked for, and lossy codecs") {
  Sim s(gen("ring", 4), "adpsgd", "fp32", 8);
  auto req = pw(s, 0).start(0);
  REQUIRE(req);
  const int other = req->to == 1 ? 3 : 1;
  auto forged = delivered(pw(s, other).serve(delivered(req->message, 0)), other);
  CHECK(s.methods[0]->check(forged).reason == "unexpected reply");
  net::Message gossip;
  gossip.sender = req->to;
  CHECK(s.methods[0]->check(gossip).reason == "unexpected kind");
  CHECK_THROWS_AS(Sim(gen("ring", 4), "adpsgd", "fp16", 8), ConfigError);
}
