// The process-wide data set cache `rumor launch` fills before it forks the peers.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "rumor/config/config.hpp"
#include "rumor/run/dataset_cache.hpp"
#include "rumor/run/setup.hpp"

using namespace rumor;

namespace {

config::Config blobs(const std::vector<std::string>& sets = {}) {
  const nlohmann::json j = {
      {"topology", {{"gen", "ring"}, {"nodes", 4}}},
      {"data", {{"dataset", "blobs"}, {"train_size", 300}, {"test_size", 50}}}};
  return config::Config::from_json(j, "cache-test", ".", sets);
}

}  // namespace

TEST_SUITE("run") {
  TEST_CASE("dataset cache: nothing is kept unless asked, a kept data set is found again") {
    run::DatasetCache::clear();
    const auto a = run::load_data(blobs());
    const auto b = run::load_data(blobs());
    CHECK(a.get() != b.get());  // load_data alone keeps nothing
    run::keep_data_loaded(blobs());
    const auto c = run::load_data(blobs());
    const auto d = run::load_data(blobs());
    CHECK(c.get() == d.get());
    // The same bytes as a fresh load.
    CHECK(c->train.features == a->train.features);
    CHECK(c->train.labels == a->train.labels);
    CHECK(c->test.features == a->test.features);
    run::DatasetCache::clear();
    CHECK(run::load_data(blobs()).get() != c.get());
  }

  TEST_CASE("dataset cache: every option that changes the bytes is part of the key") {
    run::DatasetCache::clear();
    run::keep_data_loaded(blobs());
    const auto kept = run::load_data(blobs());
    for (const char* set : {"seed=2", "data.train_size=301", "data.normalize=false",
                            "data.separation=2.5", "data.classes=3", "eval.test_samples=10"}) {
      CAPTURE(set);
      const auto other = run::load_data(blobs({set}));
      CHECK(other.get() != kept.get());
    }
    // eval.test_samples is applied to what is kept: a cached load keeps the cut.
    run::keep_data_loaded(blobs({"eval.test_samples=10"}));
    CHECK(run::load_data(blobs({"eval.test_samples=10"}))->test.size() == 10);
    run::DatasetCache::clear();
  }

  TEST_CASE("dataset key: options that differ give different keys") {
    data::DatasetOptions o;
    const auto base = run::dataset_key("blobs", o, 0);
    CHECK(run::dataset_key("blobs", o, 0) == base);
    CHECK(run::dataset_key("blobs", o, 5) != base);
    CHECK(run::dataset_key("csv:a", o, 0) != run::dataset_key("csv:b", o, 0));
    auto p = o;
    p.test_fraction = 0.25;
    CHECK(run::dataset_key("blobs", p, 0) != base);
    p = o;
    p.data_dir = "x";
    CHECK(run::dataset_key("blobs", p, 0) != base);
    p = o;
    p.users = 31;
    CHECK(run::dataset_key("blobs", p, 0) != base);
  }
}
