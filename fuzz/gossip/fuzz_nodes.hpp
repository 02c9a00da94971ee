#pragma once
// The small network the gossip fuzz targets run: every node of a 4-node ring runs the method
// under test on a model of kDim values, with a deterministic objective (and samples, for
// qdata). Node kSelf is fuzzed; the others are honest peers whose real messages the fuzzer
// may take as they are, damage, or replace.
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "rumor/codec/codec.hpp"
#include "rumor/gossip/driver.hpp"
#include "rumor/gossip/method.hpp"
#include "rumor/gossip/qdata.hpp"
#include "rumor/topology/generators.hpp"

namespace rumor::fuzz {

inline constexpr int kNodes = 4;
inline constexpr int kSelf = 1;
inline constexpr std::size_t kDim = 8;
inline constexpr std::size_t kSampleDim = 3;

// Loss 0.5 ||m - c||^2 with c fixed per node; samples are fixed points near c.
class FuzzWork : public gossip::LocalWork, public gossip::SampleWork {
 public:
  FuzzWork(std::span<float> model, int node) : model_(model), node_(node), g_(model.size()) {}
  Stats gradient() override {
    for (std::size_t k = 0; k < g_.size(); ++k) g_[k] = model_[k] - centre(k);
    return {0.5, 0.0};
  }
  std::span<const float> grads() const override { return g_; }
  void step(std::span<float> x) override { step(x, g_); }
  void step(std::span<float> x, std::span<const float> d) override {
    for (std::size_t k = 0; k < x.size() && k < d.size(); ++k) x[k] -= 0.1f * d[k];
    ++steps_;
  }
  double lr() const override { return 0.1; }
  std::int64_t steps() const override { return steps_; }
  double epochs() const override { return 0.0; }
  SampleWork* sample_work() override { return this; }

  std::size_t sample_dim() const override { return kSampleDim; }
  int num_classes() const override { return 3; }
  void draw(std::size_t n, std::int64_t round, std::vector<float>& f,
            std::vector<std::int32_t>& l) override {
    for (std::size_t i = 0; i < n; ++i) {
      for (std::size_t k = 0; k < kSampleDim; ++k)
        f.push_back(centre(k) + static_cast<float>((i + k + round) % 3));
      l.push_back(static_cast<std::int32_t>(i % 3));
    }
  }
  std::vector<float> losses(std::span<const float> f, std::span<const std::int32_t> l) override {
    std::vector<float> out(l.size(), 0.0f);
    for (std::size_t i = 0; i < l.size(); ++i)
      for (std::size_t k = 0; k < kSampleDim; ++k) out[i] += std::abs(f[i * kSampleDim + k]);
    return out;
  }
  Stats gradient_on(std::span<const float>, std::span<const std::int32_t>) override {
    return gradient();
  }

 private:
  float centre(std::size_t k) const { return static_cast<float>((node_ + k) % 5) - 2.0f; }
  std::span<float> model_;
  int node_;
  std::vector<float> g_;
  std::int64_t steps_ = 0;
};

// One configuration of the method under test.
struct Variant {
  std::string codec;
  nlohmann::json params = nlohmann::json::object();
};

// Every node of the ring, with its model, objective and method.
struct Nodes {
  Topology topology;
  std::vector<std::vector<float>> models;
  std::vector<std::unique_ptr<FuzzWork>> work;
  std::vector<std::unique_ptr<gossip::Method>> methods;
  gossip::Traffic traffic;  // the fuzzed node's refusals

  Nodes(const std::string& method, const Variant& v) : topology(ring()) {
    const auto codec = codec::make_codec(v.codec);
    models.resize(kNodes);
    for (int i = 0; i < kNodes; ++i) {
      models[i].assign(kDim, 0.0f);
      for (std::size_t k = 0; k < kDim; ++k) models[i][k] = static_cast<float>((k % 3)) - 1.0f;
      work.push_back(std::make_unique<FuzzWork>(models[i], i));
      gossip::MethodContext ctx;
      ctx.self = i;
      ctx.topology = &topology;
      ctx.codec = codec;
      ctx.codec_id = 7;
      ctx.params = v.params;
      methods.push_back(gossip::make_method(method, std::move(ctx)));
      methods.back()->init(models[i]);
    }
  }
  gossip::Method& self() { return *methods[kSelf]; }

 private:
  static Topology ring() {
    GenOptions o;
    o.nodes = kNodes;
    return generate_topology("ring", o);
  }
};

}  // namespace rumor::fuzz
