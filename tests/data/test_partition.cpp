#include <doctest/doctest.h>

#include <algorithm>
#include <numeric>

#include "rumor/common/error.hpp"
#include "rumor/data/dataset.hpp"
#include "rumor/data/partition.hpp"

using namespace rumor;
using namespace rumor::data;

namespace {

// Labels with unequal class sizes (class c has 100 + 37 c samples), in a scrambled order.
std::vector<std::int32_t> make_labels(int classes = 10) {
  std::vector<std::int32_t> labels;
  for (int c = 0; c < classes; ++c) labels.insert(labels.end(), 100 + 37 * c, c);
  for (std::size_t i = 0; i < labels.size(); ++i)
    std::swap(labels[i], labels[(i * 7919) % labels.size()]);
  return labels;
}

void check_exact_cover(const Partition& p, std::size_t n) {
  std::vector<int> seen(n, 0);
  for (const auto& node : p.nodes) {
    for (auto i : node) {
      REQUIRE(i < n);
      ++seen[i];
    }
  }
  CHECK(std::all_of(seen.begin(), seen.end(), [](int s) { return s == 1; }));
}

PartitionOptions opts(const std::string& kind, std::uint64_t seed = 7) {
  PartitionOptions o;
  o.kind = kind;
  o.seed = seed;
  return o;
}

}  // namespace

TEST_SUITE("data") {
  TEST_CASE("every kind assigns each sample exactly once and preserves class totals") {
    const auto labels = make_labels();
    const PartitionInput in{labels, 10, {}};
    for (const std::string kind : {"iid", "dirichlet", "shards", "quantity"}) {
      CAPTURE(kind);
      for (std::size_t nodes : {1u, 3u, 16u}) {
        CAPTURE(nodes);
        const Partition p = make_partition(in, nodes, opts(kind));
        REQUIRE(p.num_nodes() == nodes);
        check_exact_cover(p, labels.size());
        const auto st = partition_stats(p, labels, 10);
        std::vector<std::size_t> totals(10, 0);
        for (const auto& c : st.counts) {
          for (std::size_t k = 0; k < 10; ++k) totals[k] += c[k];
        }
        CHECK(totals == class_counts(labels, 10));
      }
    }
  }

  TEST_CASE("same seed gives the same partition, another seed another") {
    const auto labels = make_labels();
    const PartitionInput in{labels, 10, {}};
    for (const std::string kind : {"iid", "dirichlet", "shards", "quantity"}) {
      CAPTURE(kind);
      const Partition a = make_partition(in, 8, opts(kind, 1));
      const Partition b = make_partition(in, 8, opts(kind, 1));
      const Partition c = make_partition(in, 8, opts(kind, 2));
      CHECK(a.nodes == b.nodes);
      CHECK(a.nodes != c.nodes);
    }
  }

  TEST_CASE("iid sizes differ by at most one and label skew is small") {
    const auto labels = make_labels();
    const Partition p = make_partition({labels, 10, {}}, 7, opts("iid"));
    const auto st = partition_stats(p, labels, 10);
    CHECK(st.size_max - st.size_min <= 1);
    CHECK(st.label_skew < 0.15);
  }

  TEST_CASE("dirichlet label skew at alpha 0.1 is well above alpha 100") {
    const auto labels = make_labels();
    auto low = opts("dirichlet");
    low.alpha = 0.1;
    low.min_size = 5;
    auto high = opts("dirichlet");
    high.alpha = 100.0;
    const auto skew_low =
        partition_stats(make_partition({labels, 10, {}}, 10, low), labels, 10).label_skew;
    const auto skew_high =
        partition_stats(make_partition({labels, 10, {}}, 10, high), labels, 10).label_skew;
    CAPTURE(skew_low);
    CAPTURE(skew_high);
    CHECK(skew_low > 0.5);
    CHECK(skew_high < 0.1);
    CHECK(skew_low > 5 * skew_high);
  }

  TEST_CASE("dirichlet minimum size holds, and an impossible minimum fails with advice") {
    const auto labels = make_labels();
    auto o = opts("dirichlet");
    o.alpha = 0.3;
    bool rule_mattered = false;
    for (std::uint64_t seed = 1; seed <= 5; ++seed) {
      o.seed = seed;
      o.min_size = 40;
      const auto st = partition_stats(make_partition({labels, 10, {}}, 20, o), labels, 10);
      CHECK(st.size_min >= 40);
      o.min_size = 0;  // without the rule some draw leaves a node below 40
      if (partition_stats(make_partition({labels, 10, {}}, 20, o), labels, 10).size_min < 40)
        rule_mattered = true;
    }
    CHECK(rule_mattered);
    // 20 nodes x 140 = 2800 > 2665 samples.
    o.min_size = 140;
    CHECK_THROWS_AS(make_partition({labels, 10, {}}, 20, o), DataError);
    // Feasible in total but (almost surely) never drawn at alpha 0.01: capped re-draws.
    o.alpha = 0.01;
    o.min_size = 120;
    o.max_attempts = 5;
    try {
      make_partition({labels, 10, {}}, 20, o);
      FAIL("expected DataError");
    } catch (const DataError& e) {
      CHECK(std::string(e.what()).find("smaller min_size") != std::string::npos);
    }
  }

  TEST_CASE("shards give each node few classes") {
    const auto labels = make_labels();
    auto o = opts("shards");
    o.shards_per_node = 2;
    const Partition p = make_partition({labels, 10, {}}, 10, o);
    const auto st = partition_stats(p, labels, 10);
    for (const auto& c : st.counts) {
      // two label-sorted shards touch at most 2 classes each
      CHECK(std::count_if(c.begin(), c.end(), [](std::size_t v) { return v > 0; }) <= 4);
    }
    CHECK(st.label_skew > 0.5);
    CHECK(st.size_max - st.size_min <= 2);
  }

  TEST_CASE("quantity partition: skewed sizes, min size, labels close to global") {
    const auto labels = make_labels();
    auto o = opts("quantity");
    o.min_size = 20;
    const auto st = partition_stats(make_partition({labels, 10, {}}, 10, o), labels, 10);
    CHECK(st.size_min >= 20);
    CHECK(st.size_max > 2 * st.size_min);
  }

  TEST_CASE("label_skew is the mean total-variation distance") {
    // 2 classes, 4 samples: node 0 holds {0, 0}, node 1 holds {1, 1}: TV = 0.5 each.
    const std::vector<std::int32_t> labels{0, 0, 1, 1};
    Partition p;
    p.nodes = {{0, 1}, {2, 3}};
    auto st = partition_stats(p, labels, 2);
    CHECK(st.label_skew == doctest::Approx(0.5));
    CHECK(st.size_min == 2);
    CHECK(st.size_max == 2);
    p.nodes = {{0, 2}, {1, 3}};
    st = partition_stats(p, labels, 2);
    CHECK(st.label_skew == doctest::Approx(0.0));
  }

  TEST_CASE("natural partition follows groups, bad input is rejected") {
    const std::vector<std::int32_t> labels{0, 1, 0, 1, 0, 1};
    const std::vector<std::int32_t> groups{5, 5, 6, 6, 7, 7};
    const Partition p = make_partition({labels, 2, groups}, 3, opts("natural"));
    for (const auto& node : p.nodes) {
      REQUIRE(node.size() == 2);
      CHECK(groups[node[0]] == groups[node[1]]);
    }
    CHECK_THROWS_AS(make_partition({labels, 2, {}}, 3, opts("natural")), ConfigError);
    CHECK_THROWS_AS(make_partition({labels, 2, {}}, 3, opts("nope")), ConfigError);
    CHECK_THROWS_AS(make_partition({labels, 2, {}}, 0, opts("iid")), ConfigError);
    const std::vector<std::int32_t> bad{0, 3};
    CHECK_THROWS_AS(make_partition({bad, 2, {}}, 1, opts("dirichlet")), DataError);
  }

  TEST_CASE("registry lists built-ins and accepts new partitioners") {
    auto names = partitioner_names();
    for (const char* k : {"iid", "dirichlet", "shards", "quantity", "natural"}) {
      CHECK(std::find(names.begin(), names.end(), k) != names.end());
    }
    register_partitioner("all-on-first",
                         [](const PartitionInput& in, std::size_t n, const PartitionOptions&) {
                           Partition p;
                           p.nodes.resize(n);
                           p.nodes[0].resize(in.labels.size());
                           std::iota(p.nodes[0].begin(), p.nodes[0].end(), std::size_t{0});
                           return p;
                         });
    const std::vector<std::int32_t> labels{0, 1, 1};
    const auto p = make_partition({labels, 2, {}}, 2, opts("all-on-first"));
    CHECK(p.nodes[0].size() == 3);
    CHECK(p.nodes[1].empty());
  }
}
