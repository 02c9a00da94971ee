// Exact averages resume once every node is back on the control ring: scripted boundaries over
// the in-process transport, time a counter the test moves.
#include <doctest/doctest.h>

#include <set>

#include "average_resume.hpp"
#include "net/net_fixture.hpp"

namespace {

using namespace rumor;
using net::testing::Cluster;
using net::testing::Kind;

struct Nodes {
  explicit Nodes(int n) : c(Kind::kInProc, net::testing::ring_topology(n)) {
    for (int i = 0; i < n; ++i) {
      run::AverageResume::Options o;
      o.self = i;
      o.nodes = n;
      o.eval_every = 10;
      o.rounds = 100;
      o.retry = std::chrono::milliseconds(100);
      o.now = [this] {
        return run::AverageResume::Clock::time_point(std::chrono::milliseconds(ms));
      };
      resume.push_back(std::make_unique<run::AverageResume>(c.node(i), o));
    }
  }
  // The boundary before round r of every node with averages off, in id order (as the TCP
  // driver calls it); the nodes back on at r.
  std::vector<int> boundary(std::int64_t r) {
    std::vector<int> on;
    for (std::size_t i = 0; i < resume.size(); ++i)
      if (!averaging.count(static_cast<int>(i)) && resume[i]->boundary(r)) {
        on.push_back(static_cast<int>(i));
        averaging.insert(static_cast<int>(i));
      }
    ms += 10;
    return on;
  }
  Cluster c;
  std::vector<std::unique_ptr<run::AverageResume>> resume;
  std::int64_t ms = 0;
  std::set<int> averaging;
};

}  // namespace

TEST_SUITE("run") {
  TEST_CASE("exact averages: every node agrees on the evaluation round they resume at") {
    Nodes n(4);
    // A stale no-average notice of an earlier round is dropped at the resume.
    net::Message stale;
    stale.kind = net::MessageKind::kNoAverage;
    stale.round = 3;
    stale.link = net::LinkKind::kControl;
    n.c.node(1).send(2, stale);
    std::vector<std::vector<int>> on_at(100);
    for (std::int64_t r = 5; r < 40; ++r) on_at[r] = n.boundary(r);
    // Proposed at round 5 for the first evaluation round at least 2 n + 2 ahead: 19.
    CHECK(on_at[19] == std::vector<int>{0, 1, 2, 3});
    for (std::int64_t r = 5; r < 40; ++r)
      if (r != 19) CHECK(on_at[r].empty());
    net::MessageFilter f;
    f.kind = net::MessageKind::kNoAverage;
    CHECK_FALSE(n.c.node(2).take(f, std::chrono::milliseconds(0)).has_value());
  }

  TEST_CASE("exact averages stay off while a node is off the control ring") {
    Nodes n(4);
    n.c.node(2).stop();
    for (std::int64_t r = 5; r < 60; ++r) {
      const auto on = n.boundary(r);
      CHECK(on.empty());
    }
  }
}
