#pragma once
// Each command group registers its CLI11 subcommands here; main.cpp only wires them.
#include <CLI/CLI.hpp>

namespace rumor::cli {

// Global options, set before any subcommand runs.
struct Globals {
  int threads = 1;
  std::string log_level = "info";
};
const Globals& globals();

void add_topology_commands(CLI::App& app);

// `rumor bench ...`: each module adds its own benchmark under the bench subcommand.

}  // namespace rumor::cli
