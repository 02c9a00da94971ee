#pragma once
// Topology generators by name (a registry: rumor topology gen KIND).
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "rumor/topology/topology.hpp"

namespace rumor {

struct GenOptions {
  int nodes = 8;
  std::uint64_t seed = 1;
  std::string host = "127.0.0.1";
  std::optional<int> base_port;  // unset: ports left to the launcher (default 29500 + id)
  double p = 0.3;                // erdos-renyi edge probability
  int k = 4;          // small-world: each node joins its k nearest ring neighbours (even);
                      // base: the maximum degree of the Base-(k+1) graph
  double beta = 0.2;  // small-world rewiring probability
  int m = 2;          // barabasi-albert: edges per new node
  int rows = 0;       // torus: rows (0: the most square factorisation of nodes)
  int max_nodes = kDefaultMaxNodes;  // refused above this, before anything is built
};

// One option of the generators: its key (config "topology.KEY"), its command-line flags, the
// GenOptions field it sets (the default is that field's initial value) and a help line.
struct GenOption {
  std::string key;
  std::string flags;  // CLI11 names, e.g. "--nodes,-n"
  std::variant<int GenOptions::*, std::uint64_t GenOptions::*, double GenOptions::*,
               std::string GenOptions::*, std::optional<int> GenOptions::*>
      field;
  std::string help;
};

// Every option any generator takes; nodes, host, base_port and max_nodes apply to all.
const std::vector<GenOption>& generator_options();
// Sets option `key` of `o` from a JSON value; throws nlohmann::json::exception on a wrong
// type and TopologyError on an unknown key.
void set_generator_option(GenOptions& o, const std::string& key, const nlohmann::json& value);

// A generator: one function and one entry in topology_generators().
struct GeneratorInfo {
  std::string name;
  std::string description;
  std::vector<std::string> options;  // the keys it reads besides nodes, host and base_port
  std::function<Topology(const GenOptions&)> make;
  int default_nodes = 0;  // > 0: --nodes may be left out (a fixed graph)
  // Every key it takes: nodes, host, base_port, max_nodes, then its own.
  std::vector<std::string> keys() const;
};

// Each entry's `make` checks nodes against max_nodes before it builds anything.
const std::vector<GeneratorInfo>& topology_generators();
// Throws TopologyError listing the valid names when `kind` is unknown.
const GeneratorInfo& find_generator(const std::string& kind);
Topology generate_topology(const std::string& kind, const GenOptions& options);

// The rounds of one period of the Base-(k+1) graph on `nodes` nodes (Takezawa et al. 2023):
// undirected weighted edges (from < to, W symmetric), each node in at most k edges a round;
// the product of the rounds' mixing matrices is exact averaging.
std::vector<std::vector<Edge>> base_graph_rounds(int nodes, int k);

}  // namespace rumor
