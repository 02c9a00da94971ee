#include "rumor/common/strings.hpp"

#include <algorithm>
#include <numeric>

namespace rumor {

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
  std::iota(prev.begin(), prev.end(), 0);
  for (std::size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t subst = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, subst});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string nearest(std::string_view word, const std::vector<std::string>& candidates) {
  // A candidate that the word extends (a typo at the end: "lrate" for "lr") wins outright.
  std::string longest_prefix;
  for (const auto& c : candidates)
    if (c.size() > longest_prefix.size() && c.size() >= 2 && word.substr(0, c.size()) == c &&
        word.size() > c.size() && word[c.size()] != '.')  // "method.gammma" is no "method"
      longest_prefix = c;
  if (!longest_prefix.empty()) return longest_prefix;
  std::string best;
  std::size_t best_d = static_cast<std::size_t>(-1);
  for (const auto& c : candidates) {
    const std::size_t d = edit_distance(word, c);
    if (d < best_d) {
      best_d = d;
      best = c;
    }
  }
  return best;
}

std::string join(const std::vector<std::string>& items, std::string_view sep) {
  std::string out;
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i) out += sep;
    out += items[i];
  }
  return out;
}

std::pair<int, int> line_column(std::string_view text, std::size_t offset) {
  int line = 1, column = 1;
  for (std::size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
  }
  return {line, column};
}

std::string json_syntax_error(std::string_view text, std::size_t byte, std::string_view what,
                              const std::string& source) {
  const auto [line, column] = line_column(text, byte > 0 ? byte - 1 : 0);
  // nlohmann's message repeats its own position; keep the part after "error: ".
  if (auto p = what.find("error: "); p != std::string_view::npos) what = what.substr(p + 7);
  return source + ":" + std::to_string(line) + ":" + std::to_string(column) +
         ": JSON syntax error: " + std::string(what);
}

}  // namespace rumor
