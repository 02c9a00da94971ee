#pragma once
// Experiment configuration (formats.md): a JSON document in which every key has a default.
// The resolved config is the user's file merged over the defaults, with --set overrides
// applied and the topology read in; nodes started independently resolve the same document
// and so compute the same run id. Thread safety: immutable after construction.
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "rumor/common/option.hpp"

namespace rumor::config {

// One documented key: a declared option (rumor/common/option.hpp). The run's own keys
// are declared in config.cpp, each plug-in's in its registry entry.
using KeyInfo = Option;
// Every key, in documentation order.
const std::vector<KeyInfo>& keys();
// `rumor config keys`: one block per key.
std::string keys_help();

class Config {
 public:
  // Reads a config file, applies overrides ("a.b=value": value parsed as JSON, else taken
  // as a string) and validates. Throws ConfigError naming the file, the key and, for an
  // unknown key, the nearest valid one.
  static Config load(const std::string& path, const std::vector<std::string>& overrides = {});
  // Same from a JSON value (`origin` names it in messages; relative paths in it resolve
  // against `base_dir`, relative paths in overrides against the working directory).
  static Config from_json(const nlohmann::json& user, const std::string& origin,
                          const std::string& base_dir = ".",
                          const std::vector<std::string>& overrides = {});

  // The resolved document: defaults filled in, topology inlined as JSON.
  const nlohmann::json& json() const { return resolved_; }
  // Value at a dotted path; throws ConfigError when absent.
  const nlohmann::json& at(const std::string& path) const;
  template <typename T>
  T get(const std::string& path) const {
    return at(path).get<T>();
  }

  // name + "-s<seed>-" + first 8 hex digits of SHA-256 of the resolved document.
  const std::string& run_id() const { return run_id_; }
  // output.dir/<run id>
  std::string run_dir() const;
  const std::string& origin() const { return origin_; }
  // Each path-valued key (path_keys()) as first written, before it was made absolute; a
  // run's config.json records them so that its run id does not depend on where files are.
  const nlohmann::json& paths_as_written() const { return paths_as_written_; }

 private:
  nlohmann::json resolved_;
  std::string run_id_;
  std::string origin_;
  nlohmann::json paths_as_written_ = nlohmann::json::object();
};

// Keys whose string values name files or folders (data.dataset only as csv:FILE or
// idx:DIR). Relative ones in a config file resolve against the file's folder, ones given
// as overrides (--set) against the working directory; the resolved config holds them
// absolute. The topology, when a file name, follows the same rule.
const std::vector<std::string>& path_keys();
// Overrides written in a file rather than typed (a comparison grid's axes): their relative
// paths made absolute against `dir`, the file's folder. Others are returned unchanged.
std::vector<std::string> anchor_overrides(const std::vector<std::string>& overrides,
                                          const std::string& dir);

// Applies one "a.b=value" override to a JSON document (creating objects on the way).
// Throws ConfigError on a malformed override.
void apply_override(nlohmann::json& doc, const std::string& assignment);

// Hex SHA-256 of a string (OpenSSL).
std::string sha256_hex(const std::string& data);

}  // namespace rumor::config
