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

// The median throughput of one timed operation over its repeats, its spread (the slowest
// and fastest repeat) and the median in thread CPU time, as "<what>_gbps...".
void put_gbps(nlohmann::json& j, const std::string& what, std::size_t d, const MedianTimes& t) {
  j[what + "_gbps"] = gbps(d, t.wall);
  j[what + "_gbps_min"] = gbps(d, t.wall_max);
  j[what + "_gbps_max"] = gbps(d, t.wall_min);
  j[what + "_gbps_cpu"] = gbps(d, t.cpu);
  j[what + "_ms"] = t.wall * 1e3;
}

nlohmann::json measure_codec(const std::string& spec, std::span<const float> x,
                             std::vector<float>& y, int repeats) {
  const std::size_t d = x.size();
  auto c = codec::make_codec(spec);
  auto enc = c->make_encoder(d);
  auto dec = c->make_decoder(d);
  codec::Bytes bytes;
  std::uint64_t round = 0;
  // Every repeat is a new round: fresh randomness, same work.
  const MedianTimes enc_s = time_median(repeats, [&] { enc->encode(x, {1, round++, 0}, bytes); });
  if (c->error_feedback()) enc->reset();
  const codec::CodecContext ctx{1, round, 0};
  enc->encode(x, ctx, bytes);
  const MedianTimes dec_s = time_median(repeats, [&] { dec->decode(bytes, ctx, y); });
  nlohmann::json j;
  j["name"] = c->name();
  put_gbps(j, "encode", d, enc_s);
  put_gbps(j, "decode", d, dec_s);
  j["bytes"] = bytes.size();
  j["bits_per_param"] = codec::bits_per_param(bytes.size(), d);
  j["rel_error"] = rel_error(x, y);
  j["unbiased"] = c->unbiased();
  j["contractive"] = c->contractive();
  j["delta"] = c->delta(d);
  log::info("bench codecs: ", c->name(), " encode ", j["encode_gbps"].get<double>(), " GB/s");
  return j;
}

// The floor and LibTorch's own ops on the same vector; `same_as` names the codec each one
// does the work of.
nlohmann::json measure_baselines(std::span<const float> x, int repeats) {
  const std::size_t d = x.size();
  nlohmann::json out = nlohmann::json::array();
  std::vector<float> copy(d);
  nlohmann::json mc = {{"name", "memcpy"}, {"same_as", "fp32"}, {"bits_per_param", 32.0}};
  put_gbps(mc, "encode", d,
           time_median(repeats, [&] { std::memcpy(copy.data(), x.data(), d * sizeof(float)); }));
  mc["rel_error"] = rel_error(x, copy);  // also keeps the copy from being optimized away
  out.push_back(std::move(mc));
  bench_torch::use_one_thread();
  const auto add = [&](nlohmann::json j, const bench_torch::Timing& t, bool decodes) {
    put_gbps(j, "encode", d, t.encode);
    if (decodes) put_gbps(j, "decode", d, t.decode);
    j["rel_error"] = t.rel_error;
    out.push_back(std::move(j));
  };
  const std::size_t k = std::max<std::size_t>(1, static_cast<std::size_t>(std::llround(0.01 * d)));
  add({{"name", "torch::topk"}, {"k", k}, {"same_as", "topk:0.01"}},
      bench_torch::topk(x, k, repeats), false);
  add({{"name", "torch minmax8"},
       {"same_as", "qsgd:8"},
       {"bits_per_param", 8.0 + 64.0 / static_cast<double>(d)}},
      bench_torch::minmax8(x, repeats), true);
  add({{"name", "torch to(kHalf)"}, {"same_as", "fp16"}, {"bits_per_param", 16.0}},
      bench_torch::cast16(x, false, repeats), true);
  add({{"name", "torch to(kBFloat16)"}, {"same_as", "bf16"}, {"bits_per_param", 16.0}},
      bench_torch::cast16(x, true, repeats), true);
  return out;
}

nlohmann::json run(const BenchOptions& o) {
  std::vector<float> x(o.floats);
  Rng rng(12345);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (auto& v : x) v = normal(rng);
  std::vector<float> y(o.floats);
  nlohmann::json codecs = nlohmann::json::array();
  for (const auto& spec : o.codecs) codecs.push_back(measure_codec(spec, x, y, o.repeats));
  nlohmann::json out;
  out["floats"] = o.floats;
  out["repeats"] = o.repeats;
  out["threads"] = 1;
  out["codecs"] = std::move(codecs);
  out["baselines"] = o.baselines ? measure_baselines(x, o.repeats) : nlohmann::json::array();
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
      "(torch::topk at k = 1% with index_select of the values, an 8-bit min-max quantization,\n"
      "the fp16/bf16 casts) and memcpy\n"
      "measured in the same run; each figure a median with its spread (_min, _max).\n"
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
