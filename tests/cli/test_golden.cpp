// Golden outputs: the runs listed in tests/golden/runs.json must give the same metrics as
// when they were recorded. Every key a recorded node line or summary.json has (wall-clock
// fields aside) must hold the same value; keys added since are allowed beside them.
// RUMOR_GOLDEN_RECORD=1 rewrites the recorded files instead (only for an intended change).
// The runs use the BLAS and LibTorch kernels named in kPinnedKernels.
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cli/cli_run.hpp"
#include "cli/golden_compare.hpp"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace golden_compare;

// One node line per text line, so a change shows as a readable diff.
void write_golden(const fs::path& path, const json& g) {
  std::ofstream out(path);
  out << "{\"summary\": " << g["summary"].dump() << ",\n";
  if (g.contains("in_flight")) out << " \"in_flight\": " << g["in_flight"].dump() << ",\n";
  out << " \"nodes\": [\n";
  for (std::size_t i = 0; i < g["nodes"].size(); ++i) {
    out << "  [\n";
    const auto& lines = g["nodes"][i];
    for (std::size_t k = 0; k < lines.size(); ++k)
      out << "   " << lines[k].dump() << (k + 1 < lines.size() ? ",\n" : "\n");
    out << "  ]" << (i + 1 < g["nodes"].size() ? ",\n" : "\n");
  }
  out << " ]}\n";
}

// The kernels are pinned: OpenBLAS and LibTorch pick them by CPU, and another kernel rounds
// differently (the same build gave losses 3e-7 apart on an AMD EPYC whose OpenBLAS chose its
// Haswell kernels and on one where it chose Cooperlake). Every x86-64 CPU with AVX2 and FMA
// runs these, so the recorded files hold on any such machine.
constexpr const char* kPinnedKernels = "OPENBLAS_CORETYPE=Haswell ATEN_CPU_CAPABILITY=avx2 ";

void check_golden(const json& run) {
  const std::string name = run.at("name");
  REQUIRE_MESSAGE((__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")),
                  "the golden runs pin AVX2 kernels; this CPU has no AVX2 or FMA");
  const fs::path golden = fs::path(RUMOR_SOURCE_DIR) / "tests" / "golden";
  const auto dir = cli_test::scratch("golden-" + name);
  std::string cmd = "cd " + std::string(RUMOR_SOURCE_DIR) + " && " + kPinnedKernels +
                    cli_test::rumor_path() + " launch " +
                    (golden / run.at("config").get<std::string>()).string() +
                    (run.at("inprocess").get<bool>() ? " --inprocess" : "") +
                    " --log-level warn --set output.dir=" + dir.string();
  for (const auto& s : run.at("set")) cmd += " --set '" + s.get<std::string>() + "'";
  const auto r = cli_test::shell(cmd);
  INFO(cmd);
  INFO(r.out);
  REQUIRE(r.code == 0);
  const json got = outputs_of(only_subdir(dir));
  // "golden": another run's file, which this variant must match (e.g. the same run over TLS).
  const std::string recorded = run.value("golden", name);
  const fs::path file = golden / (recorded + ".json");
  if (const char* rec = std::getenv("RUMOR_GOLDEN_RECORD"); rec && std::string(rec) == "1") {
    if (recorded != name) return;  // compared with `recorded`'s file, never written
    write_golden(file, got);
    MESSAGE("recorded " << file.string());
    return;
  }
  REQUIRE_MESSAGE(fs::exists(file), "no golden file " << file << " (record it first)");
  const json want = read_json(file);
  REQUIRE(want.at("nodes").size() == got.at("nodes").size());
  std::vector<std::string> diffs;
  compare(want, got, name, diffs);
  std::ostringstream all;
  for (const auto& d : diffs) all << d << "\n";
  CHECK_MESSAGE(diffs.empty(), "metrics moved against tests/golden/" << recorded << ".json:\n"
                                                                     << all.str());
}

json golden_runs() {
  return read_json(fs::path(RUMOR_SOURCE_DIR) / "tests" / "golden" / "runs.json").at("runs");
}

}  // namespace

TEST_SUITE("golden") {
  TEST_CASE("golden outputs: in-process runs of every method give the recorded metrics") {
    for (const auto& run : golden_runs()) {
      if (!run.at("inprocess").get<bool>()) continue;
      CAPTURE(run.at("name").get<std::string>());
      check_golden(run);
    }
  }

  TEST_CASE("golden outputs: TCP runs give the recorded metrics") {
    for (const auto& run : golden_runs()) {
      if (run.at("inprocess").get<bool>()) continue;
      CAPTURE(run.at("name").get<std::string>());
      check_golden(run);
    }
  }
}
