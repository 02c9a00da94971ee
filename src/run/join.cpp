// `rumor node --join`: the settings a running node hands over, the joiner's checks of them,
// and the slot it takes (join.hpp).
#include "rumor/run/join.hpp"

#include <charconv>
#include <filesystem>
#include <iostream>

#include "rumor/common/error.hpp"
#include "rumor/common/log.hpp"
#include "rumor/net/join.hpp"
#include "rumor/net/secret.hpp"
#include "rumor/run/setup.hpp"

namespace rumor::run {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr int kMaxSettingsDepth = 64;  // a config nests a few levels; the topology two
constexpr std::chrono::milliseconds kJoinTimeout{30000};
constexpr std::chrono::milliseconds kProbeTimeout{1000};

json::json_pointer pointer(const std::string& dotted) {
  std::string p = "/" + dotted;
  for (auto& ch : p)
    if (ch == '.') ch = '/';
  return json::json_pointer(p);
}

// Keys whose values only make sense on the serving node's machine, or guard the run; not part
// of the run id. Where the joiner writes is its own choice (output.dir: its default or --set).
const std::vector<std::string>& local_keys() {
  static const std::vector<std::string> k = {"network.secret_file", "network.tls_cert",
                                             "network.tls_key", "network.tls_ca", "output.dir"};
  return k;
}

// Removes a dotted key (left to its default), if there.
void drop(json& doc, const std::string& key) {
  const auto p = pointer(key);
  if (doc.contains(p.parent_pointer()) && doc[p.parent_pointer()].is_object())
    doc[p.parent_pointer()].erase(p.back());
}

// How deep arrays and objects nest in JSON text (strings skipped), stopping past `limit`.
int nesting(const std::string& text, int limit) {
  int depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (char ch : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (ch == '\\') {
        escaped = true;
      } else if (ch == '"') {
        in_string = false;
      }
      continue;
    }
    if (ch == '"') in_string = true;
    if (ch == '[' || ch == '{') deepest = std::max(deepest, ++depth);
    if (ch == ']' || ch == '}') --depth;
    if (deepest > limit) break;
  }
  return deepest;
}

// The settings as JSON: bounded, parsed, an object with a run id and a written-out topology.
json parse_settings(const std::string& text, const std::string& from) {
  const std::string where = "the settings from " + from;
  if (text.size() > net::kMaxJoinSettingsBytes)
    throw ConfigError(where + " are " + std::to_string(text.size()) + " bytes, over the " +
                      std::to_string(net::kMaxJoinSettingsBytes) + " a joiner takes");
  if (nesting(text, kMaxSettingsDepth) > kMaxSettingsDepth)
    throw ConfigError(where + " nest deeper than " + std::to_string(kMaxSettingsDepth) +
                      " levels: not a run's settings");
  json doc = json::parse(text, nullptr, false);
  if (doc.is_discarded()) throw ConfigError(where + " are not JSON: not a run's settings");
  const bool shaped = doc.is_object() && doc.contains("rumor") && doc["rumor"].is_object() &&
                      doc["rumor"].value("run_id", json()).is_string();
  if (!shaped) throw ConfigError(where + " carry no run id (\"rumor\": {\"run_id\": ...})");
  const json& topology = doc.value("topology", json());
  if (!topology.is_object() || !topology.value("nodes", json()).is_array())
    throw ConfigError(where +
                      ": the topology must be written out (\"nodes\": [...]), "
                      "not a file name or a generator");
  return doc;
}

std::pair<std::string, int> split_address(const std::string& address) {
  const auto colon = address.rfind(':');
  int port = 0;
  const char* end = address.data() + address.size();
  if (colon != std::string::npos && colon > 0) {
    const auto [p, ec] = std::from_chars(address.data() + colon + 1, end, port);
    if (ec == std::errc() && p == end && port > 0 && port < 65536)
      return {address.substr(0, colon), port};
  }
  throw ConfigError("--join '" + address +
                    "': give the address of a running node of the run as HOST:PORT "
                    "(its topology entry), e.g. --join 10.0.0.5:29400");
}

std::string slot_list(const Topology& t) {
  std::string out;
  for (int i = 0; i < t.size(); ++i)
    if (t.standby(i)) out += (out.empty() ? "" : ", ") + std::to_string(i);
  return out.empty() ? "none" : out;
}

}  // namespace

std::string join_settings(const config::Config& c) {
  json doc = c.json();
  for (const auto& [key, value] : c.paths_as_written().items()) doc[pointer(key)] = value;
  for (const auto& key : local_keys()) drop(doc, key);
  doc["rumor"] = {{"run_id", c.run_id()}};
  return doc.dump();
}

config::Config config_from_join_settings(const std::string& settings, const std::string& from,
                                         const std::vector<std::string>& overrides) {
  json doc = parse_settings(settings, from);
  const std::string run_id = doc["rumor"]["run_id"].get<std::string>();
  for (const auto& key : local_keys()) drop(doc, key);  // never the sender's
  const std::string origin = "the settings from " + from;
  try {
    auto cfg = config::Config::from_json(doc, origin, fs::current_path().string(), overrides);
    if (cfg.run_id() != run_id)
      throw ConfigError(origin + " make run id '" + cfg.run_id() + "' here, but the run is '" +
                        run_id +
                        "': a --set changed what makes the run (only output.*, "
                        "network.secret_file, the TLS files and such may differ)");
    return cfg;
  } catch (const json::exception& e) {
    throw ConfigError(origin + ": a value has the wrong type (" + e.what() + ")");
  }
}

int pick_join_slot(const Topology& t, int wanted, const std::function<bool(int)>& running) {
  const std::string where = "topology '" + t.name() + "'";
  if (wanted >= t.size())
    throw ConfigError("--id " + std::to_string(wanted) + ": " + where + " has nodes 0.." +
                      std::to_string(t.size() - 1) + "; its standby slots: " + slot_list(t));
  if (wanted >= 0 && !t.standby(wanted))
    throw ConfigError("--id " + std::to_string(wanted) + ": node " + std::to_string(wanted) +
                      " of " + where +
                      " is not a standby node: it runs from the start. A joiner takes a "
                      "slot marked \"standby\": true: " +
                      slot_list(t));
  if (wanted >= 0 && running(wanted))
    throw ConfigError("--id " + std::to_string(wanted) + ": node " + std::to_string(wanted) +
                      " is running already (something answers at " + t.node(wanted).host + ":" +
                      std::to_string(t.node(wanted).port) + "); take another standby slot (" +
                      slot_list(t) + ") or leave out --id");
  if (wanted >= 0) return wanted;
  for (int i = 0; i < t.size(); ++i)
    if (t.standby(i) && !running(i)) return i;
  throw ConfigError(where + " has no free standby slot to join (standby nodes: " + slot_list(t) +
                    ", each running already); a joiner takes a node marked \"standby\": true");
}

RunResult join_run(const JoinOptions& o) {
  const auto [host, port] = split_address(o.address);
  if (o.secret_file.empty())
    throw ConfigError(
        "rumor node --join needs --secret-file FILE, the run secret every node "
        "of the run holds (launch writes it to RUNDIR/secret)");
  const std::string secret = net::read_secret_file(o.secret_file);
  const auto answer = net::request_join_settings(host, port, secret, kJoinTimeout);
  const std::string from = "node " + std::to_string(answer.node) + " at " + o.address;
  auto overrides = o.overrides;
  overrides.push_back("network.secret_file=" + fs::absolute(o.secret_file).string());
  const auto cfg = config_from_join_settings(answer.settings, from, overrides);
  const Topology topology = topology_of(cfg);
  const int id = pick_join_slot(topology, o.id, [&](int i) {
    return net::address_answers(topology.node(i).host, topology.node(i).port, kProbeTimeout);
  });
  std::cerr << "rumor node --join: run " << cfg.run_id() << " (settings from " << from
            << "): joining as standby node " << id << "\n";
  RunOptions ro;
  ro.threads = o.threads;
  return run_node(cfg, id, ro);
}

}  // namespace rumor::run
