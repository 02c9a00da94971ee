#pragma once
// Internal: a parsed codec spec string, and the factory that builds a chain codec from it.
#include <memory>

#include "rumor/codec/codec.hpp"
#include "stages.hpp"

namespace rumor::codec::detail {

struct ParsedSpec {
  bool ef = false;
  std::shared_ptr<const Sparsifier> sparsifier;  // null: dense
  std::shared_ptr<const ValueCodec> value;       // null: fp32
};

// [sparsifier] -> value codec, optionally under error feedback.
std::shared_ptr<const Codec> build_chain(const ParsedSpec& spec);

}  // namespace rumor::codec::detail
