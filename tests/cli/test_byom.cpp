// Bring your own model: the README's TorchScript example, run as written (a module scripted in
// Python, then the rumor command that trains it), and the errors a user meets with a model
// file that is not there.
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "cli/cli_run.hpp"

namespace {

namespace fs = std::filesystem;
using namespace cli_test;
using nlohmann::json;

// The first ``` block of `lang` after `heading` in README.md.
std::string readme_block(const std::string& heading, const std::string& lang) {
  std::ifstream in(src("README.md"));
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  const auto at = text.find(heading);
  REQUIRE_MESSAGE(at != std::string::npos, "README.md has no heading " << heading);
  const std::string open = "```" + lang + "\n";
  const auto begin = text.find(open, at);
  REQUIRE(begin != std::string::npos);
  const auto end = text.find("```", begin + open.size());
  REQUIRE(end != std::string::npos);
  return text.substr(begin + open.size(), end - begin - open.size());
}

// The line of `block` that starts with `prefix`.
std::string line_starting(const std::string& block, const std::string& prefix) {
  std::istringstream in(block);
  for (std::string line; std::getline(in, line);)
    if (line.rfind(prefix, 0) == 0) return line;
  FAIL("no line starting with '" << prefix << "' in:\n" << block);
  return "";
}

void replace_all(std::string& s, const std::string& from, const std::string& to) {
  for (auto p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size()))
    s.replace(p, from.size(), to);
}

// The Python the README tells users to run (Debian's python3-torch lives in /usr/bin);
// RUMOR_TEST_PYTHON picks another one.
std::string python() {
  const char* p = std::getenv("RUMOR_TEST_PYTHON");
  return p && *p ? p : "/usr/bin/python3";
}

// The run directory named on the summary's "results" line, relative to `cwd`.
fs::path results_dir(const std::string& out, const fs::path& cwd) {
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    std::istringstream words(line);
    std::string key, path;
    if (words >> key >> path && key == "results") return cwd / path;
  }
  FAIL("no results line in the output");
  return {};
}

// Every node-*.log under `runs`, concatenated.
std::string node_logs(const fs::path& runs) {
  std::string all;
  if (!fs::is_directory(runs)) return all;
  for (const auto& e : fs::recursive_directory_iterator(runs)) {
    if (e.path().filename().string().rfind("node-", 0) != 0 || e.path().extension() != ".log")
      continue;
    std::ifstream in(e.path());
    all += std::string(std::istreambuf_iterator<char>(in), {});
  }
  return all;
}

const std::string kHeading = "### Bring your own model (TorchScript)";

}  // namespace

TEST_SUITE("cli") {
  TEST_CASE("bring your own model: the README's Python example trains with the README's command") {
    const auto torch = shell(python() + " -c 'import torch'");
    if (torch.code != 0) {
      // ctest reports the test as skipped on this word (SKIP_REGULAR_EXPRESSION).
      std::string why = torch.out;  // the last line says why (e.g. ModuleNotFoundError)
      while (!why.empty() && why.back() == '\n') why.pop_back();
      why = why.substr(why.rfind('\n') + 1);
      MESSAGE("RUMOR_TEST_SKIPPED: " << python() << " cannot import torch (" << why
                                     << "); install python3-torch (tools/install-deps.sh does) "
                                     << "or set RUMOR_TEST_PYTHON to a Python that has it");
      return;
    }
    const auto dir = scratch("byom");
    std::ofstream(dir / "net.py") << readme_block(kHeading, "python");
    const std::string sh = readme_block(kHeading, "sh");
    line_starting(sh, "/usr/bin/python3 net.py");  // the README runs the block as net.py
    const auto script = shell("cd " + dir.string() + " && " + python() + " net.py");
    INFO(script.out);
    REQUIRE(script.code == 0);
    REQUIRE(fs::exists(dir / "net.pt"));

    // The command as the README writes it, run from the folder holding net.pt.
    std::string cmd = line_starting(sh, "rumor launch");
    replace_all(cmd, "experiments/quickstart.json", src("experiments/quickstart.json"));
    cmd = rumor_path() + cmd.substr(std::string("rumor").size()) + " --no-progress";
    const auto r = shell("cd " + dir.string() + " && " + cmd);
    INFO(cmd);
    INFO(r.out);
    REQUIRE(r.code == 0);
    const auto run = results_dir(r.out, dir);
    REQUIRE(fs::exists(run / "summary.json"));
    std::ifstream sf(run / "summary.json");
    const json s = json::parse(sf);
    CHECK(s["final"]["round"] == 299);
    CHECK(s["final"]["test_acc_mean"].get<double>() > 0.6);  // 10 classes: chance is 0.1

    // The averaged model comes back as the same TorchScript module, trained.
    const auto back =
        shell(python() + " -c \"import torch; a = torch.jit.load('" + (dir / "net.pt").string() +
              "'); b = torch.jit.load('" + (run / "model.pt").string() +
              "'); print(sum(p.numel() for p in b.parameters()), "
              "tuple(b(torch.zeros(3, 1, 28, 28)).shape), "
              "max((p - q).abs().max().item() for p, q in "
              "zip(a.parameters(), b.parameters())) > 0)\"");
    INFO(back.out);
    REQUIRE(back.code == 0);
    CHECK(back.out.find("11738 (3, 10) True") != std::string::npos);
  }

  TEST_CASE("bring your own model: a missing model file is named, with what to do") {
    const auto dir = scratch("byom-missing");
    const auto cfg = small_config(dir);
    const std::string path = (dir / "no-such-net.pt").string();
    // --dry-run refuses before any run directory exists; in-process the run refuses as it
    // starts; over TCP every peer refuses and the launcher shows a peer's last log lines.
    for (const std::string mode : {"--dry-run", "--inprocess", ""}) {
      CAPTURE(mode);
      const auto r = rumor("launch " + cfg + " " + mode +
                           " --no-progress --set model.name=torchscript --set model.path=" + path);
      INFO(r.out);
      CHECK(r.code != 0);
      // Over TCP the launcher shows the first peer that stopped, which may be one whose
      // neighbour stopped first: the peers' own logs say why.
      const std::string text = r.out + (mode.empty() ? node_logs(dir / "runs") : "");
      CHECK(text.find("model.path '" + path + "': no such file") != std::string::npos);
      CHECK(text.find("torch.jit.save(torch.jit.script(net), PATH)") != std::string::npos);
      CHECK(text.find("fopen") == std::string::npos);  // not LibTorch's own text
      if (mode == "--dry-run") CHECK_FALSE(fs::exists(dir / "runs"));
    }
  }
}
