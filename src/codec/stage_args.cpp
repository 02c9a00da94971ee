// Reading a stage's arguments (stage_entry.hpp): numbers, flags and key=value options.
#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>

#include "stage_entry.hpp"

namespace rumor::codec::detail {
namespace {

bool is_count(const std::string& a) {
  return !a.empty() && std::all_of(a.begin(), a.end(), [](char c) { return c >= '0' && c <= '9'; });
}
bool is_number(const std::string& a) {
  if (a.empty()) return false;
  double v;
  auto res = std::from_chars(a.data(), a.data() + a.size(), v);
  return res.ec == std::errc() && res.ptr == a.data() + a.size();
}

bool listed(const std::vector<std::string_view>& list, const std::string& v) {
  return std::find(list.begin(), list.end(), v) != list.end();
}

}  // namespace

std::size_t Amount::resolve(std::size_t d) const {
  std::size_t k;
  if (ratio > 0.0) {
    k = static_cast<std::size_t>(std::llround(ratio * static_cast<double>(d)));
  } else {
    k = static_cast<std::size_t>(count);
  }
  return std::clamp<std::size_t>(k, 1, std::max<std::size_t>(d, 1));
}

std::string Amount::str() const {
  if (ratio <= 0.0) return std::to_string(count);
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, ratio);
  std::string s(buf, res.ptr);
  if (s.find_first_of(".eE") == std::string::npos) s += ".0";  // keep it a ratio
  return s;
}

StageArgs::StageArgs(std::string_view spec, const std::string& text) : spec_(spec) {
  std::size_t start = 0;
  for (bool first = true;; first = false) {
    const std::size_t p = text.find(':', start);
    std::string part = text.substr(start, p == std::string::npos ? p : p - start);
    const auto b = part.find_first_not_of(" \t\r\n");
    const auto e = part.find_last_not_of(" \t\r\n");
    part = b == std::string::npos ? "" : part.substr(b, e - b + 1);
    if (first) {
      name_ = part;
    } else if (part.empty()) {
      bad("empty argument in stage \"" + text + "\"");
    } else if (const auto eq = part.find('='); eq != std::string::npos) {
      opts_.emplace_back(part.substr(0, eq), part.substr(eq + 1));
    } else if (is_number(part)) {
      pos_.push_back(part);
    } else {
      flags_.push_back(part);
    }
    if (p == std::string::npos) break;
    start = p + 1;
  }
}

void StageArgs::bad(const std::string& what) const {
  throw ConfigError("codec \"" + spec_ + "\": " + what + "\nvalid codecs:\n" + codec_help());
}

void StageArgs::expect(std::size_t max_numbers, const std::vector<std::string_view>& flags,
                       const std::vector<std::string_view>& options, std::string_view usage) {
  usage_ = std::string(usage);
  if (pos_.size() > max_numbers) {
    bad(name_ + ": too many numeric arguments (usage: " + usage_ + ")");
  }
  for (const auto& f : flags_) {
    if (!listed(flags, f)) bad(name_ + ": unknown flag \"" + f + "\" (usage: " + usage_ + ")");
  }
  for (const auto& opt : opts_) {
    if (!listed(options, opt.first)) {
      bad(name_ + ": unknown option \"" + opt.first + "\" (usage: " + usage_ + ")");
    }
  }
}

void StageArgs::require(std::size_t n, const std::string& what) const {
  if (pos_.size() < n) bad(name_ + " needs " + what + " (usage: " + usage_ + ")");
}

std::uint64_t StageArgs::count(std::size_t i, const std::string& what, std::uint64_t lo,
                               std::uint64_t hi) const {
  return integer(pos_.at(i), what, lo, hi);
}

std::uint64_t StageArgs::integer(const std::string& a, const std::string& what, std::uint64_t lo,
                                 std::uint64_t hi) const {
  std::uint64_t v = 0;
  auto res = std::from_chars(a.data(), a.data() + a.size(), v);
  if (!is_count(a) || res.ec != std::errc() || v < lo || v > hi) {
    bad(what + ": \"" + a + "\" must be an integer in [" + std::to_string(lo) + ", " +
        std::to_string(hi) + "]");
  }
  return v;
}

Amount StageArgs::amount(std::size_t i, const std::string& what) const {
  const std::string& a = pos_.at(i);
  Amount out;
  if (is_count(a)) {
    out.count = count(i, what, 1, 0xffffffffULL);
    return out;
  }
  double v = 0;
  std::from_chars(a.data(), a.data() + a.size(), v);  // a is a number (see the constructor)
  if (!(v > 0.0 && v <= 1.0)) {
    bad(what + ": ratio " + a + " must be in (0, 1] (an integer is a count)");
  }
  out.ratio = v;
  return out;
}

bool StageArgs::flag(std::string_view f) const {
  return std::find(flags_.begin(), flags_.end(), f) != flags_.end();
}

std::uint64_t StageArgs::option(std::string_view key, std::uint64_t def, std::uint64_t lo,
                                std::uint64_t hi) const {
  for (const auto& [k, v] : opts_) {
    if (k == key) return integer(v, name_, lo, hi);
  }
  return def;
}

}  // namespace rumor::codec::detail
