// Raw fp32 values read in place (Decoder::raw_values, raw_values.hpp) against the reference:
// the payload decoded into a float vector, then the same arithmetic element by element.
#include <doctest/doctest.h>

#include <bit>
#include <cstring>

#include "helpers.hpp"
#include "rumor/codec/raw_values.hpp"

using namespace rumor::codec;
using namespace rumor::codec::test;

namespace {

std::uint32_t bits(float v) {
  return std::bit_cast<std::uint32_t>(v);
}

Bytes encoded(const Codec& c, std::span<const float> x, const CodecContext& ctx) {
  Bytes b;
  c.make_encoder(x.size())->encode(x, ctx, b);
  return b;
}

}  // namespace

TEST_SUITE("codec") {
  TEST_CASE("raw_values: fp32 payloads are viewed in place, every other codec decodes") {
    const std::size_t d = 1001;
    const auto x = gaussian(d, 11);
    const CodecContext ctx{7, 3, 2};
    for (const char* spec : {"fp32", "ef|fp32"}) {
      CAPTURE(std::string(spec));
      auto c = make_codec(spec);
      const Bytes b = encoded(*c, x, ctx);
      const auto raw = c->make_decoder(d)->raw_values(b, ctx);
      REQUIRE(raw.size() == 4 * d);
      CHECK(raw.data() == b.data() + 10);  // in place: no copy
      for (std::size_t i = 0; i < d; ++i) REQUIRE(bits(raw_at(raw, i)) == bits(x[i]));
      // Malformed payloads throw as decode() does.
      Bytes short_b(b.begin(), b.end() - 1), long_b = b, tag_b = b;
      long_b.push_back(0);
      tag_b[0] ^= 0xff;
      auto dec = c->make_decoder(d);
      for (const Bytes* bad : {&short_b, &long_b, &tag_b}) {
        CHECK_THROWS_AS(dec->raw_values(*bad, ctx), rumor::CodecError);
        std::vector<float> out(d);
        CHECK_THROWS_AS(dec->decode(*bad, ctx, out), rumor::CodecError);
      }
      CHECK_THROWS_AS(c->make_decoder(d + 1)->raw_values(b, ctx), rumor::CodecError);
    }
    for (const char* spec : {"fp16", "bf16", "qsgd:4", "sign", "topk:0.5", "randk:1.0"}) {
      CAPTURE(std::string(spec));
      auto c = make_codec(spec);
      CHECK(c->make_decoder(d)->raw_values(encoded(*c, x, ctx), ctx).empty());
    }
  }

  TEST_CASE("decode_add on raw fp32 gives the bits of decode, then multiply and add") {
    const std::size_t d = 1003;  // not a multiple of any vector width
    auto x = gaussian(d, 12);
    x[5] = -0.0f;
    x[6] = std::numeric_limits<float>::denorm_min();
    const CodecContext ctx{1, 2, 3};
    auto c = make_codec("fp32");
    const Bytes b = encoded(*c, x, ctx);
    auto dec = c->make_decoder(d);
    std::vector<float> decoded(d);
    dec->decode(b, ctx, decoded);
    for (float w : {1.0f, 0.3333333f, -2.5f}) {
      CAPTURE(w);
      auto acc = gaussian(d, 13), want = acc;
      dec->decode_add(b, ctx, acc, w);
      for (std::size_t i = 0; i < d; ++i) want[i] += w * decoded[i];
      for (std::size_t i = 0; i < d; ++i) REQUIRE(bits(acc[i]) == bits(want[i]));
    }
  }

  TEST_CASE("mix_raw gives the bits of scaling, then adding each input in turn") {
    for (std::size_t d :
         {std::size_t{1}, std::size_t{2047}, std::size_t{2048}, std::size_t{5000}}) {
      CAPTURE(d);
      std::vector<Bytes> payloads;
      std::vector<std::span<const std::uint8_t>> views;
      const float ws[] = {0.25f, 1.0f, 0.3333333f};
      auto c = make_codec("fp32");
      for (std::uint64_t j = 0; j < 3; ++j)
        payloads.push_back(encoded(*c, gaussian(d, 20 + j), {}));
      for (const auto& p : payloads) views.push_back(c->make_decoder(d)->raw_values(p, {}));
      // No input, one, two (passes of their own) and three; weights of 1 included.
      const float ones_first[] = {1.0f, 0.25f, -2.5f};
      for (const float* w : {ws, ones_first})
        for (std::size_t k = 0; k <= 3; ++k) {
          CAPTURE(k);
          auto acc = gaussian(d, 30), want = acc;
          const float scale = 0.4166667f;
          mix_raw(acc, scale, std::span(views).first(k), std::span(w, k));
          for (float& v : want) v *= scale;
          for (std::size_t j = 0; j < k; ++j) add_raw(want, views[j], w[j]);
          for (std::size_t i = 0; i < d; ++i) REQUIRE(bits(acc[i]) == bits(want[i]));
        }
      // add_raw itself against the decoded floats.
      std::vector<float> decoded(d), ref = gaussian(d, 31), got = ref;
      c->make_decoder(d)->decode(payloads[2], {}, decoded);
      for (std::size_t i = 0; i < d; ++i) ref[i] += ws[2] * decoded[i];
      add_raw(got, views[2], ws[2]);
      for (std::size_t i = 0; i < d; ++i) REQUIRE(bits(got[i]) == bits(ref[i]));
    }
    std::vector<float> acc(4);
    Bytes three(12);
    const std::span<const std::uint8_t> bad[] = {three};
    const float w[] = {1.0f};
    CHECK_THROWS_AS(mix_raw(acc, 1.0f, bad, w), rumor::CodecError);
    CHECK_THROWS_AS(add_raw(acc, three, 1.0f), rumor::CodecError);
    CHECK_THROWS_AS(mix_raw(acc, 1.0f, bad, {}), rumor::CodecError);
  }
}
