// libFuzzer target: the topology file readers (src/topology/io.cpp). The first byte picks the
// reader (JSON, edge list, adjacency list, or the plain formats guessed) and the node limit;
// the rest is the file's text. A bad file must be refused with a TopologyError; a topology
// that is read must answer its queries and round-trip through its JSON form.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "fuzz_input.hpp"
#include "rumor/common/error.hpp"
#include "rumor/topology/topology.hpp"

namespace {

void use(const rumor::Topology& t, const rumor::TopologyReadOptions& options) {
  if (t.size() < 1 || t.size() > options.max_nodes) std::abort();
  for (int i = 0; i < t.size(); ++i) {
    for (int j : t.peers(i))
      if (j < 0 || j >= t.size()) std::abort();
    for (int j : t.in_neighbors(i)) (void)t.weight(i, j);
  }
  try {
    const rumor::Topology back = rumor::parse_topology_json(t.to_json(), "round trip", options);
    if (back.size() != t.size() || back.edges().size() != t.edges().size()) std::abort();
  } catch (const rumor::TopologyError&) {
    std::abort();  // a topology that was read must read back from its own JSON form
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const char* const kFormats[] = {"json", "edges", "adj", "auto"};
  rumor::fuzz::Input in(data, size);
  const std::uint8_t mode = in.byte();
  std::vector<std::string> warnings;
  rumor::TopologyReadOptions options;
  options.format = kFormats[mode % 4];
  options.max_nodes = (mode & 4) ? 1000 : 64;
  options.warnings = &warnings;
  const auto rest = in.bytes(in.left());
  const std::string text(rest.begin(), rest.end());
  try {
    const rumor::Topology t = options.format == std::string("json")
                                  ? rumor::parse_topology_json(text, "fuzz.json", options)
                                  : rumor::parse_topology_plain(text, "fuzz.txt", options);
    use(t, options);
  } catch (const rumor::TopologyError&) {
  }
  return 0;
}
