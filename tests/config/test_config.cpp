#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "rumor/common/error.hpp"
#include "rumor/config/config.hpp"
#include "rumor/gossip/method.hpp"

using namespace rumor;
using nlohmann::json;

namespace {
config::Config from(const json& j, std::vector<std::string> overrides = {}) {
  return config::Config::from_json(j, "test.json", RUMOR_SOURCE_DIR, overrides);
}
}  // namespace

TEST_SUITE("config") {
  TEST_CASE(
      "topology.schedule and topology.fanout turn a file's or a generator's nodes into peer "
      "sampling") {
    // A file: its nodes (hosts, ports) stay, its edges go; the draws take the run's seed.
    const auto c = from({{"topology", "topologies/ring8.json"}, {"seed", 5}},
                        {"topology.schedule=peer-sampling", "topology.fanout=2"});
    const auto& t = c.at("topology");
    CHECK(t["schedule"] == "peer-sampling");
    CHECK(t["fanout"] == 2);
    CHECK(t["seed"] == 5);
    CHECK(t["nodes"].size() == 8);
    CHECK(t["edges"].empty());
    CHECK(t["directed"] == true);
    CHECK(t["name"] == "ring8-peer-sampling");
    // A generator: the same keys beside its own.
    const auto g = from({{"topology", {{"gen", "ring"}, {"nodes", 16}}}},
                        {"topology.schedule=peer-sampling", "topology.fanout=3"});
    CHECK(g.at("topology")["nodes"].size() == 16);
    CHECK(g.at("topology")["fanout"] == 3);
    CHECK(g.at("topology")["seed"] == 1);
    // The run id follows the fanout.
    CHECK(from({{"topology", "topologies/ring8.json"}, {"seed", 5}},
               {"topology.schedule=peer-sampling", "topology.fanout=1"})
              .run_id() != c.run_id());
    CHECK_THROWS_WITH_AS(
        from({{"topology", "topologies/ring8.json"}}, {"topology.schedule=peer-sampling"}),
        doctest::Contains("\"fanout\" 0 is out of range"), TopologyError);
    CHECK_THROWS_WITH_AS(
        from({{"topology", "topologies/ring8.json"}}, {"topology.schedule=one-peer-exponential"}),
        doctest::Contains("only \"peer-sampling\""), ConfigError);
  }

  TEST_CASE("every key has a default and the resolved config holds them all") {
    const auto c = from(json::object());
    for (const auto& k : config::keys()) {
      CAPTURE(k.path);
      if (k.path == "topology") continue;  // resolved to the topology itself
      CHECK(c.at(k.path) == k.default_value);
    }
    CHECK(c.at("topology")["nodes"].size() == 8);
    CHECK(config::keys_help().find("optimizer.lr") != std::string::npos);
  }

  TEST_CASE("unknown keys are refused with the nearest valid name") {
    CHECK_THROWS_WITH_AS(from({{"optimiser", {{"lr", 0.1}}}}),
                         doctest::Contains("did you mean \"optimizer"), ConfigError);
    CHECK_THROWS_WITH_AS(from({{"optimizer", {{"lr_", 0.1}}}}),
                         doctest::Contains("\"optimizer.lr\""), ConfigError);
    CHECK_THROWS_WITH_AS(from({{"rounds", "ten"}}), doctest::Contains("must be int"), ConfigError);
    CHECK_THROWS_WITH_AS(from({{"modle", {{"name", "mlp"}}}}), doctest::Contains("\"model\""),
                         ConfigError);
    CHECK_THROWS_WITH_AS(from({{"task", "dance"}}), doctest::Contains("train, average"),
                         ConfigError);
  }

  TEST_CASE("a generated topology takes the keys its generator's registry entry lists") {
    const auto torus = from({{"topology", {{"gen", "torus"}, {"nodes", 12}, {"rows", 3}}}});
    CHECK(torus.at("topology")["nodes"].size() == 12);
    CHECK(from({{"topology", {{"gen", "social"}}}}).at("topology")["nodes"].size() == 32);
    const auto er = json{{"gen", "erdos-renyi"}, {"nodes", 10}, {"p", 0.5}, {"seed", 4}};
    CHECK(from({{"topology", er}}).at("topology") ==
          from({{"topology", er}}).at("topology"));  // reproducible
    // ring takes no p: the error lists ring's own keys, not every generator's.
    CHECK_THROWS_WITH_AS(from({{"topology", {{"gen", "ring"}, {"nodes", 8}, {"p", 0.5}}}}),
                         doctest::Contains("\"topology.p\" for generator \"ring\"; valid: gen, "
                                           "nodes, host, base_port"),
                         ConfigError);
    CHECK_THROWS_WITH_AS(
        from({{"topology", {{"gen", "small-world"}, {"nodes", 8}, {"rows", 2}}}}),
        doctest::Contains("valid: gen, nodes, host, base_port, max_nodes, seed, k, beta"),
        ConfigError);
    CHECK_THROWS_WITH_AS(from({{"topology", {{"gen", "torus"}, {"nodes", 12}, {"rows", "3"}}}}),
                         doctest::Contains("bad \"topology\""), ConfigError);
    CHECK_THROWS_WITH_AS(from({{"topology", {{"gen", "rign"}, {"nodes", 8}}}}),
                         doctest::Contains("did you mean \"ring\""), TopologyError);
  }

  TEST_CASE(
      "numeric keys are range-checked: no negative counts or timeouts, no wrap, no zero size") {
    for (const auto& [key, bad] :
         std::vector<std::pair<std::string, json>>{{"rounds", 0},
                                                   {"rounds", -5},
                                                   {"seed", json(18446744073709551615ull)},
                                                   {"network.max_frame_mb", 0},
                                                   {"network.max_frame_mb", 1e300},
                                                   {"network.round_timeout_s", -1},
                                                   {"network.connect_timeout_s", -1},
                                                   {"network.max_rounds_ahead", 0},
                                                   {"network.mailbox_mb", 0},
                                                   {"network.mailbox_mb", 1e300},
                                                   {"network.max_pending_handshakes", 0},
                                                   {"links.loss", 1.0},
                                                   {"batch_size", 0},
                                                   {"optimizer.momentum", 1.5},
                                                   {"network.max_rejects", 0}}) {
      CAPTURE(key);
      CHECK_THROWS_WITH_AS(from({}, {key + "=" + bad.dump()}),
                           doctest::Contains(("key \"" + key + "\" must be between").c_str()),
                           ConfigError);
    }
    // Every default is inside its own range, and `rumor config keys` shows the range.
    for (const auto& k : config::keys()) {
      CAPTURE(k.path);
      if (k.default_value.is_number())
        CHECK((k.default_value.get<double>() >= k.min && k.default_value.get<double>() <= k.max));
    }
    CHECK(config::keys_help().find("rounds  (int, default 1000, 1..1e+12)") != std::string::npos);
    CHECK_NOTHROW(from({}, {"rounds=1", "links.loss=0.5", "network.round_timeout_s=0"}));
  }

  TEST_CASE("method options come from the methods' registry entries, declared once") {
    const auto c = from(json::object());
    for (const auto& m : gossip::methods()) {
      CAPTURE(m.name);
      CHECK(config::keys_help().find(m.name) != std::string::npos);
      for (const auto& o : m.options) {
        CAPTURE(o.path);
        CHECK(o.path.rfind("method.", 0) == 0);
        const auto k = std::find_if(config::keys().begin(), config::keys().end(),
                                    [&](const config::KeyInfo& x) { return x.path == o.path; });
        REQUIRE(k != config::keys().end());
        CHECK(k->default_value == o.default_value);  // one default, wherever it is read
        CHECK(c.at(o.path) == o.default_value);
        CHECK(gossip::option_value(m, json::object(), o.path.substr(7)) == o.default_value);
      }
    }
    // Ranges declared by a method are checked like any other key.
    CHECK_THROWS_WITH_AS(from({}, {"method.bits=9"}), doctest::Contains("method.bits"),
                         ConfigError);
    CHECK_THROWS_WITH_AS(from({}, {"method.gammma=0.1"}), doctest::Contains("method.gamma"),
                         ConfigError);
    // method.gamma: a number in its range, or "auto" (the default), nothing else.
    CHECK(c.at("method.gamma") == "auto");
    CHECK(from({}, {"method.gamma=0.25"}).get<double>("method.gamma") == 0.25);
    CHECK(from({}, {"method.gamma=auto"}).at("method.gamma") == "auto");
    CHECK_THROWS_WITH_AS(from({}, {"method.gamma=fast"}), doctest::Contains("number|auto"),
                         ConfigError);
    CHECK_THROWS_WITH_AS(from({}, {"method.gamma=11"}), doctest::Contains("between 0 and 10"),
                         ConfigError);
    CHECK_THROWS_AS(gossip::option_value(gossip::method_info("sgp"), json::object(), "gamma"),
                    Error);
  }

  TEST_CASE("a method's own default for a run key applies only where the config is silent") {
    // DiLoCo's inner optimizer is adamw unless the config names one.
    CHECK(from({}, {"method.name=diloco"}).get<std::string>("optimizer.name") == "adamw");
    CHECK(from({{"method", {{"name", "diloco"}}}, {"optimizer", {{"name", "sgd"}}}})
              .get<std::string>("optimizer.name") == "sgd");
    CHECK(
        from({}, {"method.name=diloco", "optimizer.name=sgd"}).get<std::string>("optimizer.name") ==
        "sgd");
    CHECK(from({}, {"method.name=dpsgd"}).get<std::string>("optimizer.name") == "sgd");
    CHECK(from({}).get<std::string>("optimizer.name") == "sgd");
    // Said where the key is documented, from the method's declaration.
    const auto key =
        std::find_if(config::keys().begin(), config::keys().end(),
                     [](const config::KeyInfo& k) { return k.path == "optimizer.name"; });
    REQUIRE(key != config::keys().end());
    CHECK(key->default_value == "sgd");
    CHECK(key->help.find("method diloco: default \"adamw\"") != std::string::npos);
    for (const auto& m : gossip::methods())
      for (const auto& [path, value] : m.run_defaults) {
        CAPTURE(m.name);
        CHECK(from({}, {"method.name=" + m.name}).at(path) == value);
      }
  }

  TEST_CASE("--set overrides any key, parsed as JSON or else as a string") {
    const auto c = from({{"optimizer", {{"lr", 0.1}}}},
                        {"optimizer.lr=0.05", "method.name=sgp", "model.hidden=[64,32]",
                         "topology={\"gen\":\"ring\",\"nodes\":4}"});
    CHECK(c.get<double>("optimizer.lr") == 0.05);
    CHECK(c.get<std::string>("method.name") == "sgp");
    CHECK(c.at("model.hidden") == json::array({64, 32}));
    CHECK(c.at("topology")["nodes"].size() == 4);
    CHECK_THROWS_AS(from({}, {"no-equals-sign"}), ConfigError);
    CHECK_THROWS_WITH_AS(from({}, {"optimizer.lrr=1"}), doctest::Contains("optimizer.lr"),
                         ConfigError);
    // JSON that no double holds is refused by name, not passed through as a raw json error.
    CHECK_THROWS_WITH_AS(from({}, {"rounds=1e712"}), doctest::Contains("--set rounds=1e712"),
                         ConfigError);
  }

  TEST_CASE("the run id is the same for the same config and changes with it") {
    const json base = {{"name", "exp"}, {"seed", 3}, {"rounds", 10}};
    const auto a = from(base);
    const auto b = from(base);
    CHECK(a.run_id() == b.run_id());
    CHECK(a.run_id().rfind("exp-s3-", 0) == 0);
    CHECK(a.run_id().size() == std::string("exp-s3-").size() + 8);
    CHECK(from(base, {"rounds=11"}).run_id() != a.run_id());
    // The topology is part of the hash, not just its file name.
    CHECK(from(base, {"topology=" + std::string(RUMOR_SOURCE_DIR) + "/topologies/ring16.json"})
              .run_id() != a.run_id());
    CHECK(a.run_dir() == "runs/" + a.run_id());
  }

  TEST_CASE("config files: syntax errors give line and column, missing files say so") {
    const auto dir = std::filesystem::temp_directory_path() / "rumor_config_test";
    std::filesystem::create_directories(dir);
    std::ofstream(dir / "bad.json") << "{\n  \"rounds\": 10,\n  \"seed\" 2\n}\n";
    CHECK_THROWS_WITH_AS(config::Config::load((dir / "bad.json").string()),
                         doctest::Contains("bad.json:3:"), ConfigError);
    CHECK_THROWS_WITH_AS(config::Config::load((dir / "none.json").string()),
                         doctest::Contains("no such file"), ConfigError);
    std::ofstream(dir / "huge.json") << "{\"rounds\": 1e712}\n";
    CHECK_THROWS_WITH_AS(config::Config::load((dir / "huge.json").string()),
                         doctest::Contains("huge.json: a value cannot be read"), ConfigError);
    // Relative topology paths resolve against the config's folder too.
    std::ofstream(dir / "t.json") << R"({"nodes": [0, 1, 2], "edges": [[0, 1], [1, 2], [2, 0]]})";
    std::ofstream(dir / "ok.json") << R"({"topology": "t.json"})";
    CHECK(config::Config::load((dir / "ok.json").string()).at("topology")["nodes"].size() == 3);
  }

  TEST_CASE("network.base_port moves nodes without explicit ports") {
    const auto c = from({}, {"network.base_port=31000"});
    CHECK(c.at("topology")["nodes"][3]["port"] == 31003);
    // A launcher's choice of ports does not make it another run.
    CHECK(c.run_id() == from({}).run_id());
    CHECK(from({}, {"seed=2"}).run_id() != from({}).run_id());
  }

  TEST_CASE("paths: a config file's relative to its folder, --set ones to the working directory") {
    namespace fs = std::filesystem;
    const auto root = fs::temp_directory_path() / "rumor_config_paths";
    fs::remove_all(root);
    const std::string text = R"({"topology": "t.json", "model": {"path": "m.pt"},
      "data": {"dataset": "csv:d.csv", "test_file": "sub/../test.csv"}})";
    for (const char* d : {"a", "b/deeper"}) {
      fs::create_directories(root / d);
      std::ofstream(root / d / "t.json") << R"({"nodes": [0, 1, 2], "edges": [[0, 1], [1, 2]]})";
      std::ofstream(root / d / "c.json") << text;
    }
    const auto a = config::Config::load((root / "a" / "c.json").string());
    const std::string dir_a = (root / "a").string();
    CHECK(a.at("topology")["nodes"].size() == 3);
    CHECK(a.get<std::string>("data.dataset") == "csv:" + dir_a + "/d.csv");
    CHECK(a.get<std::string>("data.test_file") == dir_a + "/test.csv");
    CHECK(a.get<std::string>("model.path") == dir_a + "/m.pt");
    CHECK(a.at("network.secret_file").is_null());
    CHECK(a.paths_as_written()["model.path"] == "m.pt");

    // The same file in another folder is the same run.
    const auto b = config::Config::load((root / "b/deeper/c.json").string());
    CHECK(b.get<std::string>("model.path") == (root / "b/deeper/m.pt").string());
    CHECK(b.run_id() == a.run_id());
    // Where a path points counts, as written: another file name is another run.
    const auto c = config::Config::load((root / "a" / "c.json").string(), {"model.path=n.pt"});
    CHECK(c.run_id() != a.run_id());
    CHECK(c.get<std::string>("model.path") == (fs::current_path() / "n.pt").string());
    const auto d =
        config::Config::load((root / "a" / "c.json").string(),
                             {"data.test_file=/srv/t.csv", "topology=" + dir_a + "/t.json"});
    CHECK(d.get<std::string>("data.test_file") == "/srv/t.csv");
    CHECK(d.get<std::string>("data.dataset") == "csv:" + dir_a + "/d.csv");
    // How the links are guarded is not what the run is; TLS paths anchor like other paths.
    const auto tls = config::Config::load(
        (root / "a" / "c.json").string(),
        {"network.tls=true", "network.tls_cert=certs/node-{id}.pem", "network.tls_ca=ca.pem"});
    CHECK(tls.run_id() == a.run_id());
    CHECK(tls.get<std::string>("network.tls_cert") ==
          (fs::current_path() / "certs/node-{id}.pem").string());

    // A recorded config (absolute paths and the paths as written) keeps the run id anywhere.
    json record = a.json();
    record["rumor"] = {{"paths_as_written", a.paths_as_written()}};
    fs::create_directories(root / "record");
    std::ofstream(root / "record" / "config.json") << record.dump();
    const auto again = config::Config::load((root / "record" / "config.json").string());
    CHECK(again.run_id() == a.run_id());
    CHECK(again.get<std::string>("model.path") == dir_a + "/m.pt");
    record.erase("rumor");
    std::ofstream(root / "record" / "config.json") << record.dump();
    CHECK(config::Config::load((root / "record" / "config.json").string()).run_id() != a.run_id());

    // A missing topology file is named with the folder it was looked for in.
    std::ofstream(root / "a" / "bad.json") << R"({"topology": "none.json"})";
    CHECK_THROWS_WITH_AS(config::Config::load((root / "a" / "bad.json").string()),
                         doctest::Contains((dir_a + "/none.json not found").c_str()), ConfigError);
  }

  TEST_CASE("anchor_overrides: a grid's path values become absolute against its folder") {
    const auto out =
        config::anchor_overrides({"topology=../t.json", "topology={\"gen\": \"ring\"}",
                                  "model.path=m.pt", "data.dataset=csv:x.csv", "data.dataset=blobs",
                                  "optimizer.lr=0.1", "model.path=/m.pt", "model.path=\"q.pt\""},
                                 "/g/h");
    CHECK(out == std::vector<std::string>{"topology=/g/t.json", "topology={\"gen\": \"ring\"}",
                                          "model.path=/g/h/m.pt", "data.dataset=csv:/g/h/x.csv",
                                          "data.dataset=blobs", "optimizer.lr=0.1",
                                          "model.path=/m.pt", "model.path=/g/h/q.pt"});
  }
}
