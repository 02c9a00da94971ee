#pragma once
// Topology generators by name (a registry: rumor topology gen KIND).
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "rumor/topology/topology.hpp"

namespace rumor {

struct GenOptions {
  int nodes = 8;
  std::uint64_t seed = 1;
  std::string host = "127.0.0.1";
  std::optional<int> base_port;  // unset: ports left to the launcher (default 29500 + id)
  double p = 0.3;                // erdos-renyi edge probability
  int k = 4;             // small-world: each node joins its k nearest ring neighbours (even)
  double beta = 0.2;     // small-world rewiring probability
  int m = 2;             // barabasi-albert: edges per new node
  int rows = 0;          // torus: rows (0: the most square factorisation of nodes)
  std::string data_dir;  // social: folder with davis_southern_women.edges (empty: embedded copy)
};

struct GeneratorInfo {
  std::string name;
  std::string description;
  std::function<Topology(const GenOptions&)> make;
};

const std::vector<GeneratorInfo>& topology_generators();
// Throws TopologyError listing the valid names when `kind` is unknown.
Topology generate_topology(const std::string& kind, const GenOptions& options);

}  // namespace rumor
