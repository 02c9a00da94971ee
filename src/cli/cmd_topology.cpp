// rumor topology gen|check
#include <algorithm>
#include <iomanip>
#include <iostream>
#include <type_traits>
#include <variant>

#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "rumor/common/error.hpp"
#include "rumor/common/strings.hpp"
#include "rumor/topology/generators.hpp"
#include "rumor/topology/topology.hpp"

namespace rumor::cli {
namespace {

nlohmann::json check_json(const Topology& t) {
  const auto s = t.summary();
  return {{"name", t.name()},
          {"nodes", s.nodes},
          {"edges", s.edges},
          {"directed", t.directed()},
          {"schedule", to_string(t.schedule())},
          {"period", t.period()},
          {"connected", s.connected},
          {"degree_min", s.degree_min},
          {"degree_max", s.degree_max},
          {"diameter", s.diameter},
          {"mixing", to_string(t.mixing_kind())},
          {"slem", s.slem},
          {"spectral_gap", s.spectral_gap}};
}

void print_check(const Topology& t, std::ostream& out) {
  const auto j = check_json(t);
  out << t.source() << ": ok\n";
  out << std::setprecision(6);
  out << "  name          " << t.name() << "\n"
      << "  nodes         " << j["nodes"] << "\n"
      << "  edges         " << j["edges"] << (t.directed() ? " (directed)" : " (undirected)")
      << "\n"
      << "  schedule      " << to_string(t.schedule()) << " (period " << t.period() << ")\n"
      << "  degree        " << j["degree_min"] << ".." << j["degree_max"] << "\n"
      << "  diameter      " << j["diameter"] << "\n"
      << "  mixing        " << to_string(t.mixing_kind()) << "\n"
      << "  slem          " << j["slem"].get<double>() << "\n"
      << "  spectral gap  " << j["spectral_gap"].get<double>() << "  (larger: faster consensus)\n";
}

GenOptions& gen_options() {
  static GenOptions o;
  return o;
}

// Binds one generator option to its field of `opts` (base_port: to `base_port`, set when > 0).
CLI::Option* add_gen_option(CLI::App& gen, const GenOption& o, int& base_port) {
  static GenOptions& opts = gen_options();
  return std::visit(
      [&](auto field) -> CLI::Option* {
        if constexpr (std::is_same_v<decltype(field), std::optional<int> GenOptions::*>) {
          return gen.add_option(o.flags, base_port, o.help);
        } else {
          auto* opt = gen.add_option(o.flags, opts.*field, o.help);
          if (o.key != "nodes") opt->capture_default_str();
          return opt;
        }
      },
      o.field);
}

// rumor topology gen KIND: one command-line option per generator option (generators.hpp);
// a kind accepts only the options its registry entry lists.
void add_gen_command(CLI::App& topo) {
  static GenOptions& opts = gen_options();
  static std::string kind, out_path;
  static int base_port = 0;
  static std::vector<std::pair<const GenOption*, CLI::Option*>> given;
  given.clear();
  std::string kinds;
  for (const auto& g : topology_generators()) {
    kinds += "\n  " + g.name + ": " + g.description;
    if (!g.options.empty()) kinds += " (--" + join(g.options, ", --") + ")";
  }
  auto* gen = topo.add_subcommand(
      "gen", "generate a topology file\n\nKinds:" + kinds +
                 "\n\nExample:\n  rumor topology gen torus --nodes 16 -o torus16.json");
  gen->add_option("kind", kind, "topology kind (see above)")->required();
  gen->add_option("-o,--output", out_path, "write to this file (default: stdout)");
  for (const auto& o : generator_options())
    given.emplace_back(&o, add_gen_option(*gen, o, base_port));
  gen->callback([] {
    const GeneratorInfo& g = find_generator(kind);
    const std::vector<std::string> keys = g.keys();
    const auto takes = [&](const GenOption& o) {
      return std::find(keys.begin(), keys.end(), o.key) != keys.end();
    };
    std::vector<std::string> flags;
    for (const auto& [o, cli] : given)
      if (takes(*o)) flags.push_back(cli->get_name());
    for (const auto& [o, cli] : given) {
      if (cli->count() > 0 && !takes(*o))
        throw ConfigError("topology gen " + kind + ": " + cli->get_name() +
                          " does not apply to this kind; it takes " + join(flags));
      if (o->key == "nodes" && cli->count() == 0) {
        if (g.default_nodes == 0)
          throw ConfigError("topology gen " + kind + ": --nodes N is required");
        opts.nodes = g.default_nodes;
      }
    }
    if (base_port > 0) opts.base_port = base_port;
    const Topology t = g.make(opts);
    if (out_path.empty()) {
      std::cout << t.to_json().dump(2) << "\n";
    } else {
      save_topology(t, out_path);
      std::cerr << "wrote " << out_path << ": " << t.size() << " nodes, " << t.summary().edges
                << " edges\n";
    }
  });
}

}  // namespace

void add_topology_commands(CLI::App& app) {
  auto* topo = app.add_subcommand("topology", "generate and validate topology files");
  topo->require_subcommand(1);

  add_gen_command(*topo);

  // check
  static std::string file;
  static bool as_json = false;
  auto* check = topo->add_subcommand(
      "check",
      "validate a topology file and report its figures\n\n"
      "Reads JSON (formats.md) or plain edge-list / adjacency-list files (first line n).\n"
      "Exits non-zero with file, line and problem when the file is invalid.\n\n"
      "Example:\n  rumor topology check topologies/social32.json --json");
  check->add_option("file", file, "topology file")->required();
  check->add_flag("--json", as_json, "print one JSON document with the figures");
  check->callback([] {
    const Topology t = load_topology(file);
    if (as_json) {
      std::cout << check_json(t).dump(2) << "\n";
    } else {
      print_check(t, std::cout);
    }
  });
}

}  // namespace rumor::cli
