// reference_delta: see rumor/codec/reference_delta.hpp.
#include "rumor/codec/reference_delta.hpp"

#include <cmath>
#include <numbers>
#include <vector>

#include "rumor/common/rng.hpp"

namespace rumor::codec {

double reference_delta(const Codec& codec, std::size_t d) {
  if (d == 0) return 0.0;
  // Fixed stream: the figure is a property of (codec, d), not of a run.
  Rng rng = Rng::derive(0x5eedde17a, d);
  std::vector<float> x(d), sent(d);
  for (std::size_t i = 0; i < d; i += 2) {
    // Box-Muller: two normal values per pair of uniforms (u1 in (0, 1]).
    const double r = std::sqrt(-2.0 * std::log(1.0 - rng.uniform()));
    const double t = 2.0 * std::numbers::pi * rng.uniform();
    x[i] = static_cast<float>(r * std::cos(t));
    if (i + 1 < d) x[i + 1] = static_cast<float>(r * std::sin(t));
  }
  Bytes bytes;
  codec.make_encoder(d)->encode(x, CodecContext{0, 0, 0}, bytes, sent);
  double total = 0, left = 0;
  for (std::size_t i = 0; i < d; ++i) {
    total += static_cast<double>(x[i]) * x[i];
    const double r = static_cast<double>(x[i]) - sent[i];
    left += r * r;
  }
  return total > 0 ? 1.0 - left / total : 0.0;
}

}  // namespace rumor::codec
