// The pairwise protocol of asynchronous methods (adpsgd): each exchange keeps the sum of
// the models, crossing requests cannot deadlock and favour neither id, and answers nobody
// asked for are refused.
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
  int served_by_0 = 0;
  const int steps = 400;
  for (int e = 0; e < steps; ++e) {
    CAPTURE(e);
    const auto before = sums(s);
    auto a = pw(s, 0).start(e);  // both locked, each asking the other
    auto b = pw(s, 1).start(e);
    REQUIRE((a && b && a->to == 1 && b->to == 0));
    // Exactly one serves the crossing request, the one the pair's coin names; the other
    // refuses, so neither model in flight is averaged twice and both get an answer.
    const int server = crossing_server(7, 0, e, 1, e);
    auto to1 = delivered(pw(s, 0).serve(delivered(b->message, 1)), 0);
    auto to0 = delivered(pw(s, 1).serve(delivered(a->message, 0)), 1);
    REQUIRE(to1.kind == (server == 0 ? net::MessageKind::kPairReply : net::MessageKind::kPairBusy));
    REQUIRE(to0.kind == (server == 1 ? net::MessageKind::kPairReply : net::MessageKind::kPairBusy));
    const int other = 1 - server;
    CHECK(pw(s, other).finish(server == 0 ? to1 : to0));         // averaged: its step is over
    CHECK_FALSE(pw(s, server).finish(server == 0 ? to0 : to1));  // busy: it asks again
    CHECK(s.models[0] == s.models[1]);
    check_same_sum(before, sums(s));
    // The second request finds the other end free: served, and the step is over.
    auto again = pw(s, server).start(e);
    REQUIRE(again);
    CHECK(pw(s, server).finish(
        delivered(pw(s, other).serve(delivered(again->message, server)), other)));
    CHECK_FALSE((pw(s, 0).locked() || pw(s, 1).locked()));
    check_same_sum(before, sums(s));
    served_by_0 += server == 0 ? 1 : 0;
  }
  // Neither id serves every crossing (the old rule: the higher id always served).
  CHECK(served_by_0 > steps * 2 / 5);
  CHECK(served_by_0 < steps * 3 / 5);
  CHECK(s.methods[0]->round_metrics().at("pair_busy").get<int>() == served_by_0);
}

TEST_CASE("adpsgd: the crossing coin names one server on both ends and favours neither id") {
  Rng rng = Rng::derive(11, 2);
  const int draws = 20000;
  int low = 0, differs = 0;
  for (int k = 0; k < draws; ++k) {
    const int a = static_cast<int>(rng.below(64));
    const int b = static_cast<int>((a + 1 + rng.below(63)) % 64);
    const auto sa = static_cast<std::int64_t>(rng.below(1000000));
    const auto sb = static_cast<std::int64_t>(rng.below(1000000));
    const int server = crossing_server(5, a, sa, b, sb);
    REQUIRE((server == a || server == b));
    REQUIRE(crossing_server(5, b, sb, a, sa) == server);  // both ends agree
    low += server == std::min(a, b) ? 1 : 0;
    differs += crossing_server(6, a, sa, b, sb) != server ? 1 : 0;
  }
  // Unbiased: 20000 fair coins land within 0.48..0.52 but with odds of about 1e-8.
  CHECK(low > draws * 48 / 100);
  CHECK(low < draws * 52 / 100);
  CHECK(differs > draws / 3);  // the run seed draws other coins
  // One pair over a run of steps: both ends serve about half the crossings.
  int zero = 0;
  for (int e = 0; e < 2000; ++e) zero += crossing_server(5, 0, e, 1, e) == 0 ? 1 : 0;
  CHECK(zero > 900);
  CHECK(zero < 1100);
}

TEST_CASE("adpsgd: a locked node answers busy and gives up after max_tries") {
  Sim s(gen("ring", 4), "adpsgd", "fp32", 8, {{"max_tries", 2}});
  auto req = pw(s, 3).start(0);
  REQUIRE(req);
  const int j = req->to;
  // j locked on a node other than 3: 3's request is not a crossing, so j refuses it.
  auto mine_req = pw(s, j).start(0);
  for (int t = 0; t < 64 && mine_req && mine_req->to == 3; ++t) {
    pw(s, j).give_up();
    mine_req = pw(s, j).start(0);
  }
  REQUIRE((mine_req && mine_req->to != 3));
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
