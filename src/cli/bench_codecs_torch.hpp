#pragma once
// LibTorch baselines for `rumor bench codecs`, kept apart so the codec library needs no Torch.
#include <cstddef>
#include <span>

#include "bench_util.hpp"

namespace rumor::cli::bench_torch {

struct Timing {
  MedianTimes encode;
  MedianTimes decode;  // all 0 when not applicable
  double rel_error = 0;
};

// Limits LibTorch intra-op and inter-op parallelism to one thread.
void use_one_thread();
// torch::topk(|x|, k, unsorted) on a CPU tensor, then index_select of the values at its
// indices, median of `repeats` runs.
Timing topk(std::span<const float> x, std::size_t k, int repeats);
// 8-bit min-max quantization written with tensor ops: q = round((x - min) / scale) as uint8.
Timing minmax8(std::span<const float> x, int repeats);
// LibTorch's own half-precision casts, x.to(kHalf) or x.to(kBFloat16) and back: what the
// fp16 and bf16 codecs do.
Timing cast16(std::span<const float> x, bool bf16, int repeats);

}  // namespace rumor::cli::bench_torch
