#pragma once
// A declared option: its dotted key, type, default, range and one-line help. Plug-ins
// declare theirs in their registry entries, next to their code; the config module
// validates every config against the declarations, fills in the defaults, and
// `rumor config keys` prints them. A default lives in its declaration only.
#include <limits>
#include <string>

#include <nlohmann/json.hpp>

namespace rumor {

struct Option {
  std::string path;  // dotted key, e.g. "method.gamma"
  std::string type;  // "int", "number", "string", "bool", "list", "string|object", "...|null",
                     // "number|auto" (a number, or the string "auto")
  nlohmann::json default_value;
  std::string help;
  // Numeric options: the accepted range, inclusive (so no count wraps and no size or
  // timeout is negative).
  double min = -std::numeric_limits<double>::infinity();
  double max = std::numeric_limits<double>::infinity();
};

}  // namespace rumor
