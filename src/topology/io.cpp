// Reading and writing topology files: JSON (the README's topology file format) and the plain
// edge-list and adjacency-list formats other frameworks use.
#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "rumor/common/error.hpp"
#include "rumor/common/log.hpp"
#include "rumor/common/strings.hpp"
#include "rumor/topology/topology.hpp"

namespace rumor {
namespace {

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

Schedule parse_schedule(const nlohmann::json& j, const std::string& source) {
  const std::string sched = j.value("schedule", std::string("static"));
  for (Schedule s : {Schedule::kStatic, Schedule::kOnePeerExponential, Schedule::kPeerSampling,
                     Schedule::kPeriodic})
    if (sched == to_string(s)) return s;
  throw TopologyError(source + ": unknown schedule \"" + sched +
                      "\"; valid: static, one-peer-exponential, peer-sampling, periodic");
}

// One edge: [from, to] or {"from", "to", "weight"}.
Edge parse_edge(const nlohmann::json& o, const std::string& where) {
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
    throw TopologyError(
        where + ": an edge must be [from, to] or {\"from\", \"to\", \"weight\"}, got " + o.dump());
  }
  return e;
}

// One round of a periodic schedule: a list of edges.
std::vector<Edge> parse_round(const nlohmann::json& list, const std::string& where) {
  if (!list.is_array()) throw TopologyError(where + " must be a list of edges");
  std::vector<Edge> edges;
  for (const auto& o : list) edges.push_back(parse_edge(o, where));
  return edges;
}

// "fanout" and "seed" (peer sampling), "rounds" (periodic); the Topology checks which
// schedule may have them.
ScheduleParams schedule_params(const nlohmann::json& j, const std::string& source) {
  ScheduleParams p;
  if (j.contains("fanout")) p.fanout = get_int(j["fanout"], source, "\"fanout\"");
  if (j.contains("seed")) {
    if (!j["seed"].is_number_unsigned())
      throw TopologyError(source + ": \"seed\" must be a non-negative integer, got " +
                          j["seed"].dump());
    p.seed = j["seed"].get<std::uint64_t>();
  }
  if (j.contains("rounds")) {
    const auto& rounds = j["rounds"];
    if (!rounds.is_array())
      throw TopologyError(source + ": \"rounds\" must be a list, one list of edges per round");
    for (std::size_t r = 0; r < rounds.size(); ++r)
      p.rounds.push_back(parse_round(rounds[r], source + ": round " + std::to_string(r)));
  }
  return p;
}

Topology parse_json_value(const nlohmann::json& j, const std::string& source,
                          const std::vector<int>& node_lines, const std::vector<int>& edge_lines,
                          int max_nodes) {
  if (!j.is_object()) throw TopologyError(source + ": a topology file must be a JSON object");
  refuse_unknown_keys(j,
                      {"name", "directed", "schedule", "mixing", "base_port", "nodes", "edges",
                       "description", "fanout", "seed", "rounds"},
                      source, "the topology");
  const std::string name = j.value("name", stem_of(source));
  const Schedule schedule = parse_schedule(j, source);
  // Peer sampling pushes: directed unless the file says otherwise (and is then refused).
  const bool directed = j.value("directed", schedule == Schedule::kPeerSampling);
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
  std::optional<int> base_port;
  if (j.contains("base_port")) base_port = get_int(j["base_port"], source, "\"base_port\"");
  const auto port_of = [&](int id) { return base_port ? *base_port + id : default_port(id); };
  if (j.contains("nodes") && j["nodes"].is_number()) {
    throw TopologyError(source + ": \"nodes\" is a count (" + j["nodes"].dump() +
                        "), not a list: to generate a graph name its kind, e.g. "
                        "{\"gen\": \"ring\", \"nodes\": 8} (--set topology.gen=ring); a "
                        "topology file lists its nodes");
  }
  if (!j.contains("nodes") || !j["nodes"].is_array()) {
    throw TopologyError(source + ": missing \"nodes\" list; each node is {\"id\": i}");
  }
  const auto edge_count = j.contains("edges") && j["edges"].is_array() ? j["edges"].size() : 0;
  check_topology_size(static_cast<long>(j["nodes"].size()), static_cast<long>(edge_count),
                      max_nodes, source);
  std::vector<NodeInfo> nodes;
  const auto& jn = j["nodes"];
  for (std::size_t k = 0; k < jn.size(); ++k) {
    const std::string where = at_line(source, node_lines, k);
    const auto& o = jn[k];
    NodeInfo node;
    if (o.is_number_integer()) {
      node.id = o.get<int>();
    } else if (o.is_object()) {
      refuse_unknown_keys(o, {"id", "host", "port", "standby"}, where, "a node");
      if (!o.contains("id")) throw TopologyError(where + ": node without an \"id\"");
      node.id = get_int(o["id"], where, "node \"id\"");
      if (o.contains("host")) {
        if (!o["host"].is_string()) throw TopologyError(where + ": node \"host\" must be a string");
        node.host = o["host"].get<std::string>();
      }
      if (o.contains("standby")) {
        if (!o["standby"].is_boolean())
          throw TopologyError(where + ": node \"standby\" must be true or false, got " +
                              o["standby"].dump());
        node.standby = o["standby"].get<bool>();
      }
      if (o.contains("port")) {
        node.port = get_int(o["port"], where, "node \"port\"");
        ports_explicit = true;
      } else {
        node.port = port_of(node.id);
      }
      nodes.push_back(node);
      continue;
    } else {
      throw TopologyError(where + ": a node must be an object {\"id\": i, ...}, got " + o.dump());
    }
    node.port = port_of(node.id);
    nodes.push_back(node);
  }
  std::vector<Edge> edges;
  if (j.contains("edges")) {
    const auto& je = j["edges"];
    if (!je.is_array()) throw TopologyError(source + ": \"edges\" must be a list");
    for (std::size_t k = 0; k < je.size(); ++k)
      edges.push_back(parse_edge(je[k], at_line(source, edge_lines, k)));
  }
  Topology t(name, directed, schedule, mixing, schedule_params(j, source), std::move(nodes),
             std::move(edges), source, node_lines, edge_lines);
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

struct PlainLine {
  int number;
  std::vector<long> ids;
};

std::vector<PlainLine> read_plain_lines(const std::string& text, const std::string& source) {
  std::vector<PlainLine> lines;
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
  while (!lines.empty() && lines.back().ids.empty()) lines.pop_back();
  return lines;
}

// Warnings of one file: the first few of each kind in full, then a count, so a file with
// 100,000 one-sided neighbours does not print 100,000 lines.
class Warnings {
 public:
  Warnings(const TopologyReadOptions& options, std::string source)
      : options_(options), source_(std::move(source)) {}
  void add(const std::string& kind, const std::string& message) {
    if (++count_[kind] <= kShown) emit(message);
  }
  void flush() {
    for (const auto& [kind, count] : count_)
      if (count > kShown)
        emit(source_ + ": " + std::to_string(count - kShown) + " more " + kind + " warnings");
  }
  void emit(const std::string& message) {
    if (options_.warnings) {
      options_.warnings->push_back(message);
    } else {
      log::warn(message);
    }
  }

 private:
  static constexpr int kShown = 5;
  const TopologyReadOptions& options_;
  std::string source_;
  std::map<std::string, int> count_;
};

// Line i of an adjacency list names j but line j does not name i.
bool one_sided_as_adjacency(const std::vector<PlainLine>& body, long n) {
  std::set<std::pair<long, long>> listed;
  for (std::size_t i = 0; i < body.size(); ++i)
    for (long v : body[i].ids) listed.insert({static_cast<long>(i), v});
  for (const auto& [i, j] : listed)
    if (j >= 0 && j < n && !listed.count({j, i})) return true;
  return false;
}

// The plain format to read: the one asked for, else by extension, else guessed from the
// content (with a warning saying so: a ring read as the wrong format is a different graph).
std::string plain_format(const std::string& asked, const std::vector<PlainLine>& body, long n,
                         const std::string& source, Warnings& warnings) {
  if (asked == "edges" || asked == "adj") return asked;
  const std::string ext = std::filesystem::path(source).extension().string();
  if (ext == ".edges" || ext == ".edgelist" || ext == ".el") return "edges";
  if (ext == ".adj" || ext == ".adjlist") return "adj";
  bool all_pairs = true, names_itself = false;
  for (std::size_t row = 0; row < body.size(); ++row) {
    if (body[row].ids.size() != 2 && !body[row].ids.empty()) all_pairs = false;
    for (long v : body[row].ids)
      if (v == static_cast<long>(row)) names_itself = true;
  }
  std::string kind = "adj", why = "lines do not all hold two ids";
  if (all_pairs && static_cast<long>(body.size()) != n) {
    kind = "edges", why = "every line holds two ids and there are not n lines";
  } else if (all_pairs && names_itself) {
    kind = "edges", why = "line i names node i, which an adjacency list never does";
  } else if (all_pairs && one_sided_as_adjacency(body, n)) {
    kind = "edges", why = "read as an adjacency list, neighbours would be one-sided";
  } else if (all_pairs) {
    why = "n lines of two ids, each neighbour named from both sides";
  }
  warnings.emit(source + ": format guessed: read as " +
                (kind == "edges" ? std::string("an edge list") : "an adjacency list") + " (" + why +
                "); name the format with --format edges|adj or the config key "
                "topology_format, or use the extension .edges or .adj");
  return kind;
}

// Edges of a plain file with the line of each, undirected and each kept once.
struct PlainEdges {
  PlainEdges(long n_in, std::string source_in) : n(n_in), source(std::move(source_in)) {}
  long n;
  std::string source;
  std::vector<Edge> edges;
  std::vector<int> lines;
  std::map<std::pair<long, long>, int> first_line;

  // Returns the line where the edge was first given (0: new).
  int add(long u, long v, int line) {
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
    const auto [it, inserted] =
        first_line.emplace(std::make_pair(std::min(u, v), std::max(u, v)), line);
    if (!inserted) return it->second;
    edges.push_back({static_cast<int>(u), static_cast<int>(v), std::nullopt});
    lines.push_back(line);
    return 0;
  }
};

void read_edge_list(const std::vector<PlainLine>& body, PlainEdges& edges, Warnings& warnings) {
  for (const auto& l : body) {
    if (l.ids.empty()) continue;
    const std::string where = edges.source + ":" + std::to_string(l.number);
    if (l.ids.size() != 2)
      throw TopologyError(where + ": expected an edge \"u v\" (two node ids), got " +
                          std::to_string(l.ids.size()) + " values");
    if (const int first = edges.add(l.ids[0], l.ids[1], l.number))
      warnings.add("repeated-edge", where + ": repeated edge " + std::to_string(l.ids[0]) + " " +
                                        std::to_string(l.ids[1]) + " (first at line " +
                                        std::to_string(first) + "); kept once");
  }
}

void read_adjacency_list(const std::vector<PlainLine>& body, long n, PlainEdges& edges,
                         Warnings& warnings) {
  if (static_cast<long>(body.size()) > n)
    throw TopologyError(edges.source + ":" + std::to_string(body[n].number) +
                        ": adjacency list has more lines than n = " + std::to_string(n) + " nodes");
  std::set<std::pair<long, long>> listed;
  for (std::size_t i = 0; i < body.size(); ++i) {
    const std::string where = edges.source + ":" + std::to_string(body[i].number);
    for (long v : body[i].ids) {
      if (!listed.insert({static_cast<long>(i), v}).second) {
        warnings.add("repeated-edge", where + ": neighbour " + std::to_string(v) +
                                          " repeated on the line of node " + std::to_string(i) +
                                          "; kept once");
        continue;
      }
      edges.add(static_cast<long>(i), v, body[i].number);
    }
  }
  for (const auto& [i, j] : listed)
    if (!listed.count({j, i}))
      warnings.add("one-sided", edges.source + ":" + std::to_string(body[i].number) + ": node " +
                                    std::to_string(i) + " names neighbour " + std::to_string(j) +
                                    " but the line of node " + std::to_string(j) +
                                    " does not name " + std::to_string(i) +
                                    "; the edge is kept in both directions");
}

}  // namespace

const std::vector<std::string>& topology_formats() {
  static const std::vector<std::string> formats = {"auto", "json", "edges", "adj"};
  return formats;
}

void check_topology_format(const std::string& format) {
  const auto& valid = topology_formats();
  if (std::find(valid.begin(), valid.end(), format) == valid.end())
    throw TopologyError("unknown topology format \"" + format + "\"; did you mean \"" +
                        nearest(format, valid) + "\"? valid: " + join(valid));
}

Topology parse_topology_json(const std::string& text, const std::string& source,
                             const TopologyReadOptions& options) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    throw TopologyError(json_syntax_error(text, e.byte, e.what(), source));
  } catch (const nlohmann::json::exception& e) {  // e.g. a number too large for a double
    throw TopologyError(source + ": " + e.what());
  }
  try {
    return parse_json_value(j, source, element_lines(text, "nodes"), element_lines(text, "edges"),
                            options.max_nodes);
  } catch (const nlohmann::json::exception& e) {
    throw TopologyError(source + ": " + e.what());
  }
}

Topology parse_topology_json(const nlohmann::json& j, const std::string& source,
                             const TopologyReadOptions& options) {
  try {
    return parse_json_value(j, source, {}, {}, options.max_nodes);
  } catch (const nlohmann::json::exception& e) {
    throw TopologyError(source + ": " + e.what());
  }
}

Topology parse_topology_plain(const std::string& text, const std::string& source,
                              const TopologyReadOptions& options) {
  check_topology_format(options.format);
  if (options.format == "json")
    throw TopologyError(source +
                        ": format json was asked for, but the file does not start "
                        "with '{'; is it an edge list (--format edges) or an "
                        "adjacency list (--format adj)?");
  std::vector<PlainLine> lines = read_plain_lines(text, source);
  auto first =
      std::find_if(lines.begin(), lines.end(), [](const PlainLine& l) { return !l.ids.empty(); });
  if (first == lines.end()) throw TopologyError(source + ": empty file; the first line must be n");
  if (first->ids.size() != 1 || first->ids[0] < 1) {
    throw TopologyError(source + ":" + std::to_string(first->number) +
                        ": the first line must hold the number of nodes n >= 1");
  }
  const long n = first->ids[0];
  const std::vector<PlainLine> body(first + 1, lines.end());
  check_topology_size(n, static_cast<long>(body.size()), options.max_nodes, source);
  Warnings warnings(options, source);
  const std::string kind = plain_format(options.format, body, n, source, warnings);
  PlainEdges edges(n, source);
  if (kind == "edges") {
    read_edge_list(body, edges, warnings);
  } else {
    read_adjacency_list(body, n, edges, warnings);
  }
  warnings.flush();
  std::vector<NodeInfo> nodes;
  nodes.reserve(static_cast<std::size_t>(n));
  for (long i = 0; i < n; ++i)
    nodes.push_back({static_cast<int>(i), "127.0.0.1", default_port(static_cast<int>(i))});
  return Topology(stem_of(source), false, Schedule::kStatic, MixingKind::kMetropolis,
                  std::move(nodes), std::move(edges.edges), source, {}, edges.lines);
}

Topology load_topology(const std::string& path, const TopologyReadOptions& options) {
  check_topology_format(options.format);
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
  const bool looks_json = first != std::string::npos && (text[first] == '{' || text[first] == '[');
  if (options.format == "json" || (options.format == "auto" && looks_json))
    return parse_topology_json(text, path, options);
  return parse_topology_plain(text, path, options);
}

void save_topology(const Topology& topology, const std::string& path) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp);
    if (!out) throw TopologyError(path + ": cannot write the topology file");
    // One node and one edge per line keeps files diffable and error lines meaningful.
    const nlohmann::json j = topology.to_json();
    out << "{\n";
    for (const char* key : {"name", "directed", "schedule", "mixing", "fanout", "seed"})
      if (j.contains(key)) out << "  \"" << key << "\": " << j[key].dump() << ",\n";
    if (topology.ports_explicit() && topology.size() > 0)
      out << "  \"base_port\": " << topology.node(0).port << ",\n";
    auto write_list = [&](const char* key, const nlohmann::json& list, bool last) {
      out << "  \"" << key << "\": [";
      for (std::size_t i = 0; i < list.size(); ++i)
        out << (i ? ",\n    " : "\n    ") << list[i].dump();
      out << (list.empty() ? "]" : "\n  ]") << (last ? "\n" : ",\n");
    };
    write_list("nodes", j["nodes"], false);
    write_list("edges", j["edges"], !j.contains("rounds"));
    if (j.contains("rounds")) write_list("rounds", j["rounds"], true);
    out << "}\n";
    if (!out) throw TopologyError(path + ": write failed (disk full?)");
  }
  std::filesystem::rename(tmp, path);
}

}  // namespace rumor
