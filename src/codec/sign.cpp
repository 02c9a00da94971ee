// sign[:chunk=N]: scaled sign, one bit per value and one fp32 scale per chunk.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>

#include "simd.hpp"
#include "stage_entry.hpp"

namespace rumor::codec::detail {
namespace {

// Scaled sign: one bit per value (1 = negative) and one scale ||x||_1 / c per chunk of c.
class SignCodec final : public ValueCodec {
 public:
  explicit SignCodec(std::uint32_t chunk) : chunk_(chunk) {}
  std::string name() const override {
    return chunk_ == 1024 ? "sign" : "sign:chunk=" + std::to_string(chunk_);
  }
  std::size_t size(std::size_t n) const override { return 9 + 4 * chunks(n, chunk_) + (n + 7) / 8; }
  void encode(std::span<const float> v, Rng&, std::uint8_t* out) const override {
    const std::size_t n = v.size();
    Writer w(out);
    w.u8(static_cast<std::uint8_t>(ValueKind::kSign));
    w.u32(checked_n(n));
    w.u32(chunk_);
    const std::size_t nc = chunks(n, chunk_);
    for (std::size_t c = 0; c < nc; ++c) {
      const std::size_t lo = c * chunk_;
      const std::size_t len = std::min<std::size_t>(chunk_, n - lo);
      const float scale =
          static_cast<float>(simd::sum_abs(v.data() + lo, len) / static_cast<double>(len));
      if (!finite(scale)) {
        throw CodecError("codec " + name() + ": cannot encode: chunk " + std::to_string(c) +
                         " has a non-finite scale (NaN/inf in the input)");
      }
      w.f32(scale);
    }
    simd::sign_bits(v.data(), n, w.pos());
  }
  void decode(Reader& r, std::span<float> out) const override {
    const std::size_t n = out.size();
    r.expect_u8(static_cast<std::uint8_t>(ValueKind::kSign), "value codec tag");
    r.expect_u32(checked_n(n), "value count");
    r.expect_u32(chunk_, "sign chunk");
    const std::size_t nc = chunks(n, chunk_);
    r.need(4 * nc + (n + 7) / 8, "sign scales and bits");
    const std::uint8_t* scales = r.take(4 * nc, "sign scales");
    {
      Reader sr(scales, 4 * nc, r.codec());
      for (std::size_t c = 0; c < nc; ++c) read_scale(sr, "sign chunk scale");
    }
    const std::uint8_t* bp = r.take((n + 7) / 8, "sign bits");
    if ((n % 8) != 0 && (bp[n / 8] >> (n % 8)) != 0) {
      malformed(r.codec(), "sign padding bits are not zero");
    }
    for (std::size_t c = 0; c < nc; ++c) {
      float scale;
      std::memcpy(&scale, scales + 4 * c, 4);
      const std::size_t lo = c * chunk_;
      const std::size_t len = std::min<std::size_t>(chunk_, n - lo);
      simd::sign_values(bp, lo, len, scale, out.data() + lo);
    }
  }
  bool unbiased() const override { return false; }
  bool contractive() const override { return true; }
  // ||C(x) - x||^2 = ||x||^2 - ||x||_1^2 / c per chunk, and ||x||_1^2 >= ||x||^2.
  double delta(std::size_t n) const override {
    return 1.0 / static_cast<double>(std::max<std::size_t>(1, std::min<std::size_t>(chunk_, n)));
  }

 private:
  std::uint32_t chunk_;
};

StageBuild build(const StageArgs& a) {
  const auto chunk = static_cast<std::uint32_t>(a.option("chunk", 1024, 1, 1u << 24));
  return {std::make_shared<SignCodec>(chunk), nullptr, "", nullptr};
}

}  // namespace

StageEntry sign_stage() {
  return {"sign",
          StageRole::kValue,
          "sign[:chunk=N]",
          "scaled sign, 1 bit + one fp32 scale per chunk (default 1024)",
          0,
          {},
          {"chunk"},
          {"sign:chunk=64", "sign"},
          build};
}

}  // namespace rumor::codec::detail
