// Spec-string and JSON parsing: the codec registry.
#include <cctype>
#include <charconv>
#include <cmath>
#include <nlohmann/json.hpp>
#include <vector>

#include "spec.hpp"

namespace rumor::codec {
namespace {

using detail::Amount;
using detail::ParsedSpec;
using detail::Sparsifier;

const char* const kNames = "fp32, fp16, bf16, qsgd, sign, topk, randk, sketch (and ef| in front)";

[[noreturn]] void bad(std::string_view spec, const std::string& what) {
  throw ConfigError("codec \"" + std::string(spec) + "\": " + what + "\nvalid codecs:\n" +
                    codec_help());
}

std::string trim(std::string_view s) {
  std::size_t a = 0, b = s.size();
  while (a < b && std::isspace(static_cast<unsigned char>(s[a]))) ++a;
  while (b > a && std::isspace(static_cast<unsigned char>(s[b - 1]))) --b;
  return std::string(s.substr(a, b - a));
}

std::vector<std::string> split(std::string_view s, char sep) {
  std::vector<std::string> out;
  std::size_t start = 0;
  for (;;) {
    const std::size_t p = s.find(sep, start);
    out.push_back(trim(s.substr(start, p == std::string_view::npos ? p : p - start)));
    if (p == std::string_view::npos) break;
    start = p + 1;
  }
  return out;
}

bool is_count(const std::string& a) {
  return !a.empty() && std::all_of(a.begin(), a.end(), [](char c) { return c >= '0' && c <= '9'; });
}
bool is_number(const std::string& a) {
  if (a.empty()) return false;
  double v;
  auto res = std::from_chars(a.data(), a.data() + a.size(), v);
  return res.ec == std::errc() && res.ptr == a.data() + a.size();
}

std::uint64_t parse_count(std::string_view spec, const std::string& stage, const std::string& a,
                          std::uint64_t lo, std::uint64_t hi) {
  std::uint64_t v = 0;
  auto res = std::from_chars(a.data(), a.data() + a.size(), v);
  if (!is_count(a) || res.ec != std::errc() || v < lo || v > hi) {
    bad(spec, stage + ": \"" + a + "\" must be an integer in [" + std::to_string(lo) + ", " +
                  std::to_string(hi) + "]");
  }
  return v;
}

// A ratio (has '.' or an exponent) in (0, 1], or a count >= 1.
Amount parse_amount(std::string_view spec, const std::string& stage, const std::string& a) {
  Amount out;
  if (is_count(a)) {
    out.count = parse_count(spec, stage, a, 1, 0xffffffffULL);
    return out;
  }
  if (!is_number(a)) {
    bad(spec, stage + ": \"" + a + "\" is not a ratio in (0, 1] (e.g. 0.01) or a count (e.g. 100)");
  }
  double v = 0;
  std::from_chars(a.data(), a.data() + a.size(), v);
  if (!(v > 0.0 && v <= 1.0)) {
    bad(spec, stage + ": ratio " + a + " must be in (0, 1] (an integer is a count)");
  }
  out.ratio = v;
  return out;
}

struct Stage {
  std::string name;
  std::vector<std::string> pos;                           // positional args
  std::vector<std::string> flags;                         // words
  std::vector<std::pair<std::string, std::string>> opts;  // key=value
};

Stage parse_stage(std::string_view spec, const std::string& text) {
  auto parts = split(text, ':');
  Stage s;
  s.name = parts[0];
  for (std::size_t i = 1; i < parts.size(); ++i) {
    const std::string& a = parts[i];
    if (a.empty()) bad(spec, "empty argument in stage \"" + text + "\"");
    const auto eq = a.find('=');
    if (eq != std::string::npos) {
      s.opts.emplace_back(a.substr(0, eq), a.substr(eq + 1));
    } else if (is_number(a)) {
      s.pos.push_back(a);
    } else {
      s.flags.push_back(a);
    }
  }
  return s;
}

void expect_args(std::string_view spec, const Stage& s, std::size_t max_pos,
                 std::initializer_list<const char*> flags, std::initializer_list<const char*> opts,
                 const char* usage) {
  if (s.pos.size() > max_pos) {
    bad(spec, s.name + ": too many numeric arguments (usage: " + usage + ")");
  }
  for (const auto& f : s.flags) {
    if (std::find_if(flags.begin(), flags.end(), [&](const char* v) { return f == v; }) ==
        flags.end()) {
      bad(spec, s.name + ": unknown flag \"" + f + "\" (usage: " + usage + ")");
    }
  }
  for (const auto& opt : s.opts) {
    const std::string& k = opt.first;  // (clang 14 cannot capture structured bindings)
    if (std::find_if(opts.begin(), opts.end(), [&](const char* o) { return k == o; }) ==
        opts.end()) {
      bad(spec, s.name + ": unknown option \"" + k + "\" (usage: " + usage + ")");
    }
  }
}

bool has_flag(const Stage& s, const char* f) {
  return std::find(s.flags.begin(), s.flags.end(), f) != s.flags.end();
}

std::uint32_t chunk_opt(std::string_view spec, const Stage& s, std::uint32_t def) {
  for (const auto& [k, v] : s.opts) {
    if (k == "chunk") return static_cast<std::uint32_t>(parse_count(spec, s.name, v, 1, 1u << 24));
  }
  return def;
}

}  // namespace

std::string codec_help() {
  return "  fp32 | fp16 | bf16                plain casts (bf16/fp16 round to nearest even)\n"
         "  qsgd:BITS[:biased][:chunk=N]      QSGD, 2^BITS-1 levels, BITS 1..8, one norm per chunk "
         "(default 512); biased = contractive scaling\n"
         "  sign[:chunk=N]                    scaled sign, 1 bit + one fp32 scale per chunk "
         "(default 1024)\n"
         "  topk:RATIO|K[:fp16]               exact top-k by magnitude, varint indices\n"
         "  randk:RATIO|K[:unbiased]          random-k, indices from (seed, round, sender)\n"
         "  sketch[:ROWS[:COLS[:K]]]          Count-Sketch, default sketch:5:0.002:0.001 "
         "(COLS, K: ratio of d or count; ROWS 3..32)\n"
         "  chains: [topk|randk] then one of fp32, fp16, bf16, qsgd, sign, e.g. "
         "topk:0.01|qsgd:4:biased; ef|CHAIN adds error feedback\n"
         "  a number with '.' or an exponent is a ratio in (0, 1], an integer is a count\n";
}

std::shared_ptr<const Codec> make_codec(std::string_view spec_in) {
  const std::string spec = trim(spec_in);
  if (spec.empty()) bad(spec, "empty spec");
  auto stages = split(spec, '|');
  ParsedSpec p;
  std::size_t i = 0;
  if (stages[0] == "ef") {
    p.ef = true;
    i = 1;
    if (stages.size() == 1) bad(spec, "ef| must be followed by a codec, e.g. ef|topk:0.01");
  }
  bool have_value = false;
  bool topk_fp16 = false;
  for (std::size_t n = 0; i < stages.size(); ++i, ++n) {
    if (stages[i].empty()) bad(spec, "empty stage (stray '|')");
    const Stage s = parse_stage(spec, stages[i]);
    if (p.sketch) bad(spec, "sketch must be the only stage (after an optional ef|)");
    if (s.name == "ef") bad(spec, "ef may appear only once, as the first stage");
    if (s.name == "topk" || s.name == "randk") {
      if (n > 0) bad(spec, s.name + " must come first in a chain (one sparsifier per chain)");
      const char* usage = s.name == "topk" ? "topk:RATIO|K[:fp16]" : "randk:RATIO|K[:unbiased]";
      if (s.name == "topk") {
        expect_args(spec, s, 1, {"fp16"}, {}, usage);
        p.sparsifier = Sparsifier::kTopk;
        topk_fp16 = has_flag(s, "fp16");
      } else {
        expect_args(spec, s, 1, {"unbiased"}, {}, usage);
        p.sparsifier = Sparsifier::kRandk;
        p.randk_unbiased = has_flag(s, "unbiased");
      }
      if (s.pos.empty()) bad(spec, s.name + " needs a ratio or a count (usage: " + usage + ")");
      p.k = parse_amount(spec, s.name, s.pos[0]);
      continue;
    }
    if (s.name == "sketch") {
      if (n > 0) bad(spec, "sketch must be the only stage (after an optional ef|)");
      expect_args(spec, s, 3, {}, {}, "sketch[:ROWS[:COLS[:K]]]");
      p.sketch = true;
      if (s.pos.size() > 0) {
        p.rows = static_cast<std::uint32_t>(parse_count(spec, "sketch ROWS", s.pos[0], 3, 32));
      }
      if (s.pos.size() > 1) p.cols = parse_amount(spec, "sketch COLS", s.pos[1]);
      if (s.pos.size() > 2) p.heavy = parse_amount(spec, "sketch K", s.pos[2]);
      if (p.cols.ratio <= 0 && p.cols.count > (1u << 26)) {
        bad(spec, "sketch COLS " + std::to_string(p.cols.count) + " is too large (max 2^26)");
      }
      continue;
    }
    if (have_value) bad(spec, "only one value codec per chain (got a second: " + s.name + ")");
    have_value = true;
    if (s.name == "fp32" || s.name == "fp16" || s.name == "bf16") {
      expect_args(spec, s, 0, {}, {}, s.name.c_str());
      p.value = s.name == "fp32"   ? detail::make_fp32()
                : s.name == "fp16" ? detail::make_fp16()
                                   : detail::make_bf16();
    } else if (s.name == "qsgd") {
      const char* usage = "qsgd:BITS[:biased][:chunk=N]";
      expect_args(spec, s, 1, {"biased"}, {"chunk"}, usage);
      if (s.pos.empty()) bad(spec, std::string("qsgd needs BITS (usage: ") + usage + ")");
      const int bits = static_cast<int>(parse_count(spec, "qsgd BITS", s.pos[0], 1, 8));
      p.value = detail::make_qsgd(bits, has_flag(s, "biased"), chunk_opt(spec, s, 512));
    } else if (s.name == "sign") {
      expect_args(spec, s, 0, {}, {"chunk"}, "sign[:chunk=N]");
      p.value = detail::make_sign(chunk_opt(spec, s, 1024));
    } else {
      bad(spec, "unknown codec \"" + s.name + "\"; valid names: " + kNames);
    }
  }
  if (topk_fp16) {
    if (p.value) bad(spec, "topk:...:fp16 and a later value stage; use topk:RATIO|fp16");
    p.value = detail::make_fp16();
  }
  return detail::build_codec(p);
}

std::shared_ptr<const Codec> make_codec(const nlohmann::json& j) {
  if (j.is_string()) return make_codec(j.get<std::string>());
  if (!j.is_object()) {
    throw ConfigError(
        "codec: expected a spec string or an object {\"chain\": [...], "
        "\"error_feedback\": false}, got " +
        j.dump());
  }
  std::string spec;
  bool ef = false;
  for (const auto& [key, val] : j.items()) {
    if (key == "chain") {
      if (val.is_string()) {
        spec = val.get<std::string>();
      } else if (val.is_array() && !val.empty()) {
        for (const auto& st : val) {
          if (!st.is_string())
            throw ConfigError("codec: chain entries must be strings, got " + st.dump());
          if (!spec.empty()) spec += "|";
          spec += st.get<std::string>();
        }
      } else {
        throw ConfigError("codec: \"chain\" must be a non-empty array of stage strings, got " +
                          val.dump());
      }
    } else if (key == "error_feedback") {
      if (!val.is_boolean()) throw ConfigError("codec: \"error_feedback\" must be true or false");
      ef = val.get<bool>();
    } else {
      throw ConfigError("codec: unknown key \"" + key + "\"; valid keys: chain, error_feedback");
    }
  }
  if (spec.empty())
    throw ConfigError(
        "codec: object form needs \"chain\", e.g. {\"chain\": [\"topk:0.01\", \"sign\"]}");
  if (ef && spec.rfind("ef|", 0) != 0) spec = "ef|" + spec;
  return make_codec(spec);
}

}  // namespace rumor::codec
