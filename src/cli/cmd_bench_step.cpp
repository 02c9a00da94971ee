// rumor bench step: local training steps per second per model.
#include <iomanip>
#include <iostream>

#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "rumor/train/bench.hpp"
#include "rumor/train/model.hpp"

namespace rumor::cli {
namespace {

struct BenchArgs {
  std::vector<std::string> models{"logreg", "mlp", "cnn", "resnet8"};
  std::size_t batch = 32;
  double seconds = 1.0;
  bool json = false;
};

void run_bench_step(const BenchArgs& a) {
  train::set_compute_threads(globals().threads);
  // Fashion-MNIST-shaped inputs: 1 x 28 x 28, 10 classes (mlp is 784-128-10).
  const train::ModelInput input{{1, 28, 28}, 10};
  const std::string blas = train::loaded_blas();
  nlohmann::json models = nlohmann::json::array();
  if (!a.json)
    std::cout << "BLAS: " << blas << "\nthreads: " << globals().threads << ", batch " << a.batch
              << "\n";
  for (const auto& name : a.models) {
    train::ModelSpec spec;
    spec.name = name;
    const auto r = train::bench_step(spec, input, a.batch, a.seconds);
    models.push_back({{"model", name},
                      {"params", r.params},
                      {"steps_per_s", r.steps_per_s},
                      {"steps", r.steps},
                      {"seconds", r.seconds}});
    if (!a.json) {
      std::cout << std::left << std::setw(9) << name << std::right << std::setw(10) << r.params
                << " params  " << std::fixed << std::setprecision(1) << std::setw(9)
                << r.steps_per_s << " steps/s\n"
                << std::defaultfloat;
    }
  }
  if (a.json) {
    std::cout << nlohmann::json{{"blas", blas},
                                {"threads", globals().threads},
                                {"batch", a.batch},
                                {"models", models}}
                     .dump()
              << "\n";
  }
}

}  // namespace

void add_bench_step(CLI::App& bench) {
  static BenchArgs ba;
  auto* step = bench.add_subcommand(
      "step",
      "local training steps per second per model (random Fashion-MNIST-shaped batches)\n"
      "Example: rumor bench step --json --threads 1");
  step->add_option("--models", ba.models, "models to time")->capture_default_str();
  step->add_option("--batch", ba.batch, "batch size")
      ->capture_default_str()
      ->check(CLI::Range(1, 65536));
  step->add_option("--seconds", ba.seconds, "time per model")
      ->capture_default_str()
      ->check(CLI::Range(0.01, 600.0));
  step->add_flag("--json", ba.json, "print {\"blas\", \"models\": [{\"model\", \"steps_per_s\"}]}");
  step->callback([] { run_bench_step(ba); });
}

}  // namespace rumor::cli
