// fp32 | fp16 | bf16: plain casts (fp16 and bf16 round to nearest even).
#include <cstring>

#include "simd.hpp"
#include "stage_entry.hpp"

namespace rumor::codec::detail {
namespace {

// Plain casts: fp32 (exact), fp16 and bf16 (round to nearest even).
template <ValueKind K>
class CastCodec final : public ValueCodec {
 public:
  static constexpr std::size_t kWidth = K == ValueKind::kFp32 ? 4 : 2;
  std::string name() const override {
    return K == ValueKind::kFp32 ? "fp32" : K == ValueKind::kFp16 ? "fp16" : "bf16";
  }
  std::size_t size(std::size_t n) const override { return 5 + kWidth * n; }
  void encode(std::span<const float> v, Rng&, std::uint8_t* out) const override {
    Writer w(out);
    w.u8(static_cast<std::uint8_t>(K));
    w.u32(checked_n(v.size()));
    std::uint8_t* p = w.pos();
    if constexpr (K == ValueKind::kFp32) {
      std::memcpy(p, v.data(), v.size() * 4);
    } else if constexpr (K == ValueKind::kFp16) {
      simd::to_half(v.data(), v.size(), p);
    } else {
      simd::to_bf16(v.data(), v.size(), p);
    }
  }
  const std::uint8_t* view(Reader& r, std::size_t n) const override {
    if constexpr (K == ValueKind::kFp32) {
      r.expect_u8(static_cast<std::uint8_t>(K), "value codec tag");
      r.expect_u32(checked_n(n), "value count");
      return r.take(4 * n, "values");
    } else {
      return nullptr;
    }
  }
  void decode(Reader& r, std::span<float> out) const override {
    r.expect_u8(static_cast<std::uint8_t>(K), "value codec tag");
    r.expect_u32(checked_n(out.size()), "value count");
    const std::uint8_t* p = r.take(kWidth * out.size(), "values");
    if constexpr (K == ValueKind::kFp32) {
      std::memcpy(out.data(), p, out.size() * 4);
    } else if constexpr (K == ValueKind::kFp16) {
      simd::from_half(p, out.size(), out.data());
    } else {
      simd::from_bf16(p, out.size(), out.data());
    }
  }
  bool unbiased() const override { return K == ValueKind::kFp32; }
  bool contractive() const override { return true; }
  double delta(std::size_t) const override {
    // Squared relative rounding error bounds (unit roundoff 2^-11 and 2^-8), with margin.
    return K == ValueKind::kFp32 ? 1.0 : K == ValueKind::kFp16 ? 1.0 - 0x1p-20 : 1.0 - 0x1p-14;
  }
  bool linear() const override { return K == ValueKind::kFp32; }
};

template <ValueKind K>
StageBuild build(const StageArgs&) {
  return {std::make_shared<CastCodec<K>>(), nullptr, "", nullptr};
}

}  // namespace

std::unique_ptr<ValueCodec> make_fp32() {
  return std::make_unique<CastCodec<ValueKind::kFp32>>();
}

StageEntry fp32_stage() {
  return {"fp32",
          StageRole::kValue,
          "fp32",
          "plain fp32 (exact, linear: payloads can be merged)",
          0,
          {},
          {},
          {"fp32", "ef|fp32"},
          build<ValueKind::kFp32>};
}
StageEntry fp16_stage() {
  return {
      "fp16",   StageRole::kValue,      "fp16", "cast to fp16, round to nearest even", 0, {}, {},
      {"fp16"}, build<ValueKind::kFp16>};
}
StageEntry bf16_stage() {
  return {
      "bf16",   StageRole::kValue,      "bf16", "cast to bf16, round to nearest even", 0, {}, {},
      {"bf16"}, build<ValueKind::kBf16>};
}

}  // namespace rumor::codec::detail
