#include <doctest/doctest.h>

#include <numbers>

#include "rumor/codec/codec.hpp"
#include "rumor/codec/reference_delta.hpp"

using namespace rumor::codec;

namespace {
constexpr std::size_t d = 20000;
}  // namespace

TEST_SUITE("codec") {
  TEST_CASE("reference_delta: what a codec removes from a normal vector") {
    auto at = [](const std::string& spec, std::size_t dim = d) {
      return reference_delta(*make_codec(spec), dim);
    };
    CHECK(at("fp32") == 1.0);  // lossless
    CHECK(at("fp16") > 0.99999);
    CHECK(at("fp16") < 1.0);
    // sign keeps (mean |x|)^2 / mean x^2 = 2/pi of a normal vector, far above its
    // worst-case bound 1/chunk.
    CHECK(at("sign") == doctest::Approx(2.0 / std::numbers::pi).epsilon(0.03));
    CHECK(make_codec("sign")->delta(d) < 0.001);
    // top-k keeps the energy of the largest tenth of normal values: 2(z phi(z) + Q(z)) at
    // z = 1.645, 0.439.
    CHECK(at("topk:0.1") == doctest::Approx(0.439).epsilon(0.03));
    // K random values: K/d.
    CHECK(at("randk:0.01") == doctest::Approx(0.01).epsilon(0.3));
    // A sketch's table names no heavy hitters in such a vector: it sends K random values.
    CHECK(at("sketch:5:0.002:0.001", 100000) == doctest::Approx(0.001).epsilon(0.4));
    CHECK(at("sketch:5:0.002:0.001", 100000) < at("sketch:5:0.002:0.01", 100000));
    // A property of (codec, d): the same figure every call.
    CHECK(at("randk:0.01") == at("randk:0.01"));
    CHECK(at("ef|topk:0.1") == at("topk:0.1"));
    CHECK(reference_delta(*make_codec("fp32"), 0) == 0.0);
    CHECK(at("fp32", 1) == 1.0);
  }
}
