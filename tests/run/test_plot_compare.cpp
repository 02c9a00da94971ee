// tools/plot_compare.py on hand-written compare.json documents: the figures a document has
// data for, none for what no cell recorded, and fixed method colours across grids.
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const std::string python = "/usr/bin/python3";

std::string tools_dir() {
  return std::string(RUMOR_SOURCE_DIR) + "/tools";
}

// The plots need Debian's python3-matplotlib; without it `rumor compare` skips them too.
bool have_matplotlib() {
  static const bool have =
      std::system((python + " -c 'import matplotlib' >/dev/null 2>&1").c_str()) == 0;
  return have;
}

// A cell whose curve has the given keys at rounds 9, 19, 29 (values rising with the round).
json cell(const std::string& group, const std::string& method, int seed,
          const std::vector<std::string>& keys) {
  json curve = json::array();
  for (int i = 1; i <= 3; ++i) {
    json p = {{"round", 10 * i - 1}};
    for (const auto& k : keys) p[k] = 0.1 * i + 0.01 * seed;
    curve.push_back(p);
  }
  return {{"group", group},   {"cell", group + " seed=" + std::to_string(seed)},
          {"method", method}, {"codec", "fp32"},
          {"seed", seed},     {"curve", curve}};
}

// Writes doc as DIR/compare.json, runs the plot script on it; returns its exit status.
int plot(const fs::path& dir, const json& doc) {
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::ofstream(dir / "compare.json") << doc.dump();
  const std::string cmd = python + " '" + tools_dir() + "/plot_compare.py' '" +
                          (dir / "compare.json").string() + "' 2>/dev/null";
  return std::system(cmd.c_str());
}

// Runs python code with tools/ on the path; 0 when its assertions hold.
int python_check(const std::string& code) {
  const fs::path file = fs::temp_directory_path() / "rumor_plot_check.py";
  std::ofstream(file) << "import sys\nsys.path.insert(0, '" << tools_dir()
                      << "')\nimport plot_compare as p\n"
                      << code << "\n";
  return std::system((python + " '" + file.string() + "'").c_str());
}

}  // namespace

TEST_SUITE("run") {
  TEST_CASE("plot_compare: a figure for each quantity the cells recorded, none for the rest") {
    if (!have_matplotlib()) {
      MESSAGE("skipped: /usr/bin/python3 has no matplotlib (Debian: python3-matplotlib)");
      return;
    }
    const std::vector<std::string> keys = {"test_acc", "mb_sent", "consensus_dist"};
    json doc = {{"grid", "g"},
                {"axes", {"method", "data.partition.alpha", "seed"}},
                {"target_acc", 0.2},
                {"cells", json::array()},
                {"failed",
                 {{{"cell", "method=qgm data.partition.alpha=0.1 seed=2"},
                   {"group", "method=qgm data.partition.alpha=0.1"},
                   {"error", "node 3: training diverged at round 12 (the loss is not finite)"}}}},
                {"partitions",
                 {{{"seed", 1},
                   {"partition", {{"kind", "dirichlet"}, {"alpha", 0.1}}},
                   {"label_skew", 0.6},
                   {"counts", {{5, 0, 1}, {0, 7, 0}}}}}}};
    for (const std::string m : {"dpsgd", "qgm"})
      for (const std::string a : {"10", "0.1"})
        for (int seed : {1, 2})
          doc["cells"].push_back(cell("method=" + m + " data.partition.alpha=" + a, m, seed, keys));
    const fs::path dir = fs::temp_directory_path() / "rumor_plot_compare_full";
    REQUIRE(plot(dir, doc) == 0);
    for (const char* f :
         {"accuracy_vs_round.png", "accuracy_vs_mb.png", "consensus_vs_round.png", "partition.png"})
      CHECK_MESSAGE(fs::file_size(dir / f) > 1000, f);
    // No cell has simulated time: no such figure.
    CHECK_FALSE(fs::exists(dir / "accuracy_vs_sim_time.png"));
  }

  TEST_CASE("plot_compare: missing axes, curves, partitions and cells do not fail it") {
    if (!have_matplotlib()) {
      MESSAGE("skipped: /usr/bin/python3 has no matplotlib (Debian: python3-matplotlib)");
      return;
    }
    const fs::path dir = fs::temp_directory_path() / "rumor_plot_compare_sparse";
    // No "axes", no partitions, a curve without accuracy or bytes (a consensus task).
    json doc = {{"grid", "sparse"},
                {"cells", {cell("all", "sgp", 1, {"consensus_dist"}), json{{"group", "x"}}}}};
    REQUIRE(plot(dir, doc) == 0);
    CHECK(fs::exists(dir / "consensus_vs_round.png"));
    for (const char* f : {"accuracy_vs_round.png", "accuracy_vs_mb.png", "accuracy_vs_sim_time.png",
                          "partition.png"})
      CHECK_FALSE_MESSAGE(fs::exists(dir / f), f);
    // Every cell failed: nothing to draw, and that is not an error.
    const json none = {{"grid", "none"},
                       {"axes", {"method"}},
                       {"cells", json::array()},
                       {"failed", {{{"group", "method=sgp"}, {"error", "diverged at round 3"}}}}};
    REQUIRE(plot(dir, none) == 0);
    CHECK(std::distance(fs::directory_iterator(dir), fs::directory_iterator()) == 1);
  }

  TEST_CASE("plot_compare: a method keeps its colour in every grid, labels with spaces split") {
    if (!have_matplotlib()) {
      MESSAGE("skipped: /usr/bin/python3 has no matplotlib (Debian: python3-matplotlib)");
      return;
    }
    CHECK(python_check(R"(
a = p.line_styles(["dpsgd", "qgm"], {"dpsgd": ("dpsgd", "fp32"), "qgm": ("qgm", "fp32")})
b = p.line_styles(["sgp sync", "dpsgd ring16", "sgp overlap"],
                  {"sgp sync": ("sgp", "fp32"), "dpsgd ring16": ("dpsgd", "fp32"),
                   "sgp overlap": ("sgp", "fp32")})
assert a["dpsgd"]["color"] == b["dpsgd ring16"]["color"]
assert a["dpsgd"]["color"] != a["qgm"]["color"]
assert b["sgp sync"]["linestyle"] != b["sgp overlap"]["linestyle"]
doc = {"axes": ["links.latency_s", "faults.slow_nodes", "method", "seed"]}
got = p.axis_labels(doc, "links.latency_s=link 5 ms faults.slow_nodes=4x straggler "
                         "method=sgp overlap tau=1")
assert got == {"links.latency_s": "link 5 ms", "faults.slow_nodes": "4x straggler",
               "method": "sgp overlap tau=1"}, got
assert p.axis_labels(doc, "something else") == {}
)") == 0);
  }
}
