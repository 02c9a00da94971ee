#pragma once
// Arithmetic on fp32 values read in place from a received payload (Decoder::raw_values):
// little-endian floats at any alignment, never copied out first. Every function gives the
// same bits as decoding into a float vector and doing the same arithmetic on it element by
// element (each product and sum rounded to fp32, in the order written below).
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

namespace rumor::codec {

// Value i of raw fp32 bytes.
inline float raw_at(std::span<const std::uint8_t> raw, std::size_t i) {
  float v;
  std::memcpy(&v, raw.data() + 4 * i, 4);
  return v;
}

// acc[i] += w * x[i] for every i (acc[i] += x[i] when w is 1: the same bits); x holds
// acc.size() values. Throws CodecError when it does not.
void add_raw(std::span<float> acc, std::span<const std::uint8_t> x, float w = 1.0f);

// acc[i] = scale * acc[i], then acc[i] += ws[j] * xs[j][i] for j = 0, 1, ... in turn: what
// scaling acc and then add_raw of each xs[j] gives, bit for bit, in one pass over acc (a
// chunk at a time, small enough to stay in the L1 cache while every x is added to it).
void mix_raw(std::span<float> acc, float scale, std::span<const std::span<const std::uint8_t>> xs,
             std::span<const float> ws);

}  // namespace rumor::codec
