#pragma once
// Internal: the codec stage registry. Each stage (fp32, qsgd, topk, sketch, ...) is one entry
// that carries everything about it: its name, the arguments it takes (checked by the registry
// before `build` runs, with errors that list what is valid), a help line, example specs (used by
// the tests and the fuzz targets) and the factory of what it builds. The properties (unbiased,
// contractive, delta, sparse, fixed size, encoded size) live on the built object.
//
// Adding a stage: one file defining `StageEntry NAME_stage()` (see qsgd.cpp) and one line
// `X(NAME)` in RUMOR_CODEC_STAGES below. Nothing else names stages.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "rumor/codec/codec.hpp"
#include "stages.hpp"

// Every codec stage, in the order of help texts and error messages. The fuzz build reads the
// names from this list too (fuzz/codec/CMakeLists.txt): keep one `X(name)` per line, and add
// new ones above the closing comment so that adding a stage changes one line.
// clang-format off
#define RUMOR_CODEC_STAGES(X) \
  X(fp32)                     \
  X(fp16)                     \
  X(bf16)                     \
  X(qsgd)                     \
  X(sign)                     \
  X(topk)                     \
  X(randk)                    \
  X(sketch)                   \
  /* end of the stage list */
// clang-format on

namespace rumor::codec::detail {

// A ratio of d (ratio > 0) or a count.
struct Amount {
  double ratio = 0.0;
  std::uint64_t count = 0;
  std::size_t resolve(std::size_t d) const;  // in [1, d] for k; callers clamp as needed
  std::string str() const;
};

// Where a stage may stand in a spec: a chain is [sparsifier] then [value codec]; a
// standalone stage (sketch) is the whole codec.
enum class StageRole { kValue, kSparsifier, kStandalone };

// One stage as written, `name(':' arg)*`, with its arguments sorted into numbers, words
// (flags) and key=value options. Its readers throw ConfigError naming the spec and the stage.
class StageArgs {
 public:
  StageArgs(std::string_view spec, const std::string& text);
  const std::string& name() const { return name_; }
  std::size_t numbers() const { return pos_.size(); }
  // Refuses fewer than n numbers: "<name> needs <what> (usage: ...)".
  void require(std::size_t n, const std::string& what) const;
  // Number i as an integer in [lo, hi]; `what` names it in errors (e.g. "qsgd BITS").
  std::uint64_t count(std::size_t i, const std::string& what, std::uint64_t lo,
                      std::uint64_t hi) const;
  // Number i as a ratio in (0, 1] (has '.' or an exponent) or a count >= 1.
  Amount amount(std::size_t i, const std::string& what) const;
  bool flag(std::string_view f) const;
  // Option key=N as an integer in [lo, hi], or def when absent.
  std::uint64_t option(std::string_view key, std::uint64_t def, std::uint64_t lo,
                       std::uint64_t hi) const;
  [[noreturn]] void bad(const std::string& what) const;

  // Refuses more than max_numbers numbers and flags or options not listed.
  // The usage string errors quote. Set by the registry from the stage's entry.
  void expect(std::size_t max_numbers, const std::vector<std::string_view>& flags,
              const std::vector<std::string_view>& options, std::string_view usage);

 private:
  std::uint64_t integer(const std::string& a, const std::string& what, std::uint64_t lo,
                        std::uint64_t hi) const;
  std::string spec_;
  std::string usage_;
  std::string name_;
  std::vector<std::string> pos_;
  std::vector<std::string> flags_;
  std::vector<std::pair<std::string, std::string>> opts_;
};

// What a stage builds: exactly one of value, sparsifier or codec, by its role.
struct StageBuild {
  std::shared_ptr<const ValueCodec> value;
  std::shared_ptr<const Sparsifier> sparsifier;
  // A sparsifier's flag may stand for the value stage after it (topk:0.01:fp16 = topk|fp16).
  std::string implied_value;
  // Standalone: the whole codec, given whether error feedback wraps it.
  std::function<std::shared_ptr<const Codec>(bool ef)> codec;
};

struct StageEntry {
  std::string_view name;
  StageRole role;
  std::string_view usage;  // e.g. "qsgd:BITS[:biased][:chunk=N]"
  std::string_view help;   // one line: what it does
  // Arguments it accepts (validated before build): at most max_numbers numbers, these
  // flags and these key=value options.
  std::size_t max_numbers = 0;
  std::vector<std::string_view> flags;
  std::vector<std::string_view> options;
  // Whole codec specs that use this stage: every one is round-tripped by the tests and is
  // a fuzz target (fuzz/codec), so cover each payload layout the stage can produce.
  std::vector<std::string_view> examples;
  StageBuild (*build)(const StageArgs& args) = nullptr;
};

#define RUMOR_DECLARE_STAGE(name) StageEntry name##_stage();
RUMOR_CODEC_STAGES(RUMOR_DECLARE_STAGE)
#undef RUMOR_DECLARE_STAGE

const std::vector<StageEntry>& stage_registry();
// The entry called `name`, or null.
const StageEntry* find_stage(std::string_view name);

}  // namespace rumor::codec::detail
