#pragma once
// Local training step throughput (`rumor bench step`), on random inputs of a given shape.
#include <cstddef>
#include <string>

#include "rumor/train/model.hpp"

namespace rumor::train {

struct StepBench {
  std::string model;
  std::size_t params = 0;
  std::size_t steps = 0;
  double seconds = 0.0;
  double steps_per_s = 0.0;
};

// Times forward + backward + SGD step at `batch` for about `seconds` (after a short
// warm-up) in the calling thread's LibTorch/BLAS settings.
StepBench bench_step(const ModelSpec& spec, const ModelInput& input, std::size_t batch,
                     double seconds);

}  // namespace rumor::train
