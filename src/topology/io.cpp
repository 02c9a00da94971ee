// Reading and writing topology files: JSON (formats.md) and the plain edge-list and
// adjacency-list formats other frameworks use.
#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "rumor/common/error.hpp"
#include "rumor/common/strings.hpp"
#include "rumor/topology/topology.hpp"

namespace rumor {
namespace {

constexpr int kDefaultBasePort = 29500;

// Lines on which each element of the top-level array `key` starts. The text is known to
// be valid JSON (nlohmann parsed it); nlohmann 3.11 keeps no positions, so scan for them.
std::vector<int> element_lines(const std::string& text, const std::string& key) {
  std::vector<int> lines;
  int line = 1, depth = 0, target_depth = -1;
  bool in_string = false, expect_element = false;
  std::string last_string, top_key;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\n') ++line;
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      } else {
        last_string += c;
      }
      continue;
    }
    if (std::isspace(static_cast<unsigned char>(c))) continue;
    if (expect_element && c != ']') {
      lines.push_back(line);
      expect_element = false;
    }
    switch (c) {
      case '"':
        in_string = true;
        last_string.clear();
        break;
      case '{':
      case '[':
        ++depth;
        if (c == '[' && depth == 2 && top_key == key && target_depth < 0) {
          target_depth = depth;
          expect_element = true;
        }
        break;
      case '}':
      case ']':
        if (depth == target_depth) {
          target_depth = -2;  // done: only the first array with this key counts
          expect_element = false;
        }
        --depth;
        break;
      case ',':
        if (depth == target_depth) expect_element = true;
        break;
      case ':':
        if (depth == 1) top_key = last_string;
        break;
      default:
        break;
    }
  }
  return lines;
}

std::string at_line(const std::string& source, const std::vector<int>& lines, std::size_t k) {
  return source + (k < lines.size() ? ":" + std::to_string(lines[k]) : std::string());
}

void refuse_unknown_keys(const nlohmann::json& obj, const std::vector<std::string>& valid,
                         const std::string& where, const std::string& what) {
  for (const auto& [k, v] : obj.items()) {
    if (std::find(valid.begin(), valid.end(), k) == valid.end()) {
      throw TopologyError(where + ": unknown key \"" + k + "\" in " + what + "; did you mean \"" +
                          nearest(k, valid) + "\"? valid keys: " + join(valid));
    }
  }
}

int get_int(const nlohmann::json& v, const std::string& where, const std::string& what) {
  if (!v.is_number_integer()) {
    throw TopologyError(where + ": " + what + " must be an integer, got " + v.dump());
  }
  return v.get<int>();
}

std::string stem_of(const std::string& path) {
  return std::filesystem::path(path).stem().string();
}

Topology parse_json_value(const nlohmann::json& j, const std::string& source,
                          const std::vector<int>& node_lines, const std::vector<int>& edge_lines) {
  if (!j.is_object()) throw TopologyError(source + ": a topology file must be a JSON object");
  refuse_unknown_keys(
      j, {"name", "directed", "schedule", "mixing", "base_port", "nodes", "edges", "description"},
      source, "the topology");
  const std::string name = j.value("name", stem_of(source));
  const bool directed = j.value("directed", false);
  Schedule schedule = Schedule::kStatic;
  const std::string sched = j.value("schedule", std::string("static"));
  if (sched == "one-peer-exponential") {
    schedule = Schedule::kOnePeerExponential;
  } else if (sched != "static") {
    throw TopologyError(source + ": unknown schedule \"" + sched +
                        "\"; valid: static, one-peer-exponential");
  }
  MixingKind mixing = directed ? MixingKind::kUniform : MixingKind::kMetropolis;
  if (j.contains("mixing")) {
    const std::string m = j["mixing"].get<std::string>();
    if (m == "metropolis") {
      mixing = MixingKind::kMetropolis;
    } else if (m == "uniform") {
      mixing = MixingKind::kUniform;
    } else if (m == "explicit") {
      mixing = MixingKind::kExplicit;
    } else {
      throw TopologyError(source + ": unknown mixing \"" + m +
                          "\"; valid: metropolis, uniform, explicit");
    }
  }
  bool ports_explicit = j.contains("base_port");
  const int base_port =
      j.contains("base_port") ? get_int(j["base_port"], source, "\"base_port\"") : kDefaultBasePort;
  if (!j.contains("nodes") || !j["nodes"].is_array()) {
    throw TopologyError(source + ": missing \"nodes\" list; each node is {\"id\": i}");
  }
  std::vector<NodeInfo> nodes;
  const auto& jn = j["nodes"];
  for (std::size_t k = 0; k < jn.size(); ++k) {
    const std::string where = at_line(source, node_lines, k);
    const auto& o = jn[k];
    NodeInfo node;
    if (o.is_number_integer()) {
      node.id = o.get<int>();
    } else if (o.is_object()) {
      refuse_unknown_keys(o, {"id", "host", "port"}, where, "a node");
      if (!o.contains("id")) throw TopologyError(where + ": node without an \"id\"");
      node.id = get_int(o["id"], where, "node \"id\"");
      if (o.contains("host")) {
        if (!o["host"].is_string()) throw TopologyError(where + ": node \"host\" must be a string");
        node.host = o["host"].get<std::string>();
      }
      if (o.contains("port")) {
        node.port = get_int(o["port"], where, "node \"port\"");
        ports_explicit = true;
      } else {
        node.port = base_port + node.id;
      }
      nodes.push_back(node);
      continue;
    } else {
      throw TopologyError(where + ": a node must be an object {\"id\": i, ...}, got " + o.dump());
    }
    node.port = base_port + node.id;
    nodes.push_back(node);
  }
  std::vector<Edge> edges;
  if (j.contains("edges")) {
    const auto& je = j["edges"];
    if (!je.is_array()) throw TopologyError(source + ": \"edges\" must be a list");
    for (std::size_t k = 0; k < je.size(); ++k) {
      const std::string where = at_line(source, edge_lines, k);
      const auto& o = je[k];
      Edge e;
      if (o.is_array() && o.size() == 2) {
        e.from = get_int(o[0], where, "an edge end");
        e.to = get_int(o[1], where, "an edge end");
      } else if (o.is_object()) {
        refuse_unknown_keys(o, {"from", "to", "weight"}, where, "an edge");
        if (!o.contains("from") || !o.contains("to"))
          throw TopologyError(where + ": an edge object needs \"from\" and \"to\"");
        e.from = get_int(o["from"], where, "edge \"from\"");
        e.to = get_int(o["to"], where, "edge \"to\"");
        if (o.contains("weight")) {
          if (!o["weight"].is_number())
            throw TopologyError(where + ": edge \"weight\" must be a number");
          e.weight = o["weight"].get<double>();
        }
      } else {
        throw TopologyError(where +
                            ": an edge must be [from, to] or {\"from\", \"to\", \"weight\"}, got " +
                            o.dump());
      }
      edges.push_back(e);
    }
  }
  Topology t(name, directed, schedule, mixing, std::move(nodes), std::move(edges), source,
             node_lines, edge_lines);
  t.set_ports_explicit(ports_explicit);
  return t;
}

std::vector<long> parse_ints(const std::string& line, const std::string& where) {
  std::istringstream in(line);
  std::vector<long> out;
  std::string tok;
  while (in >> tok) {
    std::size_t used = 0;
    long v = 0;
    try {
      v = std::stol(tok, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != tok.size())
      throw TopologyError(where + ": expected a node id (an integer), got \"" + tok + "\"");
    out.push_back(v);
  }
  return out;
}

}  // namespace

Topology parse_topology_json(const std::string& text, const std::string& source) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    throw TopologyError(json_syntax_error(text, e.byte, e.what(), source));
  }
  try {
    return parse_json_value(j, source, element_lines(text, "nodes"), element_lines(text, "edges"));
  } catch (const nlohmann::json::exception& e) {
    throw TopologyError(source + ": " + e.what());
  }
}

Topology parse_topology_json(const nlohmann::json& j, const std::string& source) {
  try {
    return parse_json_value(j, source, {}, {});
  } catch (const nlohmann::json::exception& e) {
    throw TopologyError(source + ": " + e.what());
  }
}

Topology parse_topology_plain(const std::string& text, const std::string& source,
                              const std::string& kind_in) {
  struct Line {
    int number;
    std::vector<long> ids;
  };
  std::vector<Line> lines;
  {
    std::istringstream in(text);
    std::string raw;
    int number = 0;
    while (std::getline(in, raw)) {
      ++number;
      if (auto hash = raw.find('#'); hash != std::string::npos) raw.resize(hash);
      auto ids = parse_ints(raw, source + ":" + std::to_string(number));
      // Blank lines are kept for adjacency lists (a node may have no listed neighbours).
      lines.push_back({number, std::move(ids)});
    }
  }
  while (!lines.empty() && lines.back().ids.empty()) lines.pop_back();
  auto first =
      std::find_if(lines.begin(), lines.end(), [](const Line& l) { return !l.ids.empty(); });
  if (first == lines.end()) throw TopologyError(source + ": empty file; the first line must be n");
  if (first->ids.size() != 1 || first->ids[0] < 1) {
    throw TopologyError(source + ":" + std::to_string(first->number) +
                        ": the first line must hold the number of nodes n >= 1");
  }
  const long n = first->ids[0];
  std::vector<Line> body(first + 1, lines.end());

  std::string kind = kind_in;
  if (kind == "auto") {
    const std::string ext = std::filesystem::path(source).extension().string();
    if (ext == ".edges" || ext == ".edgelist" || ext == ".el") {
      kind = "edges";
    } else if (ext == ".adj" || ext == ".adjlist") {
      kind = "adjacency";
    } else {
      // An adjacency list never names node i on line i; an edge list "i j" on its i-th line
      // usually does, and its lines hold exactly two ids.
      bool all_pairs = true, names_itself = false;
      int row = 0;
      for (const auto& l : body) {
        if (l.ids.size() != 2 && !l.ids.empty()) all_pairs = false;
        for (long v : l.ids)
          if (v == row) names_itself = true;
        ++row;
      }
      kind = (all_pairs && (names_itself || static_cast<long>(body.size()) != n)) ? "edges"
                                                                                  : "adjacency";
    }
  }

  std::vector<Edge> edges;
  std::vector<int> edge_lines;
  std::set<std::pair<long, long>> seen;
  auto add = [&](long u, long v, int line) {
    const std::string where = source + ":" + std::to_string(line);
    for (long id : {u, v}) {
      if (id < 0 || id >= n)
        throw TopologyError(where + ": unknown node id " + std::to_string(id) + "; ids are 0.." +
                            std::to_string(n - 1) + " (n = " + std::to_string(n) +
                            " on the first line)");
    }
    if (u == v)
      throw TopologyError(where + ": edge " + std::to_string(u) + " " + std::to_string(v) +
                          " is a self-loop; remove it");
    // Both directions of an undirected edge may be listed (adjacency lists always do).
    if (!seen.insert({std::min(u, v), std::max(u, v)}).second) return;
    edges.push_back({static_cast<int>(u), static_cast<int>(v), std::nullopt});
    edge_lines.push_back(line);
  };
  if (kind == "edges") {
    std::set<std::pair<long, long>> exact;
    for (const auto& l : body) {
      if (l.ids.empty()) continue;
      if (l.ids.size() != 2)
        throw TopologyError(source + ":" + std::to_string(l.number) +
                            ": expected an edge \"u v\" (two node ids), got " +
                            std::to_string(l.ids.size()) + " values");
      if (!exact.insert({l.ids[0], l.ids[1]}).second)
        throw TopologyError(source + ":" + std::to_string(l.number) + ": duplicate edge " +
                            std::to_string(l.ids[0]) + " " + std::to_string(l.ids[1]));
      add(l.ids[0], l.ids[1], l.number);
    }
  } else if (kind == "adjacency") {
    if (static_cast<long>(body.size()) > n)
      throw TopologyError(source + ":" + std::to_string(body[n].number) +
                          ": adjacency list has more lines than n = " + std::to_string(n) +
                          " nodes");
    for (std::size_t i = 0; i < body.size(); ++i) {
      std::set<long> on_line;
      for (long v : body[i].ids) {
        if (!on_line.insert(v).second)
          throw TopologyError(source + ":" + std::to_string(body[i].number) + ": duplicate edge " +
                              std::to_string(i) + " " + std::to_string(v));
        add(static_cast<long>(i), v, body[i].number);
      }
    }
  } else {
    throw TopologyError("unknown plain topology format \"" + kind + "\"; valid: edges, adjacency");
  }
  std::vector<NodeInfo> nodes;
  for (long i = 0; i < n; ++i)
    nodes.push_back({static_cast<int>(i), "127.0.0.1", kDefaultBasePort + static_cast<int>(i)});
  return Topology(stem_of(source), false, Schedule::kStatic, MixingKind::kMetropolis,
                  std::move(nodes), std::move(edges), source, {}, edge_lines);
}

Topology load_topology(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw TopologyError(path + ": cannot open the topology file (" +
                        (std::filesystem::exists(path) ? "permission denied" : "no such file") +
                        "); list shipped ones with `ls topologies/` or make one with "
                        "`rumor topology gen`");
  }
  std::stringstream buf;
  buf << in.rdbuf();
  const std::string text = buf.str();
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && (text[first] == '{' || text[first] == '['))
    return parse_topology_json(text, path);
  return parse_topology_plain(text, path);
}

void save_topology(const Topology& topology, const std::string& path) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp);
    if (!out) throw TopologyError(path + ": cannot write the topology file");
    // One node and one edge per line keeps files diffable and error lines meaningful.
    const nlohmann::json j = topology.to_json();
    out << "{\n";
    for (const char* key : {"name", "directed", "schedule", "mixing"})
      out << "  \"" << key << "\": " << j[key].dump() << ",\n";
    if (topology.ports_explicit() && topology.size() > 0)
      out << "  \"base_port\": " << topology.node(0).port << ",\n";
    auto write_list = [&](const char* key, const nlohmann::json& list, bool last) {
      out << "  \"" << key << "\": [";
      for (std::size_t i = 0; i < list.size(); ++i)
        out << (i ? ",\n    " : "\n    ") << list[i].dump();
      out << (list.empty() ? "]" : "\n  ]") << (last ? "\n" : ",\n");
    };
    write_list("nodes", j["nodes"], false);
    write_list("edges", j["edges"], true);
    out << "}\n";
    if (!out) throw TopologyError(path + ": write failed (disk full?)");
  }
  std::filesystem::rename(tmp, path);
}

}  // namespace rumor
