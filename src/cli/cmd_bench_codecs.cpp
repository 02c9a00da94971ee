// `rumor bench codecs`: encode/decode throughput, size and error of every codec, with LibTorch
// baselines measured in the same run. One thread throughout.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <ctime>
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>
#include <span>
#include <sstream>

#include "bench_codecs_torch.hpp"
#include "bench_util.hpp"
#include "commands.hpp"
#include "rumor/codec/codec.hpp"
#include "rumor/common/log.hpp"
#include "rumor/common/rng.hpp"

namespace rumor::cli {
namespace {

using Clock = std::chrono::steady_clock;

struct BenchOptions {
  std::size_t floats = 10'000'000;
  int repeats = 5;
  std::vector<std::string> codecs = {
      "fp32",           "fp16",       "bf16",      "qsgd:4",      "qsgd:8",
      "qsgd:4:biased",  "sign",       "topk:0.01", "topk:0.001",  "topk:0.01|qsgd:4:biased",
      "topk:0.01|sign", "randk:0.01", "sketch",    "ef|topk:0.01"};
  bool json = false;
  bool baselines = true;
};

double gbps(std::size_t floats, double seconds) {
  return seconds > 0 ? 4.0 * static_cast<double>(floats) / seconds / 1e9 : 0.0;
}

double rel_error(std::span<const float> x, std::span<const float> y) {
  double num = 0, den = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double t = static_cast<double>(y[i]) - x[i];
    num += t * t;
    den += static_cast<double>(x[i]) * x[i];
  }
  return den > 0 ? std::sqrt(num / den) : 0.0;
}

// The memory floor the casts are held to: a copy of the input into a buffer touched before.
nlohmann::json memcpy_baseline(std::span<const float> x, int repeats) {
  std::vector<float> dst(x.size(), 1.0f);
  const MedianTimes m =
      time_median(repeats, [&] { std::memcpy(dst.data(), x.data(), 4 * x.size()); });
  return {{"name", "memcpy"},
          {"encode_gbps", gbps(x.size(), m.wall)},
          {"encode_gbps_cpu", gbps(x.size(), m.cpu)},
          {"encode_ms", m.wall * 1e3}};
}

nlohmann::json run(const BenchOptions& o) {
  const std::size_t d = o.floats;
  std::vector<float> x(d);
  Rng rng(12345);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (auto& v : x) v = normal(rng);
  std::vector<float> y(d);

  nlohmann::json codecs = nlohmann::json::array();
  for (const auto& spec : o.codecs) {
    auto c = codec::make_codec(spec);
    auto enc = c->make_encoder(d);
    auto dec = c->make_decoder(d);
    codec::Bytes bytes;
    std::uint64_t round = 0;
    // Every repeat is a new round: fresh randomness, same work.
    const MedianTimes enc_s = time_median(o.repeats, [&] {
      enc->encode(x, {1, round++, 0}, bytes);
    });
    if (c->error_feedback()) enc->reset();
    const codec::CodecContext ctx{1, round, 0};
    enc->encode(x, ctx, bytes);
    const MedianTimes dec_s = time_median(o.repeats, [&] { dec->decode(bytes, ctx, y); });
    nlohmann::json j;
    j["name"] = c->name();
    j["encode_gbps"] = gbps(d, enc_s.wall);
    j["decode_gbps"] = gbps(d, dec_s.wall);
    j["encode_gbps_cpu"] = gbps(d, enc_s.cpu);
    j["decode_gbps_cpu"] = gbps(d, dec_s.cpu);
    j["encode_ms"] = enc_s.wall * 1e3;
    j["decode_ms"] = dec_s.wall * 1e3;
    j["bytes"] = bytes.size();
    j["bits_per_param"] = codec::bits_per_param(bytes.size(), d);
    j["rel_error"] = rel_error(x, y);
    j["unbiased"] = c->unbiased();
    j["contractive"] = c->contractive();
    j["delta"] = c->delta(d);
    log::info("bench codecs: ", c->name(), " encode ", j["encode_gbps"].get<double>(), " GB/s");
    codecs.push_back(std::move(j));
  }

  nlohmann::json baselines = nlohmann::json::array();
  if (o.baselines) {
    baselines.push_back(memcpy_baseline(x, o.repeats));
    bench_torch::use_one_thread();
    const std::size_t k =
        std::max<std::size_t>(1, static_cast<std::size_t>(std::llround(0.01 * d)));
    const auto tk = bench_torch::topk(x, k, o.repeats);
    baselines.push_back({{"name", "torch::topk"},
                         {"k", k},
                         {"same_as", "topk:0.01"},
                         {"encode_gbps", gbps(d, tk.encode_s)},
                         {"encode_gbps_cpu", gbps(d, tk.encode_cpu_s)},
                         {"encode_ms", tk.encode_s * 1e3},
                         {"rel_error", tk.rel_error}});
    const auto mm = bench_torch::minmax8(x, o.repeats);
    baselines.push_back({{"name", "torch minmax8"},
                         {"encode_gbps", gbps(d, mm.encode_s)},
                         {"decode_gbps", gbps(d, mm.decode_s)},
                         {"encode_gbps_cpu", gbps(d, mm.encode_cpu_s)},
                         {"decode_gbps_cpu", gbps(d, mm.decode_cpu_s)},
                         {"encode_ms", mm.encode_s * 1e3},
                         {"decode_ms", mm.decode_s * 1e3},
                         {"bits_per_param", 8.0 + 64.0 / static_cast<double>(d)},
                         {"rel_error", mm.rel_error}});
  }
  nlohmann::json out;
  out["floats"] = d;
  out["repeats"] = o.repeats;
  out["threads"] = 1;
  out["codecs"] = std::move(codecs);
  out["baselines"] = std::move(baselines);
  return out;
}

void print_table(const nlohmann::json& r) {
  std::cout << "rumor bench codecs: " << r["floats"].get<std::size_t>() << " floats, median of "
            << r["repeats"].get<int>() << " repeats, one thread\n";
  std::cout << std::left << std::setw(28) << "codec" << std::right << std::setw(12) << "enc GB/s"
            << std::setw(12) << "dec GB/s" << std::setw(14) << "enc GB/s cpu" << std::setw(12)
            << "bits/param" << std::setw(12) << "rel_error"
            << "\n";
  auto row = [](const nlohmann::json& j) {
    std::cout << std::left << std::setw(28) << j["name"].get<std::string>() << std::right
              << std::fixed << std::setprecision(3) << std::setw(12) << j.value("encode_gbps", 0.0)
              << std::setw(12) << j.value("decode_gbps", 0.0) << std::setw(14)
              << j.value("encode_gbps_cpu", 0.0) << std::setw(12) << j.value("bits_per_param", 0.0)
              << std::setw(12) << j.value("rel_error", 0.0) << "\n";
  };
  for (const auto& j : r["codecs"]) row(j);
  for (const auto& j : r["baselines"]) row(j);
}

}  // namespace

void add_bench_codecs(CLI::App& bench) {
  auto opts = std::make_shared<BenchOptions>();
  auto* cmd = bench.add_subcommand(
      "codecs",
      "encode/decode throughput (input bytes / median time, one thread), bits per parameter and\n"
      "relative error of payload codecs on a Gaussian vector, with LibTorch baselines\n"
      "(torch::topk at k = 1% with index_select of the values, an 8-bit min-max quantization)\n"
      "and memcpy of the input, measured in the same run.\n"
      "Example: rumor bench codecs --floats 10000000 --json");
  cmd->add_option("--floats", opts->floats, "vector length D")
      ->check(CLI::Range(std::size_t{1}, std::size_t{0xffffffffULL}))
      ->capture_default_str();
  cmd->add_option("--repeats", opts->repeats, "timed repeats per figure (the median is reported)")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  cmd->add_option("--codec", opts->codecs, "codec spec to measure (repeatable; default: a set)");
  cmd->add_flag("!--no-baselines", opts->baselines, "skip the LibTorch baselines");
  cmd->add_flag("--json", opts->json, "print one JSON document on stdout");
  cmd->callback([opts] {
    const auto r = run(*opts);
    if (opts->json) {
      std::cout << r.dump(2) << "\n";
    } else {
      print_table(r);
    }
  });
}

}  // namespace rumor::cli
