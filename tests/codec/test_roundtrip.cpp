#include <doctest/doctest.h>

#include <bit>
#include <cstring>

#include "helpers.hpp"
#include "wire.hpp"

using namespace rumor::codec;
using namespace rumor::codec::test;

TEST_SUITE("codec") {
  TEST_CASE("fp32 round trip is bit exact, including specials") {
    auto c = make_codec("fp32");
    auto x = gaussian(1001, 1);
    x[3] = -0.0f;
    x[4] = std::numeric_limits<float>::infinity();
    x[5] = std::numeric_limits<float>::denorm_min();
    x[6] = std::numeric_limits<float>::max();
    Bytes wire;
    auto y = roundtrip(*c, x, {}, &wire);
    CHECK(std::memcmp(x.data(), y.data(), 4 * x.size()) == 0);
    CHECK(wire.size() == c->max_encoded_size(x.size()));
    CHECK(c->fixed_size());
    CHECK(wire.size() == 10 + 4 * x.size());  // 10 header bytes
  }

  TEST_CASE("fp16 conversion: every half round-trips, RNE error bound, overflow to inf") {
    using namespace rumor::codec::detail;
    for (std::uint32_t h = 0; h < 0x10000; ++h) {
      const float f = half_to_float(static_cast<std::uint16_t>(h));
      if (std::isnan(f)) {
        CHECK(std::isnan(half_to_float(float_to_half(f))));
        continue;
      }
      REQUIRE(float_to_half(f) == h);
    }
    // Relative error <= 2^-11 in the normal range; absolute <= 2^-25 in the subnormal range.
    auto x = gaussian(20000, 2);
    for (std::size_t i = 0; i < x.size(); ++i) {
      const float v = x[i] * std::ldexp(1.0f, static_cast<int>(i % 40) - 25);
      const float r = half_to_float(float_to_half(v));
      if (std::fabs(v) >= 0x1p-14f && std::fabs(v) <= 65504.0f) {
        REQUIRE(std::fabs(r - v) <= std::fabs(v) * 0x1p-11f);
      } else if (std::fabs(v) < 0x1p-14f) {
        REQUIRE(std::fabs(r - v) <= 0x1p-25f);
      }
    }
    CHECK(std::isinf(half_to_float(float_to_half(65520.0f))));
    CHECK(half_to_float(float_to_half(65519.0f)) == 65504.0f);
    // Ties go to even: 1 + 2^-11 is halfway between 1 and 1 + 2^-10.
    CHECK(half_to_float(float_to_half(1.0f + 0x1p-11f)) == 1.0f);
    CHECK(half_to_float(float_to_half(1.0f + 3 * 0x1p-11f)) == 1.0f + 0x1p-9f);
  }

  TEST_CASE("bf16 conversion: relative error <= 2^-8, ties to even, NaN kept") {
    using namespace rumor::codec::detail;
    auto x = gaussian(20000, 3);
    for (std::size_t i = 0; i < x.size(); ++i) {
      const float v = x[i] * std::ldexp(1.0f, static_cast<int>(i % 200) - 100);
      const float r = bf16_to_float(float_to_bf16(v));
      REQUIRE(std::fabs(r - v) <= std::fabs(v) * 0x1p-8f);
    }
    CHECK(bf16_to_float(float_to_bf16(1.0f + 0x1p-8f)) == 1.0f);
    CHECK(bf16_to_float(float_to_bf16(1.0f + 3 * 0x1p-8f)) == 1.0f + 0x1p-6f);
    CHECK(std::isnan(bf16_to_float(float_to_bf16(std::nanf("")))));
  }

  TEST_CASE("fp16 and bf16 codecs: error bounds on a vector, sizes") {
    auto x = gaussian(777, 4);
    for (const char* spec : {"fp16", "bf16"}) {
      auto c = make_codec(spec);
      Bytes wire;
      auto y = roundtrip(*c, x, {}, &wire);
      const float bound = std::string(spec) == "fp16" ? 0x1p-11f : 0x1p-8f;
      for (std::size_t i = 0; i < x.size(); ++i) {
        REQUIRE(std::fabs(y[i] - x[i]) <= std::fabs(x[i]) * bound + 0x1p-25f);
      }
      CHECK(wire.size() == 10 + 2 * x.size());
      CHECK(wire.size() == c->max_encoded_size(x.size()));
    }
  }

  TEST_CASE("sparse chains decode to zeros except the kept values, sent equals decode") {
    auto x = gaussian(5000, 5);
    const CodecContext ctx{7, 3, 2};
    for (const char* spec : {"topk:0.02", "topk:100|fp16", "randk:0.05", "randk:64:unbiased",
                             "topk:0.01|qsgd:4:biased", "topk:0.01|sign", "qsgd:4", "sign"}) {
      const std::string spec_s = spec;
      CAPTURE(spec_s);
      auto c = make_codec(spec);
      auto enc = c->make_encoder(x.size());
      auto dec = c->make_decoder(x.size());
      Bytes b;
      std::vector<float> sent(x.size()), y(x.size(), 123.0f);
      const std::size_t n = enc->encode(x, ctx, b, sent);
      CHECK(n == b.size());
      CHECK(n <= c->max_encoded_size(x.size()));
      if (c->fixed_size()) CHECK(n == c->max_encoded_size(x.size()));
      dec->decode(b, ctx, y);
      CHECK(std::memcmp(sent.data(), y.data(), 4 * y.size()) == 0);
      // decode_add matches decode scaled.
      std::vector<float> acc(x.size(), 1.0f);
      dec->decode_add(b, ctx, acc, 0.5f);
      for (std::size_t i = 0; i < x.size(); ++i) REQUIRE(acc[i] == 1.0f + 0.5f * y[i]);
      if (c->sparse()) {
        std::size_t nz = 0;
        for (std::size_t i = 0; i < x.size(); ++i) {
          if (y[i] != 0.0f) ++nz;
        }
        CHECK(nz > 0);
        CHECK(nz <= x.size() / 10);
      }
    }
  }

  TEST_CASE("topk keeps exact fp32 values at the kept indices") {
    auto x = gaussian(3000, 6);
    auto c = make_codec("topk:30");
    auto y = roundtrip(*c, x);
    std::size_t kept = 0;
    for (std::size_t i = 0; i < x.size(); ++i) {
      if (y[i] != 0.0f) {
        CHECK(y[i] == x[i]);
        ++kept;
      }
    }
    CHECK(kept == 30);
  }

  TEST_CASE("randk: receivers derive the same indices from (seed, round, sender)") {
    auto x = gaussian(1000, 7);
    auto c = make_codec("randk:0.1");
    Bytes b;
    auto enc = c->make_encoder(x.size());
    enc->encode(x, {1, 5, 3}, b);
    auto dec = c->make_decoder(x.size());
    std::vector<float> y(x.size()), z(x.size());
    dec->decode(b, {1, 5, 3}, y);
    for (std::size_t i = 0; i < x.size(); ++i) REQUIRE((y[i] == 0.0f || y[i] == x[i]));
    // Another sender id: a different index set, so the values no longer line up.
    dec->decode(b, {1, 5, 4}, z);
    std::size_t mismatched = 0;
    for (std::size_t i = 0; i < x.size(); ++i) mismatched += (z[i] != 0.0f && z[i] != x[i]);
    CHECK(mismatched > 50);
    // Indices are not sent: the payload is the values plus a 9-byte header and the fp32 header.
    CHECK(b.size() == 9 + 5 + 4 * 100);
  }

  TEST_CASE("qsgd and sign sizes are exact bit counts") {
    const std::size_t d = 1000;
    auto q = make_codec("qsgd:4");
    // 5 + 11 header, 2 norms (chunk 512), 5 bits per value.
    CHECK(q->max_encoded_size(d) == 5 + 11 + 4 * 2 + (d * 5 + 7) / 8);
    auto s = make_codec("sign");
    CHECK(s->max_encoded_size(d) == 5 + 9 + 4 * 1 + (d + 7) / 8);
    auto x = gaussian(d, 8);
    Bytes b;
    roundtrip(*q, x, {}, &b);
    CHECK(b.size() == q->max_encoded_size(d));
    CHECK(bits_per_param(b.size(), d) < 5.3);
  }

  // The payload read bit by bit, as the format says, against the codec's decoder (which reads
  // whole groups of 8 values where they start on a byte boundary).
  TEST_CASE("qsgd decode equals a bit-by-bit reading of the payload, every width and chunking") {
    const std::size_t d = 1003;  // no multiple of 8: every path's tail runs
    const auto x = gaussian(d, 12);
    for (int bits = 1; bits <= 8; ++bits) {
      for (const char* chunk : {"", ":chunk=7", ":chunk=64"}) {
        const std::string spec = "qsgd:" + std::to_string(bits) + chunk;
        Bytes b;
        const auto y = roundtrip(*make_codec(spec), x, {}, &b);
        const std::size_t c = chunk[0] ? std::stoul(std::string(chunk).substr(7)) : 512;
        const std::size_t nc = (d + c - 1) / c;
        const std::uint8_t* norms = b.data() + 5 + 11;
        const std::uint8_t* bitp = norms + 4 * nc;
        const auto s = static_cast<float>((1u << bits) - 1);
        std::size_t mismatched = 0;
        for (std::size_t i = 0; i < d; ++i) {
          std::uint32_t code = 0;
          for (int k = 0; k <= bits; ++k) {
            const std::size_t bit = i * static_cast<std::size_t>(bits + 1) + k;
            code |= ((bitp[bit / 8] >> (bit % 8)) & 1u) << k;
          }
          float norm;
          std::memcpy(&norm, norms + 4 * (i / c), 4);
          const float mag = static_cast<float>(code & ((1u << bits) - 1)) * (norm / s);
          const float want = (code >> bits) ? -mag : mag;
          mismatched += std::bit_cast<std::uint32_t>(want) != std::bit_cast<std::uint32_t>(y[i]);
        }
        CHECK_MESSAGE(mismatched == 0, spec);
      }
    }
  }

  TEST_CASE("encoders reuse buffers and reject wrong sizes") {
    auto c = make_codec("topk:0.01|qsgd:4:biased");
    auto enc = c->make_encoder(10000);
    auto x = gaussian(10000, 9);
    Bytes b;
    enc->encode(x, {}, b);
    const auto* p = b.data();
    const auto cap = b.capacity();
    for (int r = 0; r < 5; ++r) enc->encode(x, {0, static_cast<std::uint64_t>(r), 0}, b);
    CHECK(b.data() == p);
    CHECK(b.capacity() == cap);
    std::vector<float> wrong(9999);
    CHECK_THROWS_AS(enc->encode(wrong, {}, b), rumor::CodecError);
    auto dec = c->make_decoder(10000);
    CHECK_THROWS_AS(dec->decode(b, {}, wrong), rumor::CodecError);
  }
}
