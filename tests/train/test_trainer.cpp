// Trainer, model registry and centralized baseline through the Torch-free headers.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <set>

#include "rumor/common/error.hpp"
#include "rumor/data/dataset.hpp"
#include "rumor/train/centralized.hpp"
#include "rumor/train/model.hpp"
#include "rumor/train/trainer.hpp"

using namespace rumor;
using namespace rumor::train;
namespace fs = std::filesystem;

namespace {

data::Dataset small_blobs(std::size_t dim = 8) {
  data::DatasetOptions o;
  o.train_size = 600;
  o.test_size = 300;
  o.dim = dim;
  o.classes = 4;
  o.separation = 6.0;
  return data::load_dataset("blobs", o);
}

std::vector<std::size_t> iota_n(std::size_t n) {
  std::vector<std::size_t> v(n);
  std::iota(v.begin(), v.end(), std::size_t{0});
  return v;
}

}  // namespace

TEST_SUITE("train") {
  TEST_CASE("batch sampler: deterministic per (seed, node), each sample once per epoch") {
    std::vector<std::size_t> shard{3, 5, 7, 11, 13, 17, 19, 23, 29, 31};
    BatchSampler a(shard, 3, 42, 1), b(shard, 3, 42, 1), c(shard, 3, 42, 2);
    std::multiset<std::size_t> epoch;
    bool differs = false;
    for (int i = 0; i < 3; ++i) {  // 3 batches of 3 = one epoch (last 1 dropped)
      const auto ba = a.next();
      CHECK(ba == b.next());
      differs |= ba != c.next();
      epoch.insert(ba.begin(), ba.end());
    }
    CHECK(differs);
    CHECK(epoch.size() == 9);
    CHECK(std::set<std::size_t>(epoch.begin(), epoch.end()).size() == 9);
    CHECK(a.epoch() == 0);
    a.next();
    CHECK(a.epoch() == 1);
    CHECK_THROWS_AS(BatchSampler({}, 3, 1, 0), DataError);
  }

  TEST_CASE("models: same seed same parameters, other seed others, registry errors") {
    const ModelInput in{{1, 8, 8}, 10};
    for (const std::string name : {"logreg", "mlp", "cnn", "resnet8"}) {
      CAPTURE(name);
      ModelSpec spec;
      spec.name = name;
      spec.channels = name == "cnn" ? 8 : spec.channels;
      auto a = Model::create(spec, in, 5);
      auto b = Model::create(spec, in, 5);
      auto c = Model::create(spec, in, 6);
      REQUIRE(a->num_params() > 0);
      CHECK(std::equal(a->params().begin(), a->params().end(), b->params().begin()));
      CHECK(!std::equal(a->params().begin(), a->params().end(), c->params().begin()));
      std::size_t total = 0;
      for (const auto& s : a->layout()) {
        CHECK(s.offset == total);
        total += s.size;
      }
      CHECK(total == a->num_params());
    }
    ModelSpec mlp;
    mlp.hidden = {16, 8};
    auto m = Model::create(mlp, ModelInput{{20}, 3}, 1);
    CHECK(m->num_params() == (20 * 16 + 16) + (16 * 8 + 8) + (8 * 3 + 3));
    ModelSpec bad;
    bad.name = "transformer";
    CHECK_THROWS_AS(Model::create(bad, in, 1), ConfigError);
    bad.name = "cnn";  // needs images
    CHECK_THROWS_AS(Model::create(bad, ModelInput{{20}, 3}, 1), ConfigError);
    bad.norm = "batch";
    CHECK_THROWS_AS(Model::create(bad, in, 1), ConfigError);
    bad = {};
    bad.name = "torchscript";
    bad.path = "/nonexistent/model.pt";
    CHECK_THROWS_AS(Model::create(bad, in, 1), ConfigError);
  }

  TEST_CASE("a buffer copied to another model instance gives identical outputs") {
    const auto ds = small_blobs();
    ModelSpec spec;
    spec.hidden = {32};
    auto a = Model::create(spec, ModelInput{ds.shape, ds.num_classes}, 1);
    auto b = Model::create(spec, ModelInput{ds.shape, ds.num_classes}, 2);
    // Train a a little so that its parameters are not just an initialisation.
    OptimizerOptions oo;
    oo.lr = 0.05;
    LocalOptimizer opt(a->num_params(), oo);
    LocalTrainer tr(*a, ds, iota_n(ds.train.size()), opt, 16, 1, 0);
    for (int i = 0; i < 20; ++i) tr.step();
    const std::span<const float> test(ds.test.features.data(), 50 * ds.dim);
    CHECK(a->predict(test) != b->predict(test));
    std::copy(a->params().begin(), a->params().end(), b->params().begin());
    CHECK(a->predict(test) == b->predict(test));
    // Through a file: save() then load() into a third instance.
    const fs::path file =
        fs::temp_directory_path() / ("rumor-test-model-" + std::to_string(::getpid()) + ".pt");
    a->save(file.string());
    auto c = Model::create(spec, ModelInput{ds.shape, ds.num_classes}, 3);
    c->load(file.string());
    CHECK(std::equal(a->params().begin(), a->params().end(), c->params().begin()));
    ModelSpec other;
    other.hidden = {4};
    auto d = Model::create(other, ModelInput{ds.shape, ds.num_classes}, 3);
    CHECK_THROWS_AS(d->load(file.string()), Error);
    CHECK_THROWS_AS(c->load("/nonexistent/model.pt"), Error);
    fs::remove(file);
  }

  TEST_CASE("local trainer learns separable blobs, deterministic from the seed") {
    const auto ds = small_blobs();
    auto run = [&](std::uint64_t seed) {
      ModelSpec spec;
      spec.name = "logreg";
      auto m = Model::create(spec, ModelInput{ds.shape, ds.num_classes}, seed);
      OptimizerOptions oo;
      oo.lr = 0.1;
      oo.momentum = 0.9;
      LocalOptimizer opt(m->num_params(), oo);
      LocalTrainer tr(*m, ds, iota_n(ds.train.size()), opt, 32, seed, 0);
      const double before = tr.evaluate_test().accuracy;
      for (int i = 0; i < 100; ++i) tr.step();
      const auto after = tr.evaluate_test();
      return std::make_tuple(before, after.accuracy,
                             std::vector<float>(m->params().begin(), m->params().end()));
    };
    const auto [before, after, params] = run(3);
    CAPTURE(before);
    CHECK(after > 0.9);
    CHECK(after > before + 0.2);
    CHECK(std::get<2>(run(3)) == params);
  }

  TEST_CASE("train_centralized writes metrics lines and a model") {
    const fs::path dir =
        fs::temp_directory_path() / ("rumor-test-train-" + std::to_string(::getpid()));
    fs::remove_all(dir);
    CentralizedOptions o;
    o.name = "blobs";
    o.dataset = "blobs";
    o.data.train_size = 400;
    o.data.test_size = 200;
    o.data.dim = 6;
    o.data.classes = 3;
    o.data.separation = 6.0;
    o.model.name = "mlp";
    o.model.hidden = {16};
    o.optimizer.lr = 0.1;
    o.batch_size = 20;
    o.epochs = 3;  // 20 steps per epoch -> 60 steps
    o.local_steps = 2;
    o.eval_every = 10;
    o.output_dir = dir.string();
    o.log_to_run_dir = false;
    std::size_t lines = 0;
    const auto r = train_centralized(o, [&](const std::string&) { ++lines; });
    CHECK(r.steps == 60);
    CHECK(r.rounds == 30);
    CHECK(lines == 30);
    CHECK(r.test_accuracy > 0.85);
    CHECK(fs::exists(fs::path(r.run_dir) / "model.pt"));
    CHECK(fs::exists(fs::path(r.run_dir) / "config.json"));
    std::ifstream in(fs::path(r.run_dir) / "node-0.jsonl");
    std::string line;
    std::size_t n = 0, evals = 0;
    while (std::getline(in, line)) {
      const auto j = nlohmann::json::parse(line);
      ++n;
      CHECK(j["node"] == 0);
      CHECK(j["round"] == n - 1);  // 0-based like decentralized runs
      CHECK(j["step"] == 2 * n);
      CHECK(j.contains("loss"));
      CHECK(j.contains("train_acc"));
      CHECK(j.contains("time_s"));
      if (j.contains("test_acc")) {
        ++evals;
        CHECK(j["test_acc"].get<double>() <= 1.0);
      }
    }
    CHECK(n == 30);
    CHECK(evals == 3);  // rounds 10, 20, 30
    fs::remove_all(dir);
  }

  TEST_CASE("train_centralized matches n peers' samples per round, and says which it did") {
    const fs::path dir =
        fs::temp_directory_path() / ("rumor-test-per-round-" + std::to_string(::getpid()));
    fs::remove_all(dir);
    CentralizedOptions o;
    o.dataset = "blobs";
    o.data.train_size = 400;
    o.data.test_size = 50;
    o.data.dim = 4;
    o.model.name = "logreg";
    o.batch_size = 10;
    o.local_steps = 2;
    o.rounds = 3;
    o.nodes = 4;
    o.output_dir = dir.string();
    o.log_to_run_dir = false;
    o.save_model = false;
    struct Case {
      const char* per_round;
      std::size_t batch, steps_per_round;
    };
    for (const Case c :
         {Case{"batch", 10, 2}, Case{"nodes_batch", 40, 2}, Case{"nodes_steps", 10, 8}}) {
      CAPTURE(c.per_round);
      o.per_round = c.per_round;
      o.run_id = std::string("run-") + c.per_round;
      const auto r = train_centralized(o);
      CHECK(r.batch == c.batch);
      CHECK(r.steps_per_round == c.steps_per_round);
      CHECK(r.steps == 3 * c.steps_per_round);
      const auto s = nlohmann::json::parse(std::ifstream(fs::path(r.run_dir) / "summary.json"));
      CHECK(s["per_round"] == c.per_round);
      CHECK(s["samples_per_round"] == c.batch * c.steps_per_round);
      CHECK(s["nodes_matched"] == 4);
    }
    o.per_round = "everything";
    CHECK_THROWS_WITH_AS(train_centralized(o),
                         doctest::Contains("valid: nodes_batch, nodes_steps, batch"), ConfigError);
    fs::remove_all(dir);
  }
}

TEST_SUITE("train") {
  TEST_CASE("the loaded BLAS computes sgemm correctly (the kernels rumor may force are checked)") {
    CHECK(rumor::train::blas_self_check());
  }
}
