#include "stages.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace rumor::codec::detail {
namespace {

std::uint32_t checked_n(std::size_t n) {
  return static_cast<std::uint32_t>(n);
}

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
    } else {
      for (std::size_t i = 0; i < v.size(); ++i) {
        const std::uint16_t h = K == ValueKind::kFp16 ? float_to_half(v[i]) : float_to_bf16(v[i]);
        std::memcpy(p + 2 * i, &h, 2);
      }
    }
  }
  void decode(Reader& r, std::span<float> out) const override {
    r.expect_u8(static_cast<std::uint8_t>(K), "value codec tag");
    r.expect_u32(checked_n(out.size()), "value count");
    const std::uint8_t* p = r.take(kWidth * out.size(), "values");
    if constexpr (K == ValueKind::kFp32) {
      std::memcpy(out.data(), p, out.size() * 4);
    } else {
      for (std::size_t i = 0; i < out.size(); ++i) {
        std::uint16_t h;
        std::memcpy(&h, p + 2 * i, 2);
        out[i] = K == ValueKind::kFp16 ? half_to_float(h) : bf16_to_float(h);
      }
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

std::size_t chunks(std::size_t n, std::uint32_t chunk) {
  return (n + chunk - 1) / chunk;
}

// Sum of squares / of magnitudes in double with independent accumulators.
double sum_sq(const float* x, std::size_t n) {
  double a0 = 0, a1 = 0, a2 = 0, a3 = 0;
  std::size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    a0 += static_cast<double>(x[i]) * x[i];
    a1 += static_cast<double>(x[i + 1]) * x[i + 1];
    a2 += static_cast<double>(x[i + 2]) * x[i + 2];
    a3 += static_cast<double>(x[i + 3]) * x[i + 3];
  }
  for (; i < n; ++i) a0 += static_cast<double>(x[i]) * x[i];
  return (a0 + a1) + (a2 + a3);
}
double sum_abs(const float* x, std::size_t n) {
  double a0 = 0, a1 = 0, a2 = 0, a3 = 0;
  std::size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    a0 += std::fabs(x[i]);
    a1 += std::fabs(x[i + 1]);
    a2 += std::fabs(x[i + 2]);
    a3 += std::fabs(x[i + 3]);
  }
  for (; i < n; ++i) a0 += std::fabs(x[i]);
  return (a0 + a1) + (a2 + a3);
}

// A scale sent on the wire: finite and not negative.
float read_scale(Reader& r, const char* what) {
  const float s = r.f32(what);
  if (!finite(s) || std::signbit(s)) {
    malformed(r.codec(),
              std::string(what) + " is " + std::to_string(s) + ", must be finite and >= 0");
  }
  return s;
}

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
      const float norm = static_cast<float>(std::sqrt(sum_sq(x, len)));
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
    switch (bits_) {
      case 1:
        groups_t<1>(x, len, inv, s_, rng, bp);
        break;
      case 2:
        groups_t<2>(x, len, inv, s_, rng, bp);
        break;
      case 3:
        groups_t<3>(x, len, inv, s_, rng, bp);
        break;
      case 4:
        groups_t<4>(x, len, inv, s_, rng, bp);
        break;
      case 5:
        groups_t<5>(x, len, inv, s_, rng, bp);
        break;
      case 6:
        groups_t<6>(x, len, inv, s_, rng, bp);
        break;
      case 7:
        groups_t<7>(x, len, inv, s_, rng, bp);
        break;
      default:
        groups_t<8>(x, len, inv, s_, rng, bp);
        break;
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
      for (std::size_t i = 0; i < len; ++i) {
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
          static_cast<float>(sum_abs(v.data() + lo, len) / static_cast<double>(len));
      if (!finite(scale)) {
        throw CodecError("codec " + name() + ": cannot encode: chunk " + std::to_string(c) +
                         " has a non-finite scale (NaN/inf in the input)");
      }
      w.f32(scale);
    }
    std::uint8_t* bp = w.pos();
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) {
      unsigned b = 0;
      for (unsigned j = 0; j < 8; ++j) b |= (std::bit_cast<std::uint32_t>(v[i + j]) >> 31) << j;
      *bp++ = static_cast<std::uint8_t>(b);
    }
    if (i < n) {
      unsigned b = 0;
      for (unsigned j = 0; i + j < n; ++j) b |= (std::bit_cast<std::uint32_t>(v[i + j]) >> 31) << j;
      *bp = static_cast<std::uint8_t>(b);
    }
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
      const std::uint32_t sb = std::bit_cast<std::uint32_t>(scale);
      const std::size_t lo = c * chunk_;
      const std::size_t hi = std::min<std::size_t>(lo + chunk_, n);
      for (std::size_t i = lo; i < hi; ++i) {
        const std::uint32_t neg = (bp[i >> 3] >> (i & 7)) & 1u;
        out[i] = std::bit_cast<float>(sb | (neg << 31));
      }
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

}  // namespace

std::unique_ptr<ValueCodec> make_fp32() {
  return std::make_unique<CastCodec<ValueKind::kFp32>>();
}
std::unique_ptr<ValueCodec> make_fp16() {
  return std::make_unique<CastCodec<ValueKind::kFp16>>();
}
std::unique_ptr<ValueCodec> make_bf16() {
  return std::make_unique<CastCodec<ValueKind::kBf16>>();
}
std::unique_ptr<ValueCodec> make_qsgd(int bits, bool biased, std::uint32_t chunk) {
  return std::make_unique<QsgdCodec>(bits, biased, chunk);
}
std::unique_ptr<ValueCodec> make_sign(std::uint32_t chunk) {
  return std::make_unique<SignCodec>(chunk);
}

SketchHash::SketchHash(std::uint64_t seed, std::uint32_t rows, std::uint32_t cols)
    : rows_(std::min(rows, kMaxSketchRows)), cols_(cols) {
  Rng rng = Rng::derive(seed, 0x736b65746368ULL, rows, cols);  // from the shared seed alone
  for (std::uint32_t r = 0; r < rows_; ++r) key_[r] = rng();
}

void SketchHash::sketch(std::span<const float> x, float* table) const {
  // Blocks of x stay in L1 while every row visits them: x is read from memory once.
  constexpr std::size_t kBlock = 2048;
  const std::uint64_t cols = cols_;
  for (std::size_t lo = 0; lo < x.size(); lo += kBlock) {
    const std::size_t hi = std::min(x.size(), lo + kBlock);
    for (std::uint32_t r = 0; r < rows_; ++r) {
      float* row = table + static_cast<std::size_t>(r) * cols_;
      const std::uint64_t key = key_[r];
      for (std::size_t k = lo; k < hi; ++k) {
        const std::uint64_t v = mix(k, key);
        const std::uint32_t flip = static_cast<std::uint32_t>(v) << 31;
        row[((v >> 32) * cols) >> 32] +=
            std::bit_cast<float>(std::bit_cast<std::uint32_t>(x[k]) ^ flip);
      }
    }
  }
}

void SketchHash::estimate(const float* table, std::span<float> est,
                          std::vector<float>& vals) const {
  // Per block of keys: each row's signed bucket values (row by row, simple loops), then the
  // median per key (a min/max network for 5 rows, insertion sort otherwise).
  constexpr std::size_t kBlock = 1024;
  vals.resize(static_cast<std::size_t>(rows_) * kBlock);
  const std::uint64_t cols = cols_;
  for (std::size_t lo = 0; lo < est.size(); lo += kBlock) {
    const std::size_t len = std::min(est.size() - lo, kBlock);
    for (std::uint32_t r = 0; r < rows_; ++r) {
      const float* row = table + static_cast<std::size_t>(r) * cols_;
      float* out = vals.data() + static_cast<std::size_t>(r) * kBlock;
      const std::uint64_t key = key_[r];
      for (std::size_t j = 0; j < len; ++j) {
        const std::uint64_t v = mix(lo + j, key);
        const std::uint32_t flip = static_cast<std::uint32_t>(v) << 31;
        out[j] = std::bit_cast<float>(std::bit_cast<std::uint32_t>(row[((v >> 32) * cols) >> 32]) ^
                                      flip);
      }
    }
    if (rows_ == 5) {
      const float* v0 = vals.data();
      const float* v1 = v0 + kBlock;
      const float* v2 = v1 + kBlock;
      const float* v3 = v2 + kBlock;
      const float* v4 = v3 + kBlock;
      for (std::size_t j = 0; j < len; ++j) {
        // median of 5: drop the smaller of two pair-maxima's... (standard 6-comparison form)
        float a0 = std::min(v0[j], v1[j]), a1 = std::max(v0[j], v1[j]);
        float b0 = std::min(v2[j], v3[j]), b1 = std::max(v2[j], v3[j]);
        // The smaller of the two pair minima cannot be the median; neither the larger maximum.
        const float lo3 = std::max(a0, b0);
        const float hi3 = std::min(a1, b1);
        const float c = v4[j];
        // Median of {lo3, hi3, c}.
        est[lo + j] = std::max(std::min(lo3, hi3), std::min(std::max(lo3, hi3), c));
      }
    } else {
      float v[kMaxSketchRows];
      for (std::size_t j = 0; j < len; ++j) {
        for (std::uint32_t r = 0; r < rows_; ++r) {
          const float e = vals[static_cast<std::size_t>(r) * kBlock + j];
          std::uint32_t i = r;
          while (i > 0 && v[i - 1] > e) {
            v[i] = v[i - 1];
            --i;
          }
          v[i] = e;
        }
        const std::uint32_t m = rows_ / 2;
        est[lo + j] = (rows_ & 1u) ? v[m] : 0.5f * (v[m - 1] + v[m]);
      }
    }
  }
}

}  // namespace rumor::codec::detail
