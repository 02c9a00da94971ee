#include "rumor/train/bench.hpp"

#include <chrono>
#include <vector>

#include "rumor/common/rng.hpp"
#include "rumor/train/optimizer.hpp"

namespace rumor::train {

StepBench bench_step(const ModelSpec& spec, const ModelInput& input, std::size_t batch,
                     double seconds) {
  auto model = Model::create(spec, input, 1);
  std::size_t dim = 1;
  for (auto v : input.shape) dim *= static_cast<std::size_t>(v);
  Rng rng(7);
  std::vector<float> x(batch * dim);
  for (float& v : x) v = rng.uniform_float() * 2.0f - 1.0f;
  std::vector<std::int32_t> y(batch);
  for (auto& l : y)
    l = static_cast<std::int32_t>(rng.below(static_cast<std::uint64_t>(input.num_classes)));
  OptimizerOptions oo;
  oo.lr = 0.01;
  oo.momentum = 0.9;
  LocalOptimizer opt(model->num_params(), oo);
  auto one = [&] {
    model->forward_backward(x, y);
    opt.step(model->params(), model->grads());
  };
  for (int i = 0; i < 10; ++i) one();  // warm-up: allocator, BLAS buffers
  StepBench r;
  r.model = spec.name;
  r.params = model->num_params();
  const auto t0 = std::chrono::steady_clock::now();
  double elapsed = 0.0;
  while (elapsed < seconds || r.steps < 5) {
    for (int i = 0; i < 5; ++i) one();
    r.steps += 5;
    elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  r.seconds = elapsed;
  r.steps_per_s = static_cast<double>(r.steps) / elapsed;
  return r;
}

}  // namespace rumor::train
