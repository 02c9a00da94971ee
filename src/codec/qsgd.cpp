// qsgd:BITS[:biased][:chunk=N]: QSGD stochastic quantisation with one norm per chunk.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

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
    std::uint8_t* norms = w.pos();
    std::uint8_t* bitp = norms + 4 * nc;
    const unsigned width = static_cast<unsigned>(bits_ + 1);
    const std::uint32_t sign_bit = 1u << bits_;
    std::uint64_t acc = 0;
    unsigned nbits = 0;
    std::uint64_t rbits = 0;
    unsigned rleft = 0;
    for (std::size_t c = 0; c < nc; ++c) {
      const std::size_t lo = c * chunk_;
      const std::size_t len = std::min<std::size_t>(chunk_, n - lo);
      const float* x = v.data() + lo;
      const float norm = static_cast<float>(
          std::sqrt(sum_of(x, len, [](float v) { return static_cast<double>(v) * v; })));
      if (!finite(norm)) {
        throw CodecError("codec " + name() + ": cannot encode: chunk " + std::to_string(c) +
                         " has a non-finite norm (NaN/inf in the input, or values too large)");
      }
      std::memcpy(norms + 4 * c, &norm, 4);
      const float inv = norm > 0.0f ? static_cast<float>(s_) / norm : 0.0f;
      std::size_t i = 0;
      if (nbits == 0) {  // byte aligned: whole groups of 8 values fill exactly BITS+1 bytes
        const std::size_t groups = len / 8 * 8;
        encode_groups(x, groups, inv, rng, bitp);
        i = groups;
      }
      for (; i < len; ++i) {
        if (rleft == 0) {
          rbits = rng();
          rleft = 2;
        }
        const std::uint32_t u = static_cast<std::uint32_t>(rbits) & 0xffffffu;
        rbits >>= 32;
        --rleft;
        const float a = std::fabs(x[i]) * inv;
        std::uint32_t l = static_cast<std::uint32_t>(a);
        const float frac = a - static_cast<float>(l);
        l += static_cast<float>(u) < frac * 16777216.0f;
        l = std::min(l, s_);
        const std::uint32_t code = l | (std::signbit(x[i]) && l ? sign_bit : 0u);
        acc |= static_cast<std::uint64_t>(code) << nbits;
        nbits += width;
        if (nbits >= 32) {
          const std::uint32_t word = static_cast<std::uint32_t>(acc);
          std::memcpy(bitp, &word, 4);
          bitp += 4;
          acc >>= 32;
          nbits -= 32;
        }
      }
    }
    while (nbits > 0) {
      *bitp++ = static_cast<std::uint8_t>(acc);
      acc >>= 8;
      nbits = nbits > 8 ? nbits - 8 : 0;
    }
  }
  // Fast path: len is a multiple of 8; 8 codes of W = BITS+1 bits are W whole bytes of the
  // same LSB-first bit stream the generic path writes.
  template <unsigned kBits>
  static void groups_t(const float* x, std::size_t len, float inv, std::uint32_t s, Rng& rng,
                       std::uint8_t*& bp) {
    constexpr unsigned kW = kBits + 1;
    __extension__ typedef unsigned __int128 U128;
    using Acc = std::conditional_t<(kW * 8 > 64), U128, std::uint64_t>;
    const float sf = static_cast<float>(s);
    for (std::size_t g = 0; g < len; g += 8) {
      alignas(16) std::int32_t code[8];
#if defined(__SSE2__)
      // a = min(|x| s / norm, s); l = floor(a) + (u < frac(a)), so l <= s; frac is exact and u
      // has 24 random bits; the sign bit is set only for non-zero levels.
      for (unsigned j = 0; j < 8; j += 4) {
        const __m128i xb = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x + g + j));
        const __m128 ax = _mm_castsi128_ps(_mm_and_si128(xb, _mm_set1_epi32(0x7fffffff)));
        const __m128 a = _mm_min_ps(_mm_mul_ps(ax, _mm_set1_ps(inv)), _mm_set1_ps(sf));
        const __m128i li = _mm_cvttps_epi32(a);
        const __m128 frac = _mm_sub_ps(a, _mm_cvtepi32_ps(li));
        // Four 24-bit uniforms from two 64-bit draws, built in registers (a round trip
        // through memory stalls on store forwarding).
        const auto r0 = static_cast<long long>(rng());
        const auto r1 = static_cast<long long>(rng());
        const __m128 uf =
            _mm_cvtepi32_ps(_mm_and_si128(_mm_set_epi64x(r1, r0), _mm_set1_epi32(0xffffff)));
        const __m128i up =
            _mm_castps_si128(_mm_cmplt_ps(uf, _mm_mul_ps(frac, _mm_set1_ps(16777216.0f))));
        const __m128i l = _mm_sub_epi32(li, up);  // up is -1 where rounding up
        const __m128i zero = _mm_cmpeq_epi32(l, _mm_setzero_si128());
        const __m128i neg = _mm_andnot_si128(zero, _mm_srli_epi32(xb, 31));
        _mm_store_si128(reinterpret_cast<__m128i*>(code + j),
                        _mm_or_si128(l, _mm_slli_epi32(neg, kBits)));
      }
#else
      std::uint32_t u[8];
      for (unsigned j = 0; j < 8; j += 2) {
        const std::uint64_t rnd = rng();
        u[j] = static_cast<std::uint32_t>(rnd) & 0xffffffu;
        u[j + 1] = static_cast<std::uint32_t>(rnd >> 32) & 0xffffffu;
      }
      for (unsigned j = 0; j < 8; ++j) {
        // a <= s, so floor(a) + (round up) <= s; frac is exact, u has 24 random bits.
        const float a = std::min(std::fabs(x[g + j]) * inv, sf);
        const std::int32_t li = static_cast<std::int32_t>(a);
        const float frac = a - static_cast<float>(li);
        const std::int32_t l =
            li + (static_cast<float>(static_cast<std::int32_t>(u[j])) < frac * 16777216.0f ? 1 : 0);
        const std::int32_t neg =
            static_cast<std::int32_t>(std::bit_cast<std::uint32_t>(x[g + j]) >> 31) &
            (l != 0 ? 1 : 0);
        code[j] = l | (neg << kBits);
      }
#endif
      Acc acc = 0;
      for (unsigned j = 0; j < 8; ++j)
        acc |= static_cast<Acc>(static_cast<std::uint32_t>(code[j])) << (j * kW);
      std::memcpy(bp, &acc, kW);  // little-endian host: the low kW bytes
      bp += kW;
    }
  }
  void encode_groups(const float* x, std::size_t len, float inv, Rng& rng,
                     std::uint8_t*& bp) const {
    simd::dispatch_bits(bits_,
                        [&](auto b) { groups_t<decltype(b)::value>(x, len, inv, s_, rng, bp); });
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
  bool unbiased() const override {
    return !biased_;
  }
  bool contractive() const override {
    return biased_;
  }
  double delta(std::size_t n) const override {
    return biased_ ? 1.0 / (1.0 + omega(n)) : 0.0;
  }

 private:
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
