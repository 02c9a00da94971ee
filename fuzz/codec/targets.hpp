#pragma once
// The codec fuzz targets: one decoder each, with the receiver's dimension fixed.
#include <cstddef>
#include <string_view>

namespace rumor::codec::fuzz {

struct Target {
  std::string_view name;
  std::string_view spec;
  std::size_t dim;
};

inline constexpr Target kTargets[] = {
    {"fp32", "fp32", 257},
    {"fp16", "fp16", 257},
    {"bf16", "bf16", 257},
    {"qsgd", "qsgd:3:biased:chunk=64", 257},
    {"sign", "sign:chunk=64", 257},
    {"topk", "topk:0.05", 1000},
    {"topk_qsgd", "topk:0.05|qsgd:2:biased", 1000},
    {"topk_sign", "topk:0.05|sign:chunk=16", 1000},
    {"randk", "randk:0.1:unbiased|fp16", 1000},
    {"sketch", "sketch:5:40:10", 1000},
};

inline const Target* find_target(std::string_view name) {
  for (const auto& t : kTargets) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

}  // namespace rumor::codec::fuzz
