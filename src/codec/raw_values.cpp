#include "rumor/codec/raw_values.hpp"

#include <algorithm>
#include <string>

#include "rumor/common/error.hpp"

namespace rumor::codec {
namespace {

void check_length(std::size_t floats, std::size_t bytes) {
  if (bytes != 4 * floats)
    throw CodecError("raw fp32 values: " + std::to_string(bytes) + " bytes for " +
                     std::to_string(floats) + " floats (expected " + std::to_string(4 * floats) +
                     ")");
}

// The loops below are plain so the compiler vectorises them (unaligned loads; no fused
// multiply-add, which would change the bits: the build targets generic x86-64).
void add_unchecked(float* acc, std::size_t n, const std::uint8_t* x, float w) {
  if (w == 1.0f) {
    for (std::size_t i = 0; i < n; ++i) {
      float v;
      std::memcpy(&v, x + 4 * i, 4);
      acc[i] += v;
    }
    return;
  }
  for (std::size_t i = 0; i < n; ++i) {
    float v;
    std::memcpy(&v, x + 4 * i, 4);
    acc[i] += w * v;
  }
}

// acc[i] = scale * acc[i] + w0 * x0[i] (+ w1 * x1[i] when x1 is given), evaluated left to
// right: the scaling and add_unchecked of x0 then of x1, bit for bit (w * v is v when w is
// 1), with acc loaded and stored once instead of three times.
void scale_add2(float* acc, std::size_t n, float scale, const std::uint8_t* x0, float w0,
                const std::uint8_t* x1, float w1) {
  if (!x1) {
    for (std::size_t i = 0; i < n; ++i) {
      float v0;
      std::memcpy(&v0, x0 + 4 * i, 4);
      acc[i] = acc[i] * scale + w0 * v0;
    }
    return;
  }
  for (std::size_t i = 0; i < n; ++i) {
    float v0, v1;
    std::memcpy(&v0, x0 + 4 * i, 4);
    std::memcpy(&v1, x1 + 4 * i, 4);
    acc[i] = acc[i] * scale + w0 * v0 + w1 * v1;
  }
}

}  // namespace

void add_raw(std::span<float> acc, std::span<const std::uint8_t> x, float w) {
  check_length(acc.size(), x.size());
  add_unchecked(acc.data(), acc.size(), x.data(), w);
}

void mix_raw(std::span<float> acc, float scale, std::span<const std::span<const std::uint8_t>> xs,
             std::span<const float> ws) {
  if (ws.size() != xs.size())
    throw CodecError("mix of raw fp32 values: " + std::to_string(xs.size()) + " inputs and " +
                     std::to_string(ws.size()) + " weights");
  for (const auto& x : xs) check_length(acc.size(), x.size());
  constexpr std::size_t kChunk = 2048;  // 8 KB of acc: stays in L1 while every x is added
  const std::size_t first = std::min<std::size_t>(xs.size(), 2);
  for (std::size_t lo = 0; lo < acc.size(); lo += kChunk) {
    const std::size_t n = std::min(kChunk, acc.size() - lo);
    float* a = acc.data() + lo;
    if (first == 2)
      scale_add2(a, n, scale, xs[0].data() + 4 * lo, ws[0], xs[1].data() + 4 * lo, ws[1]);
    else if (first == 1)
      scale_add2(a, n, scale, xs[0].data() + 4 * lo, ws[0], nullptr, 0.0f);
    else
      for (std::size_t i = 0; i < n; ++i) a[i] *= scale;
    for (std::size_t j = first; j < xs.size(); ++j)
      add_unchecked(a, n, xs[j].data() + 4 * lo, ws[j]);
  }
}

}  // namespace rumor::codec
