#include <doctest/doctest.h>

#include <cstring>

#include "helpers.hpp"

using namespace rumor::codec;
using namespace rumor::codec::test;

namespace {

const char* const kSpecs[] = {"fp32",           "fp16",          "bf16",
                              "qsgd:4",         "qsgd:3:biased", "sign",
                              "topk:0.05",      "topk:20|fp16",  "topk:0.05|qsgd:2:biased",
                              "topk:0.05|sign", "randk:0.1",     "randk:0.1:unbiased|qsgd:4",
                              "sketch:5:50:10"};

// Decoding must either succeed or throw CodecError; never crash or throw something else.
void decode_any(Decoder& dec, const Bytes& b, std::vector<float>& out) {
  try {
    dec.decode(b, {1, 2, 3}, out);
  } catch (const rumor::CodecError&) {
  }
}

}  // namespace

TEST_SUITE("codec") {
  TEST_CASE("every truncation and every extension of a valid payload is rejected") {
    const std::size_t d = 333;
    auto x = gaussian(d, 90);
    for (const char* spec : kSpecs) {
      const std::string spec_s = spec;
      CAPTURE(spec_s);
      auto c = make_codec(spec);
      auto enc = c->make_encoder(d);
      auto dec = c->make_decoder(d);
      Bytes b;
      enc->encode(x, {1, 2, 3}, b);
      std::vector<float> out(d);
      dec->decode(b, {1, 2, 3}, out);
      for (std::size_t n = 0; n < b.size(); ++n) {
        Bytes t(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(n));
        REQUIRE_THROWS_AS(dec->decode(t, {1, 2, 3}, out), rumor::CodecError);
      }
      Bytes longer = b;
      longer.push_back(0);
      CHECK_THROWS_AS(dec->decode(longer, {1, 2, 3}, out), rumor::CodecError);
      // Another receiver dimension is refused.
      auto dec2 = c->make_decoder(d + 1);
      std::vector<float> out2(d + 1);
      CHECK_THROWS_AS(dec2->decode(b, {1, 2, 3}, out2), rumor::CodecError);
      // decode_add leaves the accumulator untouched on error.
      std::vector<float> acc(d, 1.0f);
      Bytes bad = b;
      bad[0] ^= 0xff;
      CHECK_THROWS_AS(dec->decode_add(bad, {1, 2, 3}, acc), rumor::CodecError);
      CHECK(std::all_of(acc.begin(), acc.end(), [](float v) { return v == 1.0f; }));
      // Single-byte corruptions anywhere: success or CodecError, nothing else.
      rumor::Rng rng(1);
      for (int t = 0; t < 300; ++t) {
        Bytes m = b;
        m[rng.below(m.size())] ^= static_cast<std::uint8_t>(1 + rng.below(255));
        decode_any(*dec, m, out);
      }
    }
  }

  TEST_CASE("header corruptions name what is wrong") {
    const std::size_t d = 100;
    auto x = gaussian(d, 91);
    std::vector<float> out(d);
    auto decode_err = [&](const char* spec, auto mutate) {
      auto c = make_codec(spec);
      Bytes b;
      c->make_encoder(d)->encode(x, {}, b);
      mutate(b);
      try {
        c->make_decoder(d)->decode(b, {}, out);
      } catch (const rumor::CodecError& e) {
        return std::string(e.what());
      }
      return std::string();
    };
    // Dimension field (bytes 1..4).
    CHECK(decode_err("fp32", [](Bytes& b) { b[1] = 99; }).find("dimension") != std::string::npos);
    // A receiver with other parameters: qsgd bits (byte 6).
    CHECK(decode_err("qsgd:4", [](Bytes& b) { b[6] = 3; }).find("qsgd bits") != std::string::npos);
    // NaN norm.
    CHECK(decode_err("qsgd:4", [](Bytes& b) {
            const float nan = std::nanf("");
            std::memcpy(b.data() + 16, &nan, 4);
          }).find("must be finite") != std::string::npos);
    // Negative sign scale.
    CHECK(decode_err("sign", [](Bytes& b) { b[17] |= 0x80; }).find("must be finite and >= 0") !=
          std::string::npos);
    // Non-zero padding bits after 100 sign bits.
    CHECK(decode_err("sign", [](Bytes& b) { b.back() |= 0x80; }).find("padding") !=
          std::string::npos);
    // topk: kept count k (bytes 5..8) and index byte count (9..12).
    CHECK(decode_err("topk:10", [](Bytes& b) { b[5] = 11; }).find("kept count") !=
          std::string::npos);
    CHECK(decode_err("topk:10", [](Bytes& b) { b[9] = 9; }).find("index byte count") !=
          std::string::npos);
  }

  TEST_CASE("topk index stream: out-of-range, overlong and leftover varints are rejected") {
    const std::size_t d = 100;
    auto c = make_codec("topk:3");
    auto dec = c->make_decoder(d);
    std::vector<float> out(d);
    // Build payloads by hand: [0x12][d][k][nbytes][varints][fp32 block: 0x01][k][3 floats].
    auto make = [&](std::vector<std::uint8_t> idx) {
      Bytes b{0x12};
      auto u32 = [&](std::uint32_t v) {
        for (int i = 0; i < 4; ++i) b.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
      };
      u32(d);
      u32(3);
      u32(static_cast<std::uint32_t>(idx.size()));
      b.insert(b.end(), idx.begin(), idx.end());
      b.push_back(0x01);
      u32(3);
      for (int i = 0; i < 12; ++i) b.push_back(0);
      return b;
    };
    CHECK_NOTHROW(dec->decode(make({0, 0, 97}), {}, out));  // indices 0, 1, 99
    CHECK_THROWS_WITH_AS(dec->decode(make({0, 0, 98}), {}, out), doctest::Contains("out of range"),
                         rumor::CodecError);
    CHECK_THROWS_WITH_AS(dec->decode(make({0x80, 0x80, 0x80, 0x80, 0x80, 0x01, 0, 0}), {}, out),
                         doctest::Contains("longer than 5 bytes"), rumor::CodecError);
    CHECK_THROWS_WITH_AS(dec->decode(make({0, 0, 1, 0}), {}, out), doctest::Contains("left over"),
                         rumor::CodecError);
    CHECK_THROWS_WITH_AS(dec->decode(make({0, 0x81, 0x81}), {}, out),
                         doctest::Contains("end early"), rumor::CodecError);
    // A huge gap that would wrap a 32-bit index.
    CHECK_THROWS_AS(dec->decode(make({0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0}), {}, out),
                    rumor::CodecError);
  }

  TEST_CASE("encoding non-finite input with a scaled codec is refused") {
    std::vector<float> x(10, 1.0f);
    x[3] = std::nanf("");
    Bytes b;
    CHECK_THROWS_AS(make_codec("qsgd:4")->make_encoder(10)->encode(x, {}, b), rumor::CodecError);
    CHECK_THROWS_AS(make_codec("sign")->make_encoder(10)->encode(x, {}, b), rumor::CodecError);
    CHECK_THROWS_AS(make_codec("fp32")->make_encoder(0), rumor::CodecError);
  }
}
