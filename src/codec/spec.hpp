#pragma once
// Internal: a parsed codec spec string, and the factory that builds a Codec from it.
#include <cstdint>
#include <memory>
#include <string>

#include "rumor/codec/codec.hpp"
#include "stages.hpp"

namespace rumor::codec::detail {

// A ratio of d (ratio > 0) or a count.
struct Amount {
  double ratio = 0.0;
  std::uint64_t count = 0;
  std::size_t resolve(std::size_t d) const;  // in [1, d] for k; callers clamp as needed
  std::string str() const;
};

enum class Sparsifier { kNone, kTopk, kRandk };

struct ParsedSpec {
  bool ef = false;
  Sparsifier sparsifier = Sparsifier::kNone;
  Amount k;
  bool randk_unbiased = false;
  std::shared_ptr<const ValueCodec> value;  // null: fp32
  bool sketch = false;
  std::uint32_t rows = 5;
  Amount cols{0.002, 0};  // default: 5 x (d / 500) table, K = d / 1000 (see codec.hpp)
  Amount heavy{0.001, 0};
};

std::shared_ptr<const Codec> build_codec(const ParsedSpec& spec);

}  // namespace rumor::codec::detail
