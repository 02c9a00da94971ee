// Spec-string and JSON parsing, and the list of codec stages (stage_entry.hpp).
#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>
#include <vector>

#include "spec.hpp"
#include "stage_entry.hpp"

namespace rumor::codec {
namespace detail {

const std::vector<StageEntry>& stage_registry() {
#define RUMOR_STAGE_ENTRY(name) name##_stage(),
  static const std::vector<StageEntry> all = {RUMOR_CODEC_STAGES(RUMOR_STAGE_ENTRY)};
#undef RUMOR_STAGE_ENTRY
  return all;
}

const StageEntry* find_stage(std::string_view name) {
  for (const auto& e : stage_registry()) {
    if (e.name == name) return &e;
  }
  return nullptr;
}

}  // namespace detail

namespace {

using detail::ParsedSpec;
using detail::StageArgs;
using detail::StageEntry;
using detail::StageRole;

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

// Names of the registered stages with `role` (all when null), comma separated.
std::string stage_names(const StageRole* role, const char* sep = ", ") {
  std::string out;
  for (const auto& e : detail::stage_registry()) {
    if (role && e.role != *role) continue;
    out += (out.empty() ? "" : sep) + std::string(e.name);
  }
  return out;
}

// Collects the stages of one spec; the roles decide where each may stand.
class SpecBuilder {
 public:
  SpecBuilder(std::string_view spec, bool ef) : spec_(spec) { p_.ef = ef; }

  void add(StageArgs& s, std::size_t n) {
    if (whole_) bad(spec_, whole_name_ + " must be the only stage (after an optional ef|)");
    if (s.name() == "ef") bad(spec_, "ef may appear only once, as the first stage");
    const StageEntry* e = detail::find_stage(s.name());
    if (!e) {
      bad(spec_, "unknown codec \"" + s.name() + "\"; valid names: " + stage_names(nullptr) +
                     " (and ef| in front)");
    }
    if (e->role == StageRole::kSparsifier && n > 0) {
      bad(spec_, s.name() + " must come first in a chain (one sparsifier per chain)");
    }
    if (e->role == StageRole::kStandalone && n > 0) {
      bad(spec_, s.name() + " must be the only stage (after an optional ef|)");
    }
    if (e->role == StageRole::kValue && have_value_) {
      bad(spec_, "only one value codec per chain (got a second: " + s.name() + ")");
    }
    s.expect(e->max_numbers, e->flags, e->options, e->usage);
    detail::StageBuild b = e->build(s);
    switch (e->role) {
      case StageRole::kSparsifier:
        p_.sparsifier = std::move(b.sparsifier);
        implied_ = b.implied_value;
        implied_by_ = s.name();
        break;
      case StageRole::kStandalone:
        whole_ = std::move(b.codec);
        whole_name_ = s.name();
        break;
      case StageRole::kValue:
        have_value_ = true;
        p_.value = std::move(b.value);
        break;
    }
  }

  std::shared_ptr<const Codec> finish() {
    if (whole_) return whole_(p_.ef);
    if (!implied_.empty()) {
      if (p_.value) {
        bad(spec_, implied_by_ + ":...:" + implied_ + " and a later value stage; use " +
                       implied_by_ + ":RATIO|" + implied_);
      }
      StageArgs args(spec_, implied_);
      p_.value = detail::find_stage(implied_)->build(args).value;
    }
    return detail::build_chain(p_);
  }

 private:
  std::string_view spec_;
  ParsedSpec p_;
  bool have_value_ = false;
  std::string implied_, implied_by_;
  std::function<std::shared_ptr<const Codec>(bool)> whole_;
  std::string whole_name_;
};

}  // namespace

std::string codec_help() {
  std::string out;
  for (const auto& e : detail::stage_registry()) {
    std::string usage(e.usage);
    usage.resize(std::max<std::size_t>(usage.size() + 1, 34), ' ');
    out += "  " + usage + std::string(e.help) + "\n";
  }
  const StageRole sparsifier = StageRole::kSparsifier, value = StageRole::kValue;
  out += "  chains: [" + stage_names(&sparsifier, "|") + "] then one of " + stage_names(&value) +
         ", e.g. topk:0.01|qsgd:4:biased; ef|CHAIN adds error feedback\n"
         "  a number with '.' or an exponent is a ratio in (0, 1], an integer is a count\n";
  return out;
}

std::vector<CodecStageInfo> codec_stages() {
  std::vector<CodecStageInfo> out;
  for (const auto& e : detail::stage_registry()) {
    CodecStageInfo info{std::string(e.name),
                        std::string(e.usage),
                        std::string(e.help),
                        e.role == StageRole::kValue,
                        {}};
    for (auto ex : e.examples) info.examples.emplace_back(ex);
    out.push_back(std::move(info));
  }
  return out;
}

std::shared_ptr<const Codec> make_codec(std::string_view spec_in) {
  const std::string spec = trim(spec_in);
  if (spec.empty()) bad(spec, "empty spec");
  auto stages = split(spec, '|');
  std::size_t i = 0;
  if (stages[0] == "ef") {
    i = 1;
    if (stages.size() == 1) bad(spec, "ef| must be followed by a codec, e.g. ef|topk:0.01");
  }
  SpecBuilder builder(spec, i == 1);
  for (std::size_t n = 0; i < stages.size(); ++i, ++n) {
    if (stages[i].empty()) bad(spec, "empty stage (stray '|')");
    StageArgs s(spec, stages[i]);
    builder.add(s, n);
  }
  return builder.finish();
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
