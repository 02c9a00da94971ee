// rumor config keys: experiment config tools.
#include <iostream>

#include "commands.hpp"
#include "rumor/config/config.hpp"

namespace rumor::cli {

void add_config_commands(CLI::App& app) {
  auto* cfg = app.add_subcommand("config", "experiment config tools");
  cfg->require_subcommand(1);
  auto* keys = cfg->add_subcommand(
      "keys",
      "list every config key with its type, default and meaning\n\nExample:\n  rumor config keys");
  keys->callback([] { std::cout << config::keys_help(); });
}

}  // namespace rumor::cli
