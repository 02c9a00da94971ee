#pragma once
// LibTorch baselines for `rumor bench codecs`, kept apart so the codec library needs no Torch.
#include <cstddef>
#include <span>

namespace rumor::cli::bench_torch {

struct Timing {
  double encode_s = 0;      // median seconds
  double decode_s = 0;      // median seconds (0 when not applicable)
  double encode_cpu_s = 0;  // the same, in this thread's CPU time
  double decode_cpu_s = 0;
  double rel_error = 0;
};

// Limits LibTorch intra-op and inter-op parallelism to one thread.
void use_one_thread();
// torch::topk(|x|, k, unsorted) on a CPU tensor, then index_select of the values at its
// indices, median of `repeats` runs.
Timing topk(std::span<const float> x, std::size_t k, int repeats);
// 8-bit min-max quantization written with tensor ops: q = round((x - min) / scale) as uint8.
Timing minmax8(std::span<const float> x, int repeats);

}  // namespace rumor::cli::bench_torch
