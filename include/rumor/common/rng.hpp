#pragma once
// Deterministic random numbers. Anything random that several nodes must agree on is
// derived from (seed, stream ids...) and never sent: Rng::derive(seed, a, b, c) gives
// the same stream on every node.
#include <cstdint>
#include <initializer_list>
#include <limits>

namespace rumor {

// One step of SplitMix64; also a good 64-bit mixer for hashing ids together.
constexpr std::uint64_t splitmix64(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// Mixes a list of 64-bit words into one well-distributed word.
constexpr std::uint64_t mix_words(std::initializer_list<std::uint64_t> words) {
  std::uint64_t h = 0x243f6a8885a308d3ULL;  // arbitrary non-zero start
  for (std::uint64_t w : words) {
    std::uint64_t s = h ^ w;
    h = splitmix64(s);
  }
  return h;
}

// xoshiro256** (Blackman & Vigna): fast, 256-bit state, good statistical quality.
// Satisfies UniformRandomBitGenerator, so it works with <random> distributions.
class Rng {
 public:
  using result_type = std::uint64_t;

  explicit Rng(std::uint64_t seed = 0) { reseed(seed); }

  // A stream determined by seed and up to three ids (e.g. round, sender, purpose).
  static Rng derive(std::uint64_t seed, std::uint64_t a = 0, std::uint64_t b = 0,
                    std::uint64_t c = 0) {
    return Rng(mix_words({seed, a, b, c}));
  }

  void reseed(std::uint64_t seed) {
    std::uint64_t s = seed;
    for (auto& w : s_) w = splitmix64(s);
  }

  static constexpr result_type min() { return 0; }
  static constexpr result_type max() { return std::numeric_limits<result_type>::max(); }

  result_type operator()() {
    const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }

  // Uniform double in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>((*this)() >> 11) * 0x1.0p-53; }
  // Uniform float in [0, 1) with 24 random bits.
  float uniform_float() { return static_cast<float>((*this)() >> 40) * 0x1.0p-24f; }
  // Uniform integer in [0, n), n > 0 (Lemire's multiply-shift, tiny bias irrelevant here).
  std::uint64_t below(std::uint64_t n) {
    __extension__ using U128 = unsigned __int128;
    return static_cast<std::uint64_t>((static_cast<U128>((*this)()) * n) >> 64);
  }

  // State access for checkpoints.
  const std::uint64_t* state() const { return s_; }
  void set_state(const std::uint64_t s[4]) {
    for (int i = 0; i < 4; ++i) s_[i] = s[i];
  }

 private:
  static constexpr std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  std::uint64_t s_[4];
};

}  // namespace rumor
