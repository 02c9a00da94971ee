// rumor compare GRID.json: run a grid of configs and compare methods.
#include "commands.hpp"
#include "rumor/run/compare.hpp"

namespace rumor::cli {

void add_compare_command(CLI::App& app) {
  static std::string grid_path;
  static run::CompareOptions compare_opts;
  static bool no_plots = false;
  static bool no_progress = false;
  auto* compare = app.add_subcommand(
      "compare",
      "run a grid of configs and compare methods\n\n"
      "GRID.json: {\"base\": CONFIG (path or object), \"axes\": {\"method\": [...], \"codec\": "
      "[...],\n"
      "\"seed\": [1, 2, 3], \"data.partition.alpha\": [...]}, \"target_acc\": 0.8}. Cells with "
      "one\n"
      "seed share partition, initial model and data order. A rerun skips finished cells.\n"
      "Writes compare.json, compare.csv and PNG plots to compare/<grid name>/.\n\n"
      "Example:\n  rumor compare experiments/sgp-vs-allreduce/grid.json");
  compare->add_option("grid", grid_path, "grid file (JSON)")->required();
  compare->add_flag("--tcp", compare_opts.tcp, "run cells over TCP (one process per peer)");
  compare->add_option("-o,--output", compare_opts.output_dir, "output folder");
  compare->add_flag("--no-plots", no_plots, "do not draw PNG plots");
  compare->add_flag("--full", compare_opts.full,
                    "the paper-sized run: apply the grid's \"full\" overrides");
  compare->add_flag("--no-progress", no_progress, "no live progress line");
  compare->callback([] {
    compare_opts.plots = !no_plots;
    compare_opts.progress = !no_progress;
    run::run_compare(grid_path, compare_opts);
  });
}

}  // namespace rumor::cli
