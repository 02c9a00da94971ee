#pragma once
// Shared helpers for the codec tests.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <span>
#include <vector>

#include "rumor/codec/codec.hpp"
#include "rumor/common/rng.hpp"

namespace rumor::codec::test {

inline std::vector<float> gaussian(std::size_t d, std::uint64_t seed) {
  Rng rng(seed);
  std::normal_distribution<float> n(0.0f, 1.0f);
  std::vector<float> x(d);
  for (auto& v : x) v = n(rng);
  return x;
}

inline double norm2(std::span<const float> x) {
  double s = 0;
  for (float v : x) s += static_cast<double>(v) * v;
  return s;
}

inline double dist2(std::span<const float> a, std::span<const float> b) {
  double s = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double t = static_cast<double>(a[i]) - b[i];
    s += t * t;
  }
  return s;
}

// Encode then decode with a fresh encoder/decoder pair.
inline std::vector<float> roundtrip(const Codec& c, std::span<const float> x,
                                    const CodecContext& ctx = {}, Bytes* wire = nullptr) {
  auto enc = c.make_encoder(x.size());
  auto dec = c.make_decoder(x.size());
  Bytes b;
  enc->encode(x, ctx, b);
  std::vector<float> y(x.size());
  dec->decode(b, ctx, y);
  if (wire) *wire = b;
  return y;
}

}  // namespace rumor::codec::test
