#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "helpers.hpp"

using namespace rumor::codec;

namespace {
std::string error_of(const std::string& spec) {
  try {
    make_codec(spec);
  } catch (const rumor::ConfigError& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST_SUITE("codec") {
  TEST_CASE("spec strings parse to canonical names that parse back") {
    struct Case {
      const char* in;
      const char* canonical;
    } cases[] = {{"fp32", "fp32"},
                 {" fp16 ", "fp16"},
                 {"bf16", "bf16"},
                 {"qsgd:4", "qsgd:4"},
                 {"qsgd:4:biased", "qsgd:4:biased"},
                 {"qsgd:2:chunk=128", "qsgd:2:chunk=128"},
                 {"sign", "sign"},
                 {"sign:chunk=64", "sign:chunk=64"},
                 {"topk:0.01", "topk:0.01"},
                 {"topk:100", "topk:100"},
                 {"topk:1e-3", "topk:0.001"},
                 {"topk:1.0", "topk:1.0"},
                 {"topk:0.01:fp16", "topk:0.01|fp16"},
                 {"topk:0.01|qsgd:4:biased", "topk:0.01|qsgd:4:biased"},
                 {"topk:0.01|sign", "topk:0.01|sign"},
                 {"topk:0.01|fp32", "topk:0.01"},
                 {"randk:0.01:unbiased", "randk:0.01:unbiased"},
                 {"ef|topk:0.01", "ef|topk:0.01"},
                 {"ef | topk:0.01 | sign", "ef|topk:0.01|sign"},
                 {"sketch", "sketch:5:0.003:0.01"},
                 {"sketch:7:10000:1000", "sketch:7:10000:1000"},
                 {"ef|sketch:5:0.05", "ef|sketch:5:0.05:0.01"},
                 {"sketch:3:64:8:linear", "sketch:3:64:8:linear"},
                 {"sketch:exact", "sketch:5:0.003:0.01:exact"}};
    for (const auto& c : cases) {
      const std::string spec_s = c.in;
      CAPTURE(spec_s);
      auto codec = make_codec(c.in);
      CHECK(codec->name() == c.canonical);
      CHECK(make_codec(codec->name())->name() == c.canonical);
    }
  }

  TEST_CASE("JSON form") {
    auto a = make_codec(nlohmann::json::parse(R"({"chain": ["topk:0.01", "sign"]})"));
    CHECK(a->name() == "topk:0.01|sign");
    auto b = make_codec(nlohmann::json::parse(
        R"({"chain": ["topk:0.01", "qsgd:4:biased"], "error_feedback": true})"));
    CHECK(b->name() == "ef|topk:0.01|qsgd:4:biased");
    CHECK(b->error_feedback());
    CHECK(make_codec(nlohmann::json("qsgd:8"))->name() == "qsgd:8");
    CHECK_THROWS_AS(make_codec(nlohmann::json::parse(R"({"chain": [], "x": 1})")),
                    rumor::ConfigError);
    CHECK_THROWS_WITH_AS(make_codec(nlohmann::json::parse(R"({"chian": ["fp32"]})")),
                         doctest::Contains("valid keys: chain, error_feedback"),
                         rumor::ConfigError);
    CHECK_THROWS_AS(make_codec(nlohmann::json(3)), rumor::ConfigError);
  }

  TEST_CASE("bad specs give errors that say what is valid") {
    CHECK(error_of("topc:0.01").find("unknown codec \"topc\"") != std::string::npos);
    CHECK(error_of("topc:0.01").find("fp32, fp16, bf16, qsgd, sign, topk, randk, sketch") !=
          std::string::npos);
    CHECK(error_of("topc:0.01").find("qsgd:BITS[:biased]") != std::string::npos);  // help text
    CHECK(error_of("topk:1.5").find("(0, 1]") != std::string::npos);
    CHECK(error_of("topk:0").find("integer in [1,") != std::string::npos);
    CHECK(error_of("topk").find("needs a ratio or a count") != std::string::npos);
    CHECK(error_of("qsgd:9").find("[1, 8]") != std::string::npos);
    CHECK(error_of("qsgd").find("needs BITS") != std::string::npos);
    CHECK(error_of("qsgd:4:unbiased").find("unknown flag \"unbiased\"") != std::string::npos);
    CHECK(error_of("qsgd:4:chunk=0").find("[1, 16777216]") != std::string::npos);
    CHECK(error_of("sign:size=3").find("unknown option \"size\"") != std::string::npos);
    CHECK(error_of("sketch:1").find("[3, 32]") != std::string::npos);
    CHECK(error_of("sketch:linear:exact").find("one of exact, linear") != std::string::npos);
    CHECK(error_of("sign|topk:0.1").find("must come first") != std::string::npos);
    CHECK(error_of("topk:0.1|randk:0.5").find("must come first") != std::string::npos);
    CHECK(error_of("qsgd:4|sign").find("only one value codec") != std::string::npos);
    CHECK(error_of("topk:0.1|sketch").find("only stage") != std::string::npos);
    CHECK(error_of("ef").find("must be followed") != std::string::npos);
    CHECK(error_of("fp32|ef").find("only once") != std::string::npos);
    CHECK(error_of("topk:0.1||sign").find("empty stage") != std::string::npos);
    CHECK(error_of("").find("empty spec") != std::string::npos);
    CHECK(error_of("fp16:3").find("too many") != std::string::npos);
  }

  TEST_CASE("declared properties") {
    CHECK(make_codec("fp32")->unbiased());
    CHECK(make_codec("fp32")->mergeable());
    CHECK(make_codec("sketch:linear")->mergeable());
    CHECK_FALSE(make_codec("sketch")->mergeable());
    CHECK_FALSE(make_codec("topk:0.1")->mergeable());
    CHECK(make_codec("qsgd:4")->unbiased());
    CHECK_FALSE(make_codec("qsgd:4")->contractive());
    CHECK(make_codec("qsgd:4:biased")->contractive());
    CHECK(make_codec("randk:0.1:unbiased")->unbiased());
    CHECK(make_codec("randk:0.1")->contractive());
    CHECK(make_codec("topk:0.01|sign")->contractive());
    CHECK_FALSE(make_codec("topk:0.01|qsgd:4")->contractive());  // unbiased stage unscaled
    CHECK_FALSE(make_codec("topk:0.01")->fixed_size());
    CHECK(make_codec("topk:0.01")->sparse());
    CHECK(make_codec("topk:0.01")->delta(1000) == doctest::Approx(0.01));
    // QTop-k: delta = (k/d) / (1 + min(k/s^2, sqrt(k)/s)), k = 100, s = 15.
    CHECK(make_codec("topk:0.01|qsgd:4:biased")->delta(10000) ==
          doctest::Approx(0.01 / (1.0 + std::min(100.0 / 225.0, 10.0 / 15.0))));
    CHECK(make_codec("sign")->delta(100) == doctest::Approx(0.01));
  }

  TEST_CASE("every registered stage: examples round-trip, reject damage, and appear in help") {
    const auto stages = codec_stages();
    REQUIRE(stages.size() >= 8);
    const std::string unknown = error_of("no-such-codec");
    for (const auto& st : stages) {
      CAPTURE(st.name);
      CHECK(codec_help().find(st.usage) != std::string::npos);
      CHECK(unknown.find(st.name) != std::string::npos);
      REQUIRE_FALSE(st.examples.empty());
      for (const auto& spec : st.examples) {
        CAPTURE(spec);
        auto c = make_codec(spec);
        CHECK(make_codec(c->name())->name() == c->name());
        const std::size_t d = 301;
        std::vector<float> x(d), sent(d), out(d);
        for (std::size_t i = 0; i < d; ++i) x[i] = static_cast<float>((i * 37) % 19) - 9.0f;
        Bytes b;
        const std::size_t n = c->make_encoder(d)->encode(x, {5, 6, 7}, b, sent);
        CHECK(n == b.size());
        CHECK(n <= c->max_encoded_size(d));
        if (c->fixed_size()) CHECK(n == c->max_encoded_size(d));
        auto dec = c->make_decoder(d);
        dec->decode(b, {5, 6, 7}, out);
        CHECK(out == sent);
        // Every truncation and one extra byte are refused.
        for (std::size_t cut = 0; cut < b.size(); cut += 1 + b.size() / 64) {
          CHECK_THROWS_AS(dec->decode(ByteView(b.data(), cut), {5, 6, 7}, out), rumor::CodecError);
        }
        Bytes longer = b;
        longer.push_back(0);
        CHECK_THROWS_AS(dec->decode(longer, {5, 6, 7}, out), rumor::CodecError);
        // A receiver of another dimension refuses it.
        std::vector<float> other(d + 1);
        CHECK_THROWS_AS(c->make_decoder(d + 1)->decode(b, {5, 6, 7}, other), rumor::CodecError);
      }
    }
  }

  TEST_CASE("a stage's unknown flag or option error quotes its registered usage") {
    for (const auto& st : codec_stages()) {
      CAPTURE(st.name);
      CHECK(error_of(st.name + ":zzz").find("(usage: " + st.usage + ")") != std::string::npos);
    }
  }
}
