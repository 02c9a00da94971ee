// rumor topology gen|check
#include <iomanip>
#include <iostream>

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

}  // namespace

void add_topology_commands(CLI::App& app) {
  auto* topo = app.add_subcommand("topology", "generate and validate topology files");
  topo->require_subcommand(1);

  // gen
  static GenOptions opts;
  static std::string kind, out_path;
  static int base_port = 0;
  std::string kinds;
  for (const auto& g : topology_generators()) kinds += "\n  " + g.name + ": " + g.description;
  auto* gen = topo->add_subcommand(
      "gen", "generate a topology file\n\nKinds:" + kinds +
                 "\n\nExample:\n  rumor topology gen torus --nodes 16 -o torus16.json");
  gen->add_option("kind", kind, "topology kind (see above)")->required();
  static CLI::Option* nodes_opt =
      gen->add_option("--nodes,-n", opts.nodes, "number of nodes (social: 32, fixed)");
  gen->add_option("--seed", opts.seed, "seed for random graphs")->capture_default_str();
  gen->add_option("--base-port", base_port,
                  "node i listens on base-port + i (default: left to the launcher, 29500 + i)");
  gen->add_option("--host", opts.host, "host of every node")->capture_default_str();
  gen->add_option("-o,--output", out_path, "write to this file (default: stdout)");
  gen->add_option("--p", opts.p, "erdos-renyi: edge probability")->capture_default_str();
  gen->add_option("--k", opts.k, "small-world: ring neighbours per node (even)")
      ->capture_default_str();
  gen->add_option("--beta", opts.beta, "small-world: rewiring probability")->capture_default_str();
  gen->add_option("--m", opts.m, "barabasi-albert: edges per new node")->capture_default_str();
  gen->add_option("--rows", opts.rows, "torus: number of rows (0: most square)")
      ->capture_default_str();
  gen->callback([] {
    if (base_port > 0) opts.base_port = base_port;
    if (nodes_opt->count() == 0) {
      if (kind != "social") throw ConfigError("topology gen " + kind + ": --nodes N is required");
      opts.nodes = 32;
    }
    const Topology t = generate_topology(kind, opts);
    if (out_path.empty()) {
      std::cout << t.to_json().dump(2) << "\n";
    } else {
      save_topology(t, out_path);
      std::cerr << "wrote " << out_path << ": " << t.size() << " nodes, " << t.summary().edges
                << " edges\n";
    }
  });

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
