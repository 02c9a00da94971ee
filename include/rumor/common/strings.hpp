#pragma once
// Small string helpers for user-facing messages.
#include <string>
#include <string_view>
#include <vector>

namespace rumor {

// Edit (Levenshtein) distance between two strings.
std::size_t edit_distance(std::string_view a, std::string_view b);

// The candidate closest to `word` by edit distance (empty when there are none).
std::string nearest(std::string_view word, const std::vector<std::string>& candidates);

// "a, b, c"
std::string join(const std::vector<std::string>& items, std::string_view sep = ", ");

// Line (1-based) and column (1-based) of a byte offset in text.
std::pair<int, int> line_column(std::string_view text, std::size_t offset);

// "source:line:column: JSON syntax error: ..." for a parser error at byte `byte` (1-based,
// as nlohmann reports it) whose message is `what`.
std::string json_syntax_error(std::string_view text, std::size_t byte, std::string_view what,
                              const std::string& source);

}  // namespace rumor
