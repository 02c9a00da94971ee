// rumor: a decentralized peer-to-peer gossip training runtime. This file only wires the
// CLI11 subcommands; all work is done by the rumor::* libraries.
#include <exception>
#include <iostream>
#include <map>
#include <sstream>

#include "commands.hpp"
#include "rumor/common/error.hpp"
#include "rumor/common/log.hpp"
#include "rumor/common/threads.hpp"
#include "rumor/train/model.hpp"  // ensure_blas_core
#include "rumor/version.hpp"

namespace rumor::cli {
namespace {
Globals g_globals;

std::string trim(const std::string& s) {
  const auto a = s.find_first_not_of(" \t");
  const auto b = s.find_last_not_of(" \t");
  return a == std::string::npos ? std::string() : s.substr(a, b - a + 1);
}
}  // namespace

const Globals& globals() {
  return g_globals;
}

void one_line_help(CLI::App& app, const std::map<std::string, std::string>& examples) {
  for (CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) {
    const std::string full = sub->get_description();
    const std::string line = full.substr(0, full.find('\n'));
    std::string example;
    if (auto it = examples.find(sub->get_name()); it != examples.end()) example = it->second;
    // Otherwise the first command under an "Example" heading of the full text.
    std::istringstream in(full);
    bool after_heading = false;
    for (std::string l; example.empty() && std::getline(in, l);) {
      if (auto p = l.find("Example: rumor "); p != std::string::npos) {
        example = trim(l.substr(p + 9));
      } else if (after_heading && trim(l).rfind("rumor ", 0) == 0) {
        example = trim(l);
      }
      if (trim(l).rfind("Example", 0) == 0) after_heading = true;
    }
    sub->description(example.empty() ? line : line + "\n  e.g. " + example);
    if (full != line) sub->footer(trim(full.substr(line.size())));
  }
}

namespace {

// Every subcommand, each from its own cmd_<name>.cpp.
void add_commands(CLI::App& app) {
  add_topology_commands(app);
  add_data_commands(app);
  add_train_command(app);
  add_node_command(app);
  add_launch_command(app);
  add_summarize_command(app);
  add_compare_command(app);
  add_config_commands(app);
  add_secret_commands(app);
  auto* bench = app.add_subcommand("bench", "benchmarks: rumor bench net|codecs|step [--json]");
  bench->require_subcommand(1);
  add_bench_step(*bench);
  add_bench_codecs(*bench);
  add_bench_net(*bench);
  one_line_help(app, {{"topology", "rumor topology check topologies/social32.json --json"},
                      {"data",
                       "rumor data partition --dataset fashion-mnist --nodes 8 "
                       "--partition dirichlet --alpha 0.1"},
                      {"config", "rumor config keys"},
                      {"bench", "rumor bench codecs --floats 10000000 --json"}});
}

}  // namespace

int run(int argc, char** argv) {
  g_globals = Globals{};  // a forked peer starts from the defaults, not the launcher's
  CLI::App app{
      "rumor: decentralized peer-to-peer gossip training.\n"
      "Every node runs this same binary, talks only to its neighbours in a topology,\n"
      "and the network as a whole trains one model.\n\n"
      "Examples:\n"
      "  rumor topology gen ring --nodes 16 -o ring16.json\n"
      "  rumor topology check topologies/social32.json --json\n",
      "rumor"};
  app.set_version_flag("--version", std::string("rumor ") + kVersion + " (" + kGitRevision + ")");
  app.require_subcommand(1);
  app.fallthrough();  // global options are accepted after the subcommand too
  auto& g = g_globals;
  app.add_option("--threads", g.threads, "compute threads for LibTorch and OpenBLAS per peer")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  app.add_option("--log-level", g.log_level, "debug, info, warn, error or off")
      ->capture_default_str();
  app.parse_complete_callback([&] {
    log::set_level(log::parse_level(g.log_level));
    limit_blas_threads(g.threads);
  });
  add_commands(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const Error& e) {
    std::cerr << "rumor: error: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "rumor: unexpected error: " << e.what() << "\n";
    return 2;
  }
  return 0;
}

int run(const std::vector<std::string>& args) {
  std::vector<std::string> copy = args;
  std::vector<char*> argv;
  for (auto& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  return run(static_cast<int>(copy.size()), argv.data());
}

}  // namespace rumor::cli

int main(int argc, char** argv) {
  // OpenBLAS 0.3.21 mis-detects newer CPUs; may re-exec once with OPENBLAS_CORETYPE set.
  rumor::train::ensure_blas_core(argv);
  rumor::train::verify_forced_blas_core(argv);
  return rumor::cli::run(argc, argv);
}
