#pragma once
// The codec fuzz targets: one per registered codec stage (rumor::codec::codec_stages()), each
// decoding the stage's example specs with the receiver's dimension fixed. The first input
// byte picks the example, the rest is the payload.
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "rumor/codec/codec.hpp"

namespace rumor::codec::fuzz {

struct Target {
  std::string name;                // the stage's name
  std::vector<std::string> specs;  // its examples
  std::size_t dim;
};

// Value codecs are fuzzed at an odd length (partial chunks and bit padding); sparsifiers and
// sketches at a length that keeps several coordinates.
inline std::vector<Target> targets() {
  std::vector<Target> out;
  for (auto& s : codec_stages()) out.push_back({s.name, s.examples, s.value_codec ? 257u : 1000u});
  return out;
}

inline std::vector<Target>::const_iterator find_target(const std::vector<Target>& all,
                                                       std::string_view name) {
  for (auto it = all.begin(); it != all.end(); ++it) {
    if (it->name == name) return it;
  }
  return all.end();
}

}  // namespace rumor::codec::fuzz
