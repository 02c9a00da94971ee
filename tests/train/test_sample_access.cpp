// LocalTrainer's sample access for data-sharing methods (qdata): draws, per-sample losses,
// gradients on given samples.
#include <doctest/doctest.h>

#include <cmath>
#include <numeric>
#include <set>

#include "rumor/data/dataset.hpp"
#include "rumor/train/model.hpp"
#include "rumor/train/trainer.hpp"

using namespace rumor;
using namespace rumor::train;

TEST_SUITE("train") {
  TEST_CASE(
      "trainer draws distinct shard samples and per-sample losses average to the batch loss") {
    data::DatasetOptions o;
    o.train_size = 400;
    o.test_size = 50;
    o.dim = 6;
    o.classes = 3;
    const auto ds = data::load_dataset("blobs", o);
    ModelSpec spec;
    spec.hidden = {16};
    auto model = Model::create(spec, {ds.shape, ds.num_classes}, 3);
    LocalOptimizer opt(model->num_params(), {});
    std::vector<std::size_t> shard;
    for (std::size_t i = 0; i < 400; i += 4) shard.push_back(i);  // 100 samples
    LocalTrainer t(*model, ds, shard, opt, 8, 1, 0);
    std::vector<float> f, f2;
    std::vector<std::int32_t> l, l2;
    t.draw_samples(40, 7, f, l);
    t.draw_samples(40, 7, f2, l2);
    REQUIRE(l.size() == 40);
    CHECK(f == f2);  // deterministic in (seed, node, stream)
    std::set<std::vector<float>> rows;
    for (std::size_t i = 0; i < 40; ++i) {
      std::vector<float> row(f.begin() + static_cast<std::ptrdiff_t>(i * 6),
                             f.begin() + static_cast<std::ptrdiff_t>((i + 1) * 6));
      bool in_shard = false;
      for (std::size_t s : shard)
        if (std::equal(row.begin(), row.end(),
                       ds.train.features.begin() + static_cast<std::ptrdiff_t>(s * 6)))
          in_shard = ds.train.labels[s] == l[i];
      CHECK(in_shard);
      rows.insert(row);
    }
    CHECK(rows.size() == 40);  // distinct
    std::vector<float> all_f;
    std::vector<std::int32_t> all_l;
    t.draw_samples(1000, 8, all_f, all_l);
    CHECK(all_l.size() == shard.size());  // capped at the shard
    const auto losses = t.sample_losses(f, l);
    const double mean = std::accumulate(losses.begin(), losses.end(), 0.0) / 40.0;
    const auto st = t.gradient_on(f, l);
    CHECK(mean == doctest::Approx(st.loss).epsilon(1e-4));
    for (float x : losses) CHECK(x >= 0.0f);
  }
}
