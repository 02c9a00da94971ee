#pragma once
// Internal helpers for codec payloads: little-endian byte writer/reader with bounds checks,
// varints, fp16/bf16 conversions, and the error helper. Not part of the public API.
#include <bit>
#include <cstdint>
#include <cstring>
#include <string>

#include "rumor/common/error.hpp"

namespace rumor::codec::detail {

[[noreturn]] inline void malformed(const std::string& codec, const std::string& what) {
  throw CodecError("codec " + codec + ": malformed payload: " + what +
                   " (sender and receiver must use the same codec spec, seed and dimension)");
}

// Writes into a pre-sized buffer; the caller computed the exact size in advance.
class Writer {
 public:
  explicit Writer(std::uint8_t* p) : p_(p) {}
  void u8(std::uint8_t v) { *p_++ = v; }
  void u32(std::uint32_t v) {
    std::memcpy(p_, &v, 4);  // little-endian host (x86-64/aarch64); checked in codec.cpp
    p_ += 4;
  }
  void f32(float v) { u32(std::bit_cast<std::uint32_t>(v)); }
  std::uint8_t* pos() { return p_; }
  void skip(std::size_t n) { p_ += n; }

 private:
  std::uint8_t* p_;
};

// Reads from a byte range; every read is bounds-checked and throws CodecError.
class Reader {
 public:
  Reader(const std::uint8_t* p, std::size_t n, const std::string& codec)
      : p_(p), end_(p + n), codec_(codec) {}
  std::size_t left() const { return static_cast<std::size_t>(end_ - p_); }
  void need(std::size_t n, const char* what) const {
    if (left() < n) {
      malformed(codec_, std::string("truncated ") + what + " (need " + std::to_string(n) +
                            " bytes, " + std::to_string(left()) + " left)");
    }
  }
  std::uint8_t u8(const char* what) {
    need(1, what);
    return *p_++;
  }
  std::uint32_t u32(const char* what) {
    need(4, what);
    std::uint32_t v;
    std::memcpy(&v, p_, 4);
    p_ += 4;
    return v;
  }
  float f32(const char* what) { return std::bit_cast<float>(u32(what)); }
  const std::uint8_t* take(std::size_t n, const char* what) {
    need(n, what);
    const std::uint8_t* q = p_;
    p_ += n;
    return q;
  }
  void expect_u8(std::uint8_t want, const char* what) {
    const std::uint8_t got = u8(what);
    if (got != want) {
      malformed(codec_, std::string(what) + " is " + std::to_string(got) + ", expected " +
                            std::to_string(want));
    }
  }
  void expect_u32(std::uint32_t want, const char* what) {
    const std::uint32_t got = u32(what);
    if (got != want) {
      malformed(codec_, std::string(what) + " is " + std::to_string(got) + ", expected " +
                            std::to_string(want));
    }
  }
  void expect_end() const {
    if (p_ != end_) malformed(codec_, std::to_string(left()) + " trailing bytes");
  }
  const std::string& codec() const { return codec_; }

 private:
  const std::uint8_t* p_;
  const std::uint8_t* end_;
  const std::string& codec_;
};

inline bool finite(float v) {
  return (std::bit_cast<std::uint32_t>(v) & 0x7f800000u) != 0x7f800000u;
}

// fp32 -> fp16, round to nearest even; overflow gives inf, NaN stays NaN (quiet).
inline std::uint16_t float_to_half(float x) {
  std::uint32_t f = std::bit_cast<std::uint32_t>(x);
  const std::uint32_t sign = (f >> 16) & 0x8000u;
  f &= 0x7fffffffu;
  std::uint32_t h;
  if (f >= 0x7f800000u) {
    h = 0x7c00u | (f > 0x7f800000u ? 0x200u : 0u);
  } else if (f >= 0x477ff000u) {  // >= 65520 rounds to inf
    h = 0x7c00u;
  } else if (f < 0x38800000u) {  // below 2^-14: half subnormal; 0.5f has ulp 2^-24 = half's
    const float t = std::bit_cast<float>(f) + 0.5f;
    h = std::bit_cast<std::uint32_t>(t) - 0x3f000000u;
  } else {
    const std::uint32_t odd = (f >> 13) & 1u;
    f += 0xc8000fffu + odd;  // exponent -112 (127 -> 15) and round to nearest even
    h = f >> 13;
  }
  return static_cast<std::uint16_t>(sign | h);
}

inline float half_to_float(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t em = h & 0x7fffu;
  std::uint32_t f;
  if (em > 0x7c00u) {  // NaN: quiet, payload kept (as F16C's conversion does)
    f = 0x7fc00000u | ((em & 0x3ffu) << 13);
  } else if (em == 0x7c00u) {
    f = 0x7f800000u;
  } else if (em >= 0x400u) {
    f = (em << 13) + (112u << 23);
  } else {  // subnormal: em units of 2^-24
    f = std::bit_cast<std::uint32_t>(std::bit_cast<float>(0x3f000000u + em) - 0.5f);
  }
  return std::bit_cast<float>(sign | f);
}

// fp32 -> bf16, round to nearest even; NaN stays NaN.
inline std::uint16_t float_to_bf16(float x) {
  const std::uint32_t f = std::bit_cast<std::uint32_t>(x);
  if ((f & 0x7fffffffu) > 0x7f800000u) return static_cast<std::uint16_t>((f >> 16) | 0x40u);
  return static_cast<std::uint16_t>((f + 0x7fffu + ((f >> 16) & 1u)) >> 16);
}

inline float bf16_to_float(std::uint16_t b) {
  return std::bit_cast<float>(static_cast<std::uint32_t>(b) << 16);
}

// Unsigned LEB128 of a 32-bit value: at most 5 bytes.
inline std::uint8_t* put_varint(std::uint8_t* p, std::uint32_t v) {
  while (v >= 0x80u) {
    *p++ = static_cast<std::uint8_t>(v | 0x80u);
    v >>= 7;
  }
  *p++ = static_cast<std::uint8_t>(v);
  return p;
}

}  // namespace rumor::codec::detail
