#include "bench_codecs_torch.hpp"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <tuple>
#include <vector>

#include "bench_util.hpp"

namespace rumor::cli::bench_torch {
namespace {

using Clock = std::chrono::steady_clock;

torch::Tensor wrap(std::span<const float> x) {
  return torch::from_blob(const_cast<float*>(x.data()), {static_cast<std::int64_t>(x.size())},
                          torch::kFloat32);
}

}  // namespace

void use_one_thread() {
  torch::set_num_threads(1);
  try {
    torch::set_num_interop_threads(1);
  } catch (const std::exception&) {
    // Already set once in this process: harmless for a benchmark.
  }
}

Timing topk(std::span<const float> x, std::size_t k, int repeats) {
  torch::NoGradGuard no_grad;
  const torch::Tensor t = wrap(x);
  Timing out;
  torch::Tensor idx, vals;
  out.encode = time_median(repeats, [&] {
    auto res = torch::topk(t.abs(), static_cast<std::int64_t>(k), 0, true, false);
    idx = std::get<1>(res);
    vals = t.index_select(0, idx);  // the signed values a top-k payload carries
  });
  const torch::Tensor kept = torch::zeros_like(t).index_put_({idx}, t.index({idx}));
  out.rel_error = ((kept - t).norm() / t.norm()).item<double>();
  return out;
}

Timing minmax8(std::span<const float> x, int repeats) {
  torch::NoGradGuard no_grad;
  const torch::Tensor t = wrap(x);
  Timing out;
  torch::Tensor q, lo, scale;
  out.encode = time_median(repeats, [&] {
    lo = t.min();
    scale = (t.max() - lo).clamp_min(1e-30) / 255.0;
    q = ((t - lo) / scale).round_().to(torch::kUInt8);
  });
  torch::Tensor y;
  out.decode = time_median(repeats, [&] { y = q.to(torch::kFloat32).mul_(scale).add_(lo); });
  out.rel_error = ((y - t).norm() / t.norm()).item<double>();
  return out;
}

Timing cast16(std::span<const float> x, bool bf16, int repeats) {
  torch::NoGradGuard no_grad;
  const torch::Tensor t = wrap(x);
  Timing out;
  torch::Tensor h, y;
  out.encode = time_median(repeats, [&] { h = t.to(bf16 ? torch::kBFloat16 : torch::kHalf); });
  out.decode = time_median(repeats, [&] { y = h.to(torch::kFloat32); });
  out.rel_error = ((y - t).norm() / t.norm()).item<double>();
  return out;
}

}  // namespace rumor::cli::bench_torch
