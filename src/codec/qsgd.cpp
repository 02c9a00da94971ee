// qsgd:BITS[:biased][:chunk=N]: QSGD stochastic quantisation with one norm per chunk.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>

#include "simd.hpp"
#include "stage_entry.hpp"

namespace rumor::codec::detail {
namespace {

// QSGD (Alistarh et al. 2017) with one L2 norm per chunk: level l = floor(s|x|/norm + u),
// u uniform (24 random bits), value norm * sign * l / s. Each element is BITS+1 bits
// (level, then sign), bit-packed LSB first across the whole block.
class QsgdCodec final : public ValueCodec {
 public:
  QsgdCodec(int bits, bool biased, std::uint32_t chunk)
      : bits_(bits), biased_(biased), chunk_(chunk), s_((1u << bits) - 1) {}
  std::string name() const override {
    std::string n = "qsgd:" + std::to_string(bits_);
    if (biased_) n += ":biased";
    if (chunk_ != 512) n += ":chunk=" + std::to_string(chunk_);
    return n;
  }
  std::size_t packed_bytes(std::size_t n) const {
    return (n * static_cast<std::size_t>(bits_ + 1) + 7) / 8;
  }
  std::size_t size(std::size_t n) const override {
    return 11 + 4 * chunks(n, chunk_) + packed_bytes(n);
  }
  // Receiver-side scale of the contractive variant: 1 / (1 + omega), omega the QSGD variance
  // bound min(c/s^2, sqrt(c)/s) for chunks of c values.
  double omega(std::size_t n) const {
    const double c =
        static_cast<double>(std::min<std::size_t>(chunk_, std::max<std::size_t>(n, 1)));
    const double s = s_;
    return std::min(c / (s * s), std::sqrt(c) / s);
  }
  void encode(std::span<const float> v, Rng& rng, std::uint8_t* out) const override {
    const std::size_t n = v.size();
    Writer w(out);
    w.u8(static_cast<std::uint8_t>(ValueKind::kQsgd));
    w.u8(static_cast<std::uint8_t>(bits_));
    w.u8(biased_ ? 1 : 0);
    w.u32(checked_n(n));
    w.u32(chunk_);
    const std::size_t nc = chunks(n, chunk_);
    Packer pk{w.pos(), w.pos() + 4 * nc};
    double sq = simd::sum_squares(v.data(), std::min<std::size_t>(chunk_, n));
    for (std::size_t c = 0; c < nc; ++c) {
      const std::size_t lo = c * chunk_;
      const std::size_t len = std::min<std::size_t>(chunk_, n - lo);
      const float* x = v.data() + lo;
      const float norm = static_cast<float>(std::sqrt(sq));
      if (!finite(norm)) {
        throw CodecError("codec " + name() + ": cannot encode: chunk " + std::to_string(c) +
                         " has a non-finite norm (NaN/inf in the input, or values too large)");
      }
      std::memcpy(pk.norms + 4 * c, &norm, 4);
      const float inv = norm > 0.0f ? static_cast<float>(s_) / norm : 0.0f;
      const std::size_t next_len = c + 1 < nc ? std::min<std::size_t>(chunk_, n - lo - len) : 0;
      std::size_t i = 0;
      if (pk.nbits == 0) {  // byte aligned: whole groups of 8 values fill exactly BITS+1 bytes
        i = len / 8 * 8;
        sq = simd::qsgd_codes_sum_next(x, i, inv, bits_, rng, pk.bits, x + len, next_len);
        pk.bits += i / 8 * static_cast<std::size_t>(bits_ + 1);
      } else {
        sq = simd::sum_squares(x + len, next_len);
      }
      encode_tail(x, i, len, inv, rng, pk);
    }
    while (pk.nbits > 0) {
      *pk.bits++ = static_cast<std::uint8_t>(pk.acc);
      pk.acc >>= 8;
      pk.nbits = pk.nbits > 8 ? pk.nbits - 8 : 0;
    }
  }
  void decode(Reader& r, std::span<float> out) const override {
    const std::size_t n = out.size();
    r.expect_u8(static_cast<std::uint8_t>(ValueKind::kQsgd), "value codec tag");
    r.expect_u8(static_cast<std::uint8_t>(bits_), "qsgd bits");
    r.expect_u8(biased_ ? 1 : 0, "qsgd biased flag");
    r.expect_u32(checked_n(n), "value count");
    r.expect_u32(chunk_, "qsgd chunk");
    const std::size_t nc = chunks(n, chunk_);
    r.need(4 * nc + packed_bytes(n), "qsgd norms and levels");
    const float post = biased_ ? static_cast<float>(1.0 / (1.0 + omega(n))) : 1.0f;
    // Norms first, so a bad one is reported before any output is written.
    const std::uint8_t* norms_at = r.take(4 * nc, "qsgd norms");
    {
      Reader nr(norms_at, 4 * nc, r.codec());
      for (std::size_t c = 0; c < nc; ++c) read_scale(nr, "qsgd chunk norm");
    }
    const std::size_t nbytes = packed_bytes(n);
    const std::uint8_t* bp = r.take(nbytes, "qsgd levels");
    const unsigned width = static_cast<unsigned>(bits_ + 1);
    const std::uint32_t mask = (1u << width) - 1;
    const std::uint32_t level_mask = s_;
    std::uint64_t acc = 0;
    unsigned nbits = 0;
    std::size_t byte = 0;
    for (std::size_t c = 0; c < nc; ++c) {
      float norm;
      std::memcpy(&norm, norms_at + 4 * c, 4);
      const float step = norm / static_cast<float>(s_) * post;
      const std::size_t lo = c * chunk_;
      const std::size_t len = std::min<std::size_t>(chunk_, n - lo);
      std::size_t i = 0;
      if (nbits == 0) {  // byte aligned: whole groups of 8 values
        const std::size_t groups = len / 8 * 8;
        simd::qsgd_levels(bp + byte, groups, bits_, step, out.data() + lo);
        byte += groups / 8 * width;
        i = groups;
      }
      for (; i < len; ++i) {
        while (nbits < width) {
          acc |= static_cast<std::uint64_t>(bp[byte++]) << nbits;
          nbits += 8;
        }
        const std::uint32_t code = static_cast<std::uint32_t>(acc) & mask;
        acc >>= width;
        nbits -= width;
        const float mag = static_cast<float>(code & level_mask) * step;
        out[lo + i] = (code >> bits_) ? -mag : mag;
      }
    }
    if (acc != 0) malformed(r.codec(), "qsgd padding bits are not zero");
  }
  bool unbiased() const override { return !biased_; }
  bool contractive() const override { return biased_; }
  double delta(std::size_t n) const override { return biased_ ? 1.0 / (1.0 + omega(n)) : 0.0; }

 private:
  // Where encoded bits go: norms, then levels (LSB first); a partial 32-bit word in acc
  // while a chunk ends off a byte boundary, and the unused half of the last random word.
  struct Packer {
    std::uint8_t* norms;
    std::uint8_t* bits;
    std::uint64_t acc = 0;
    unsigned nbits = 0;
    std::uint64_t rbits = 0;
    unsigned rleft = 0;
  };

  // Values i .. len - 1 of a chunk, one at a time (what whole byte-aligned groups left).
  void encode_tail(const float* x, std::size_t i, std::size_t len, float inv, Rng& rng,
                   Packer& pk) const {
    const unsigned width = static_cast<unsigned>(bits_ + 1);
    const std::uint32_t sign_bit = 1u << bits_;
    for (; i < len; ++i) {
      if (pk.rleft == 0) {
        pk.rbits = rng();
        pk.rleft = 2;
      }
      const std::uint32_t u = static_cast<std::uint32_t>(pk.rbits) & 0xffffffu;
      pk.rbits >>= 32;
      --pk.rleft;
      const float a = std::fabs(x[i]) * inv;
      std::uint32_t l = static_cast<std::uint32_t>(a);
      const float frac = a - static_cast<float>(l);
      l += static_cast<float>(u) < frac * 16777216.0f;
      l = std::min(l, s_);
      const std::uint32_t code = l | (std::signbit(x[i]) && l ? sign_bit : 0u);
      pk.acc |= static_cast<std::uint64_t>(code) << pk.nbits;
      pk.nbits += width;
      if (pk.nbits >= 32) {
        const std::uint32_t word = static_cast<std::uint32_t>(pk.acc);
        std::memcpy(pk.bits, &word, 4);
        pk.bits += 4;
        pk.acc >>= 32;
        pk.nbits -= 32;
      }
    }
  }

  int bits_;
  bool biased_;
  std::uint32_t chunk_;
  std::uint32_t s_;
};

StageBuild build(const StageArgs& a) {
  a.require(1, "BITS");
  const int bits = static_cast<int>(a.count(0, "qsgd BITS", 1, 8));
  const auto chunk = static_cast<std::uint32_t>(a.option("chunk", 512, 1, 1u << 24));
  return {std::make_shared<QsgdCodec>(bits, a.flag("biased"), chunk), nullptr, "", nullptr};
}

}  // namespace

StageEntry qsgd_stage() {
  return {"qsgd",
          StageRole::kValue,
          "qsgd:BITS[:biased][:chunk=N]",
          "QSGD, 2^BITS-1 levels, BITS 1..8, one norm per chunk (default 512); biased = "
          "contractive scaling",
          1,
          {"biased"},
          {"chunk"},
          {"qsgd:3:biased:chunk=64", "qsgd:8", "qsgd:1:chunk=7"},
          build};
}

}  // namespace rumor::codec::detail
