// The flat parameter buffer against LibTorch itself, and the TorchScript path with a
// model built and saved by this fixture in C++ (no Python needed).
#include <doctest/doctest.h>
#include <torch/script.h>
// LibTorch's logging header defines its own CHECK (a fatal log, not a test assertion):
// give the name back to doctest.
#undef CHECK
#define CHECK(...) DOCTEST_CHECK(__VA_ARGS__)

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <numeric>

#include "rumor/common/error.hpp"
#include "rumor/data/dataset.hpp"
#include "rumor/train/centralized.hpp"
#include "rumor/train/torch_access.hpp"
#include "rumor/train/trainer.hpp"

using namespace rumor;
using namespace rumor::train;
namespace fs = std::filesystem;

namespace {

data::Dataset blobs(std::size_t dim, int classes) {
  data::DatasetOptions o;
  o.train_size = 800;
  o.test_size = 400;
  o.dim = dim;
  o.classes = classes;
  o.separation = 6.0;
  return data::load_dataset("blobs", o);
}

// A two-layer TorchScript model written without Python: parameters registered on a
// fresh jit::Module, forward compiled from TorchScript source.
constexpr const char* kTinyForward = R"JIT(
def forward(self, x):
    h = torch.relu(torch.matmul(x.flatten(1), self.w1) + self.b1)
    return torch.matmul(h, self.w2) + self.b2
)JIT";

std::string save_tiny_torchscript(const fs::path& path, std::int64_t in, std::int64_t hidden,
                                  std::int64_t out, const char* forward = kTinyForward) {
  torch::manual_seed(0);
  torch::jit::Module m("TinyNet");
  m.register_parameter("w1", torch::randn({in, hidden}) / std::sqrt(static_cast<double>(in)),
                       false);
  m.register_parameter("b1", torch::zeros({hidden}), false);
  m.register_parameter("w2", torch::randn({hidden, out}) / std::sqrt(static_cast<double>(hidden)),
                       false);
  m.register_parameter("b2", torch::zeros({out}), false);
  m.define(forward);
  m.save(path.string());
  return path.string();
}

// The ConfigError text Model::create throws for `spec` and `input` ("" when it does not throw).
std::string create_error(const ModelSpec& spec, const ModelInput& input) {
  try {
    Model::create(spec, input, 1);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

std::vector<float> batch(const data::Dataset& ds, std::size_t n) {
  return {ds.train.features.begin(),
          ds.train.features.begin() + static_cast<std::ptrdiff_t>(n * ds.dim)};
}

}  // namespace

TEST_SUITE("train") {
  TEST_CASE("parameters and gradients are views into the flat buffers") {
    for (const std::string name : {"mlp", "cnn", "resnet8"}) {
      CAPTURE(name);
      ModelSpec spec;
      spec.name = name;
      spec.channels = name == "cnn" ? 8 : spec.channels;
      auto m = Model::create(spec, ModelInput{{1, 8, 8}, 5}, 1);
      const float* base = m->params().data();
      const float* gbase = m->grads().data();
      const auto tensors = parameter_tensors(*m);
      REQUIRE(tensors.size() == m->layout().size());
      for (std::size_t i = 0; i < tensors.size(); ++i) {
        CHECK(tensors[i].data_ptr<float>() == base + m->layout()[i].offset);
        CHECK(tensors[i].grad().data_ptr<float>() == gbase + m->layout()[i].offset);
      }
      CHECK(flat_params_tensor(*m).data_ptr<float>() == base);
      // Writing the span changes what the module computes.
      const std::vector<float> x(2 * 64, 0.5f);
      const auto before = m->predict(x);
      for (float& p : m->params()) p *= 0.5f;
      CHECK(m->predict(x) != before);
      // Backward lands in grads(), consistent with autograd on the module's own tensors.
      std::vector<std::int32_t> y{1, 3};
      m->forward_backward(x, y);
      const double gsum = flat_grads_tensor(*m).abs().sum().item<double>();
      CHECK(gsum > 0.0);
      double per_param = 0.0;
      for (const auto& t : parameter_tensors(*m)) per_param += t.grad().abs().sum().item<double>();
      CHECK(per_param == doctest::Approx(gsum));
    }
  }

  TEST_CASE("a step through the module equals the same step on the flat buffer") {
    const auto ds = blobs(12, 4);
    ModelSpec spec;
    spec.hidden = {16, 8};
    for (bool nesterov : {false, true}) {
      CAPTURE(nesterov);
      auto a = Model::create(spec, ModelInput{ds.shape, ds.num_classes}, 9);
      auto b = Model::create(spec, ModelInput{ds.shape, ds.num_classes}, 9);
      // a: torch.optim.SGD on the module's parameter tensors; b: LocalOptimizer on the span.
      auto params_a = parameter_tensors(*a);
      torch::optim::SGD torch_opt(
          params_a,
          torch::optim::SGDOptions(0.05).momentum(0.9).nesterov(nesterov).weight_decay(1e-3));
      OptimizerOptions oo;
      oo.lr = 0.05;
      oo.momentum = 0.9;
      oo.nesterov = nesterov;
      oo.weight_decay = 1e-3;
      LocalOptimizer flat_opt(b->num_params(), oo);
      for (int step = 0; step < 3; ++step) {
        const std::size_t off = static_cast<std::size_t>(step) * 16;
        const std::span<const float> x(ds.train.features.data() + off * ds.dim, 16 * ds.dim);
        const std::span<const std::int32_t> y(ds.train.labels.data() + off, 16);
        // Through the module: autograd on a's own tensors, then torch's optimizer.
        std::vector<std::int64_t> y64(y.begin(), y.end());
        // (torch's zero_grad() would detach the grads, which are views: zero in place.)
        for (auto& t : params_a) t.mutable_grad().zero_();
        auto logits = forward(*a, torch::from_blob(const_cast<float*>(x.data()),
                                                   {16, static_cast<std::int64_t>(ds.dim)}));
        torch::nn::functional::cross_entropy(logits,
                                             torch::from_blob(y64.data(), {16}, torch::kInt64))
            .backward();
        torch_opt.step();
        // On the flat buffer.
        b->forward_backward(x, y);
        flat_opt.step(b->params(), b->grads());
        for (std::size_t i = 0; i < a->num_params(); ++i) {
          REQUIRE(a->params()[i] == doctest::Approx(b->params()[i]).epsilon(1e-5));
        }
      }
      // torch's optimizer kept writing into the flat buffer (parameters still views).
      CHECK(parameter_tensors(*a)[0].data_ptr<float>() == a->params().data());
    }
  }

  TEST_CASE("adam and adamw on a flat buffer take torch.optim's steps") {
    for (const std::string name : {"adam", "adamw"}) {
      CAPTURE(name);
      torch::manual_seed(3);
      auto ref = torch::randn({257});
      std::vector<float> flat(ref.data_ptr<float>(), ref.data_ptr<float>() + 257);
      ref.set_requires_grad(true);
      std::vector<torch::Tensor> params{ref};
      std::unique_ptr<torch::optim::Optimizer> torch_opt;
      if (name == "adam") {
        torch_opt = std::make_unique<torch::optim::Adam>(
            params, torch::optim::AdamOptions(0.01).betas({0.8, 0.99}).eps(1e-6).weight_decay(0.1));
      } else {
        torch_opt = std::make_unique<torch::optim::AdamW>(
            params,
            torch::optim::AdamWOptions(0.01).betas({0.8, 0.99}).eps(1e-6).weight_decay(0.1));
      }
      OptimizerOptions oo;
      oo.name = name;
      oo.lr = 0.01;
      oo.beta1 = 0.8;
      oo.beta2 = 0.99;
      oo.eps = 1e-6;
      oo.weight_decay = 0.1;
      LocalOptimizer mine(flat.size(), oo);
      for (int step = 0; step < 20; ++step) {
        auto g = torch::randn({257});
        ref.mutable_grad() = g.clone();
        torch_opt->step();
        mine.step(flat, std::span<const float>(g.data_ptr<float>(), 257));
        const float* r = ref.data_ptr<float>();
        for (std::size_t i = 0; i < flat.size(); ++i)
          REQUIRE(flat[i] == doctest::Approx(r[i]).epsilon(1e-5));
      }
      // Checkpointed state: both moments, named.
      const auto state = mine.state();
      REQUIRE(state.size() == 2);
      CHECK(state[0].name == "adam_m");
      CHECK(state[1].name == "adam_v");
    }
  }

  TEST_CASE("the hand-written mlp/logreg backward gives autograd's gradients") {
    const auto ds = blobs(12, 4);
    for (const auto& hidden : {std::vector<int>{}, std::vector<int>{16}, std::vector<int>{16, 8}}) {
      CAPTURE(hidden.size());
      ModelSpec spec;
      spec.hidden = hidden;
      auto manual = Model::create(spec, ModelInput{ds.shape, ds.num_classes}, 4);
      auto autograd = Model::create(spec, ModelInput{ds.shape, ds.num_classes}, 4);
      autograd->set_manual_backward(false);
      const std::span<const float> x(ds.train.features.data(), 24 * ds.dim);
      const std::span<const std::int32_t> y(ds.train.labels.data(), 24);
      for (float& g : manual->grads()) g = 123.0f;  // stale values must be overwritten
      const auto a = manual->forward_backward(x, y);
      const auto b = autograd->forward_backward(x, y);
      CHECK(a.loss == doctest::Approx(b.loss).epsilon(1e-5));
      CHECK(a.correct == b.correct);
      CHECK(a.count == 24);
      double norm = 0.0;
      for (std::size_t i = 0; i < manual->num_params(); ++i) {
        REQUIRE(manual->grads()[i] ==
                doctest::Approx(autograd->grads()[i]).epsilon(1e-4).scale(1e-6));
        norm += std::abs(autograd->grads()[i]);
      }
      CHECK(norm > 1e-3);
    }
  }

  TEST_CASE("torchscript model from a C++ fixture trains like a built-in one") {
    const auto ds = blobs(10, 3);
    const fs::path dir =
        fs::temp_directory_path() / ("rumor-test-jit-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    ModelSpec spec;
    spec.name = "torchscript";
    spec.path = save_tiny_torchscript(dir / "tiny.pt", 10, 24, 3);
    auto m = Model::create(spec, ModelInput{ds.shape, ds.num_classes}, 1);
    CHECK(m->num_params() == 10 * 24 + 24 + 24 * 3 + 3);
    // The loaded module's own tensors became views into the flat buffer.
    CHECK(parameter_tensors(*m)[0].data_ptr<float>() == m->params().data());
    // Two loads of the same file are identical: every node starts from the same model.
    auto m2 = Model::create(spec, ModelInput{ds.shape, ds.num_classes}, 2);
    CHECK(std::equal(m->params().begin(), m->params().end(), m2->params().begin()));

    OptimizerOptions oo;
    oo.lr = 0.1;
    oo.momentum = 0.9;
    LocalOptimizer opt(m->num_params(), oo);
    std::vector<std::size_t> all(ds.train.size());
    std::iota(all.begin(), all.end(), std::size_t{0});
    LocalTrainer tr(*m, ds, all, opt, 32, 1, 0);
    const double before = tr.evaluate_test().accuracy;
    for (int i = 0; i < 150; ++i) tr.step();
    const double after = tr.evaluate_test().accuracy;
    CAPTURE(before);
    CHECK(after > 0.9);
    // Copying the buffer into the second instance reproduces the outputs exactly.
    std::copy(m->params().begin(), m->params().end(), m2->params().begin());
    const auto xs = batch(ds, 20);
    CHECK(m->predict(xs) == m2->predict(xs));
    // Saved after training, the file holds the trained values.
    m->save((dir / "trained.pt").string());
    spec.path = (dir / "trained.pt").string();
    auto m3 = Model::create(spec, ModelInput{ds.shape, ds.num_classes}, 3);
    CHECK(std::equal(m->params().begin(), m->params().end(), m3->params().begin()));

    // The centralized baseline runs it the same way.
    CentralizedOptions co;
    co.name = "jit";
    co.dataset = "blobs";
    co.data.train_size = 800;
    co.data.test_size = 400;
    co.data.dim = 10;
    co.data.classes = 3;
    co.data.separation = 6.0;
    co.model.name = "torchscript";
    co.model.path = (dir / "tiny.pt").string();
    co.optimizer.lr = 0.1;
    co.optimizer.momentum = 0.9;
    co.epochs = 5;
    co.output_dir = (dir / "runs").string();
    co.log_to_run_dir = false;
    const auto r = train_centralized(co);
    CHECK(r.test_accuracy > 0.9);
    CHECK(fs::exists(fs::path(r.run_dir) / "model.pt"));
    fs::remove_all(dir);
  }

  TEST_CASE("a torchscript model with the wrong output size is refused") {
    const fs::path dir =
        fs::temp_directory_path() / ("rumor-test-jit-bad-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    ModelSpec spec;
    spec.name = "torchscript";
    spec.path = save_tiny_torchscript(dir / "tiny.pt", 10, 4, 7);
    CHECK_THROWS_AS(Model::create(spec, ModelInput{{10}, 3}, 1),
                    ConfigError);  // 7 logits, 3 classes
    CHECK_THROWS_AS(Model::create(spec, ModelInput{{12}, 7}, 1), ConfigError);  // wrong input size
    const std::string e = create_error(spec, ModelInput{{10}, 3});
    CAPTURE(e);
    CHECK(has(e, "returns shape [2, 7] for input float32 [2, 10], expected [2, 3]"));
    // Logits must be float32 and one tensor.
    spec.path = save_tiny_torchscript(dir / "double.pt", 10, 4, 3, R"JIT(
def forward(self, x):
    return torch.matmul(torch.relu(torch.matmul(x, self.w1) + self.b1), self.w2).double()
)JIT");
    CHECK(has(create_error(spec, ModelInput{{10}, 3}), "returns Double logits, expected float32"));
    spec.path = save_tiny_torchscript(dir / "tuple.pt", 10, 4, 3, R"JIT(
def forward(self, x):
    return (torch.matmul(torch.relu(torch.matmul(x, self.w1) + self.b1), self.w2), x)
)JIT");
    CHECK(has(create_error(spec, ModelInput{{10}, 3}), "returns a Tuple, not a tensor"));
    fs::remove_all(dir);
  }

  TEST_CASE(
      "a torchscript model that fails on the input names the shape fed and the one expected") {
    const fs::path dir =
        fs::temp_directory_path() / ("rumor-test-jit-shape-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    ModelSpec spec;
    spec.name = "torchscript";
    spec.path = save_tiny_torchscript(dir / "tiny.pt", 10, 4, 3);  // takes 10 features
    // Images of 1 x 3 x 4 = 12 values: the module's matmul fails inside the interpreter.
    const std::string e = create_error(spec, ModelInput{{1, 3, 4}, 3});
    CAPTURE(e);
    CHECK(has(e, spec.path));
    CHECK(has(e, "fails on the input rumor feeds it, float32 [2, 1, 3, 4]"));
    CHECK(has(e, "must take x of float32 [batch, 1, 3, 4]"));
    CHECK(has(e, "return float32 logits [batch, 3]"));
    CHECK(has(e, "2x12 and 10x4"));  // LibTorch's cause, one line of it
    CHECK_FALSE(has(e, "Traceback"));
    CHECK_FALSE(has(e, "\n"));
    fs::remove_all(dir);
  }

  TEST_CASE("a missing or unreadable model file is refused by name, saying what to do") {
    const fs::path dir =
        fs::temp_directory_path() / ("rumor-test-jit-file-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    const ModelInput in{{10}, 3};
    ModelSpec spec;
    spec.name = "torchscript";
    spec.path = (dir / "missing" / "net.pt").string();
    std::string e = create_error(spec, in);
    CAPTURE(e);
    CHECK(has(e, "model.path '" + spec.path + "': no such file"));
    CHECK(has(e, "torch.jit.save(torch.jit.script(net), PATH)"));
    CHECK_FALSE(has(e, "fopen"));  // LibTorch's own wording
    spec.path = dir.string();
    CHECK(has(create_error(spec, in), "is a folder"));
    // Bytes that are not a TorchScript archive (e.g. a pickled state_dict).
    spec.path = (dir / "garbage.pt").string();
    std::ofstream(spec.path) << "not a zip archive";
    e = create_error(spec, in);
    CHECK(has(e, "model.path '" + spec.path + "' is not a TorchScript module"));
    CHECK(has(e, "torch.jit.save"));
    CHECK_FALSE(has(e, "Exception raised from"));  // no LibTorch backtrace
    if (::geteuid() != 0) {                        // root reads any file
      spec.path = save_tiny_torchscript(dir / "private.pt", 10, 4, 3);
      fs::permissions(spec.path, fs::perms::none);
      CHECK(has(create_error(spec, in), "cannot be opened for reading"));
    }
    spec.path.clear();
    CHECK(has(create_error(spec, in), "needs model.path"));
    fs::remove_all(dir);
  }
}
