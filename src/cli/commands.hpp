#pragma once
// Each command group registers its CLI11 subcommands here; main.cpp only wires them.
#include <CLI/CLI.hpp>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "rumor/data/dataset.hpp"
#include "rumor/data/partition.hpp"

namespace rumor::cli {

// Global options, set before any subcommand runs.
struct Globals {
  int threads = 1;
  std::string log_level = "info";
};
const Globals& globals();

// The whole CLI on `argc`/`argv` (or `args`, args[0] the program name) from fresh globals:
// what main does after its BLAS checks. Returns the exit code. `rumor launch` calls it in
// the peers it forks.
int run(int argc, char** argv);
int run(const std::vector<std::string>& args);

// The top-level --help lists each subcommand with one line and an example (from `examples`,
// or the first command under "Example" in its description); the full text moves to the
// footer of the subcommand's own --help.
void one_line_help(CLI::App& app, const std::map<std::string, std::string>& examples);

// One file per subcommand, named after it: cmd_<subcommand>.cpp.
void add_topology_commands(CLI::App& app);  // rumor topology gen | check
void add_data_commands(CLI::App& app);      // rumor data partition
void add_train_command(CLI::App& app);      // rumor train CONFIG.json
void add_node_command(CLI::App& app);       // rumor node CONFIG.json --id N
void add_launch_command(CLI::App& app);     // rumor launch CONFIG.json
void add_summarize_command(CLI::App& app);  // rumor summarize RUNDIR
void add_compare_command(CLI::App& app);    // rumor compare GRID.json
void add_config_commands(CLI::App& app);    // rumor config keys
void add_secret_commands(CLI::App& app);    // rumor secret new -o FILE

// A node per line: size, a bar, per-class counts; then sizes and label skew
// (rumor data partition, launch --dry-run).
void print_partition_table(const data::Dataset& ds, const data::Partition& p,
                           const data::PartitionStats& st, const data::PartitionOptions& opt,
                           std::ostream& out);

// `rumor bench ...`: each benchmark is its own subcommand and file, cmd_bench_<name>.cpp.
void add_bench_step(CLI::App& bench);    // rumor bench step
void add_bench_codecs(CLI::App& bench);  // rumor bench codecs
void add_bench_net(CLI::App& bench);     // rumor bench net

}  // namespace rumor::cli
