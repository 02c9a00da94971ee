#pragma once
// `rumor node --join HOST:PORT`: a peer started without the config file joins a running run
// in one of its topology's standby slots, with the settings a running node hands it over an
// authenticated link (net/join.hpp).
//
// What is handed over: the run's resolved config (topology written out, every default
// filled in) with each path-valued key as the config file first wrote it, never as the
// serving node resolved it on its machine; network.secret_file, the TLS certificate files and
// output.dir are left out (the secret itself never travels; where the joiner writes is its
// own choice: output.dir's default, runs/, or a --set), and the run id goes with it. The joiner
// resolves relative paths against its working directory (it stands in for the config file's
// folder: run it from a folder laid out like that one), takes network.secret_file from
// --secret-file, applies its own --set overrides (output.dir, TLS files, ...) and must arrive
// at the same run id; then it starts as that standby node would (the rejoin hand-over).
#include <functional>
#include <string>
#include <vector>

#include "rumor/config/config.hpp"
#include "rumor/run/run.hpp"
#include "rumor/topology/topology.hpp"

namespace rumor::run {

// The settings a running node hands a joiner (JSON text).
std::string join_settings(const config::Config& c);

// The joiner's config from settings received from `from` (hostile bytes: bounded size and
// nesting, a written-out topology only, checked like a config file, the sender's run id
// reproduced). `overrides` as --set. Throws ConfigError naming `from` and what was wrong.
config::Config config_from_join_settings(const std::string& settings, const std::string& from,
                                         const std::vector<std::string>& overrides);

// The standby slot a joiner takes: `wanted` (>= 0), or the first standby node that is not
// running. Throws ConfigError when `wanted` is not a standby node or runs, or no slot is free.
int pick_join_slot(const Topology& t, int wanted, const std::function<bool(int)>& running);

struct JoinOptions {
  std::string address;      // HOST:PORT of a running node of the run
  std::string secret_file;  // the run secret
  int id = -1;              // the standby slot to take; -1: the first free one
  std::vector<std::string> overrides;
  int threads = 1;
};
// Asks the node at o.address for the run's settings, picks a slot and runs as that node.
RunResult join_run(const JoinOptions& o);

}  // namespace rumor::run
