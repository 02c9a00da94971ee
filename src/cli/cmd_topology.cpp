// rumor topology gen|check
#include <algorithm>
#include <cmath>
#include <iomanip>
#include <iostream>
#include <sstream>
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

// NaN (a figure skipped) as null.
nlohmann::json number_or_null(double x) {
  return std::isfinite(x) ? nlohmann::json(x) : nlohmann::json(nullptr);
}

nlohmann::json check_json(const Topology& t, const Topology::Summary& s) {
  return {{"name", t.name()},
          {"nodes", s.nodes},
          {"edges", s.edges},
          {"directed", t.directed()},
          {"schedule", to_string(t.schedule())},
          {"period", t.period()},
          {"connected", s.connected},
          {"degree_min", s.degree_min},
          {"degree_max", s.degree_max},
          {"diameter",
           s.connected && s.diameter < 0 ? nlohmann::json(nullptr) : nlohmann::json(s.diameter)},
          {"mixing", to_string(t.mixing_kind())},
          {"slem", number_or_null(s.slem)},
          {"spectral_gap", number_or_null(s.spectral_gap)},
          {"slem_method", s.slem_method},
          {"rounds_to_exact_average", s.rounds_to_exact_average},
          {"notes", s.notes}};
}

std::string figure(const nlohmann::json& v) {
  if (v.is_null()) return "skipped (see notes)";
  std::ostringstream out;
  out << std::setprecision(6) << v.get<double>();
  return out.str();
}

void print_check(const Topology& t, const nlohmann::json& j, std::ostream& out) {
  out << t.source() << ": ok\n";
  out << "  name          " << t.name() << "\n"
      << "  nodes         " << j["nodes"] << "\n"
      << "  edges         " << j["edges"] << (t.directed() ? " (directed)" : " (undirected)")
      << "\n"
      << "  schedule      " << to_string(t.schedule()) << " (period " << t.period() << ")\n"
      << "  degree        " << j["degree_min"] << ".." << j["degree_max"] << "\n"
      << "  diameter      "
      << (j["diameter"].is_null() ? "skipped (see notes)" : j["diameter"].dump()) << "\n"
      << "  mixing        " << to_string(t.mixing_kind()) << "\n"
      << "  slem          " << figure(j["slem"])
      << (j["slem"].is_null() ? "" : " (" + j["slem_method"].get<std::string>() + ")") << "\n"
      << "  spectral gap  " << figure(j["spectral_gap"]) << "  (larger: faster consensus)\n";
  if (j["rounds_to_exact_average"].get<int>() > 0)
    out << "  exact average after " << j["rounds_to_exact_average"] << " rounds\n";
  for (const auto& note : j["notes"]) out << "  note: " << note.get<std::string>() << "\n";
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
      std::cerr << "wrote " << out_path << ": " << t.size() << " nodes, " << t.edges().size()
                << (t.directed() ? " directed" : "") << " edges\n";
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
  static TopologyReadOptions read;
  auto* check = topo->add_subcommand(
      "check",
      "validate a topology file and report its figures\n\n"
      "Reads JSON (see the README, topology files) or plain edge-list / adjacency-list files "
      "(first line n).\n"
      "Exits non-zero with file, line and problem when the file is invalid. Figures cost time\n"
      "linear in the edges: above a size the diameter and the SLEM are estimated or skipped,\n"
      "with a note.\n\n"
      "Example:\n  rumor topology check topologies/social32.json --json");
  check->add_option("file", file, "topology file")->required();
  check->add_flag("--json", as_json, "print one JSON document with the figures");
  check
      ->add_option("--format", read.format,
                   "json | edges | adj | auto (auto: JSON when it starts with '{', else by the "
                   "extension .edges/.adj, else guessed from the content with a warning)")
      ->capture_default_str();
  check
      ->add_option("--max-nodes", read.max_nodes,
                   "refuse files of more nodes (and more than 100 edges per allowed node)")
      ->capture_default_str();
  check->callback([] {
    const Topology t = load_topology(file, read);
    const auto j = check_json(t, t.summary());
    if (as_json) {
      std::cout << j.dump(2) << "\n";
    } else {
      print_check(t, j, std::cout);
    }
  });
}

}  // namespace rumor::cli
