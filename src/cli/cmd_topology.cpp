#include "commands.hpp"
namespace rumor::cli {
void add_topology_commands(CLI::App&) {}
}
