// rumor summarize RUNDIR: summary.json and summary.csv from a run directory's metrics files.
#include <iostream>

#include "commands.hpp"
#include "rumor/run/run.hpp"

namespace rumor::cli {

void add_summarize_command(CLI::App& app) {
  static std::string summarize_dir;
  auto* summarize = app.add_subcommand(
      "summarize",
      "build summary.json and summary.csv from a run directory's metrics files\n\n"
      "Example:\n  rumor summarize runs/quickstart-s1-0a1b2c3d");
  summarize->add_option("rundir", summarize_dir, "run directory")->required();
  summarize->callback([] { std::cout << run::summary_text(run::summarize(summarize_dir)); });
}

}  // namespace rumor::cli
