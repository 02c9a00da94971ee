// rumor bench net: transport benchmarks (pair / ring / pushsum), see rumor/bench/net_bench.hpp.
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "rumor/bench/net_bench.hpp"
#include "rumor/common/error.hpp"

namespace rumor::cli {

void add_bench_net(CLI::App& bench) {
  struct Args {
    bench::NetBenchOptions o;
    double floats = 1e7;
    bool json = false;
    bool worker = false;
    int id = 0;
    std::string ports;
    std::string out;
    std::string secret_file;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = bench.add_subcommand(
      "net",
      "transport benchmark over loopback TCP (definitions match the gloo baseline "
      "bench/gloo_gossip.py)\n\n"
      "Examples:\n"
      "  rumor bench net --mode pair --floats 1e7 --json\n"
      "  rumor bench net --mode pair --floats 1e7 --transport shm\n"
      "  rumor bench net --mode ring --nodes 8 --floats 1e6 --rounds 20 --json\n"
      "  rumor bench net --mode pushsum --nodes 8 --floats 1e5 --rounds 50 --json");
  cmd->add_option("--mode", args->o.mode, "pair, ring or pushsum")
      ->check(CLI::IsMember({"pair", "ring", "pushsum"}))
      ->capture_default_str();
  cmd->add_option("--nodes", args->o.nodes, "peer processes (ring, pushsum)")
      ->check(CLI::Range(2, 256))
      ->capture_default_str();
  cmd->add_option("--floats", args->floats, "floats per message, e.g. 1e6")
      ->check(CLI::Range(1.0, 1e9))
      ->capture_default_str();
  cmd->add_option("--rounds", args->o.rounds, "measured rounds (ring, pushsum)")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  cmd->add_option("--repeats", args->o.repeats, "measured repeats (pair)")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  cmd->add_option("--timeout", args->o.timeout_s, "seconds before the workers are killed")
      ->capture_default_str();
  cmd->add_option("--transport", args->o.transport,
                  "tcp, or shm: the data links of these co-located peers through shared memory")
      ->check(CLI::IsMember({"tcp", "shm"}))
      ->capture_default_str();
  cmd->add_flag("--tls", args->o.tls,
                "pair: the links run over TLS 1.3 (pre-shared key from a fresh run secret)");
  cmd->add_flag("--json", args->json, "print one JSON document on stdout");
  // Internal: one peer process of ring/pushsum mode, started by the benchmark itself.
  cmd->add_flag("--worker", args->worker)->group("");
  cmd->add_option("--id", args->id)->group("");
  cmd->add_option("--ports", args->ports)->group("");
  cmd->add_option("--out", args->out)->group("");
  cmd->add_option("--secret-file", args->secret_file)->group("");
  cmd->callback([args] {
    args->o.floats = static_cast<std::size_t>(std::llround(args->floats));
    if (args->worker) {
      bench::NetBenchWorker w;
      w.mode = args->o.mode;
      w.id = args->id;
      w.nodes = args->o.nodes;
      w.floats = args->o.floats;
      w.rounds = args->o.rounds;
      std::stringstream ss(args->ports);
      for (std::string p; std::getline(ss, p, ',');) w.ports.push_back(std::stoi(p));
      if (static_cast<int>(w.ports.size()) != w.nodes)
        throw ConfigError("bench net --worker: --ports must list --nodes ports");
      w.out = args->out;
      if (args->o.transport == "shm") w.secret_file = args->secret_file;
      const int rc = bench::run_net_bench_worker(w);
      if (rc != 0) throw Error("bench net worker " + std::to_string(w.id) + " failed");
      return;
    }
    if (args->o.tls && args->o.transport == "shm")
      throw ConfigError(
          "bench net: --tls and --transport shm exclude each other (shared memory "
          "is not encrypted, so TLS links stay on TCP)");
    if (args->o.tls && args->o.mode != "pair")
      throw ConfigError("bench net --tls is measured in pair mode only (--mode pair)");
    args->o.exe = std::filesystem::read_symlink("/proc/self/exe").string();
    const auto j = bench::run_net_bench(args->o);
    if (args->json) {
      std::cout << j.dump() << "\n";
      return;
    }
    std::cout << std::fixed << std::setprecision(3);
    if (args->o.mode == "pair") {
      std::cout << "pair over " << (args->o.tls ? "TLS" : args->o.transport) << ", "
                << args->o.floats << " floats: " << j["gbps"]["median"].get<double>()
                << " GB/s median (min " << j["gbps"]["min"].get<double>() << ", max "
                << j["gbps"]["max"].get<double>() << ")\n";
    } else {
      std::cout << args->o.mode << " over " << args->o.transport << ", " << args->o.nodes
                << " nodes, " << args->o.floats << " floats: " << j["median_ms"].get<double>()
                << " ms/round median (min " << j["min_ms"].get<double>() << ", max "
                << j["max_ms"].get<double>() << ")\n";
    }
  });
}

}  // namespace rumor::cli
