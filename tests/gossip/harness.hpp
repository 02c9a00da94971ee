#pragma once
// N peers of one method over the in-process transport, run phase by phase (the same
// driver the runtime uses in-process), on vectors without LibTorch.
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include "rumor/codec/codec.hpp"
#include "rumor/common/rng.hpp"
#include "rumor/common/thread_pool.hpp"
#include "rumor/gossip/driver.hpp"
#include "rumor/gossip/method.hpp"
#include "rumor/net/inproc.hpp"
#include "rumor/topology/generators.hpp"

namespace rumor::gossip::testing {

// f_i(x) = 0.5 ||x - b_i||^2: the gradient is exact, the optimum of the sum is mean(b_i).
class Quadratic : public LocalWork {
 public:
  Quadratic(std::span<float> model, std::vector<float> b, double lr)
      : model_(model), b_(std::move(b)), g_(b_.size()), lr_(lr) {}
  Stats gradient() override {
    double loss = 0;
    for (std::size_t k = 0; k < g_.size(); ++k) {
      g_[k] = model_[k] - b_[k];
      loss += 0.5 * g_[k] * g_[k];
    }
    return {loss, 0.0};
  }
  std::span<const float> grads() const override { return g_; }
  void step(std::span<float> x) override { step(x, g_); }
  void step(std::span<float> x, std::span<const float> dir) override {
    for (std::size_t k = 0; k < x.size(); ++k) x[k] -= static_cast<float>(lr_) * dir[k];
    ++steps_;
  }
  double lr() const override { return lr_; }
  std::int64_t steps() const override { return steps_; }
  double epochs() const override { return static_cast<double>(steps_) / 10.0; }

 private:
  std::span<float> model_;
  std::vector<float> b_, g_;
  double lr_;
  std::int64_t steps_ = 0;
};

inline Topology gen(const std::string& kind, int n) {
  GenOptions o;
  o.nodes = n;
  return generate_topology(kind, o);
}

struct Sim {
  Topology topology;
  net::InProcNetwork network;
  std::vector<std::unique_ptr<net::Transport>> transports;
  std::vector<std::vector<float>> models;
  std::vector<std::unique_ptr<Method>> methods;
  std::vector<std::unique_ptr<LocalWork>> work;
  std::vector<Traffic> traffic;
  ThreadPool pool{2};

  // identical: every node starts from the same vector (task train) or from its own.
  Sim(Topology t, const std::string& method, const std::string& codec_spec, std::size_t dim,
      nlohmann::json params = nlohmann::json::object(), bool identical = false, int local_steps = 1)
      : topology(std::move(t)) {
    const int n = topology.size();
    const auto codec = codec::make_codec(codec_spec);
    models.resize(n);
    traffic.resize(n);
    for (int i = 0; i < n; ++i) {
      net::TransportOptions o;
      o.run_id = "gossip-test";
      transports.push_back(network.make_transport(o));
    }
    for (int i = 0; i < n; ++i) transports[i]->start(topology, i);
    for (int i = 0; i < n; ++i) transports[i]->wait_connected();
    for (int i = 0; i < n; ++i) {
      Rng rng = Rng::derive(7, identical ? 0 : static_cast<std::uint64_t>(i));
      models[i].resize(dim);
      for (auto& v : models[i]) v = static_cast<float>(rng.uniform() * 2 - 1);
      MethodContext ctx;
      ctx.self = i;
      ctx.topology = &topology;
      ctx.seed = 7;
      ctx.codec = codec;
      ctx.params = params;
      ctx.identical_init = identical;
      ctx.local_steps = local_steps;
      methods.push_back(make_method(method, ctx));
      methods[i]->init(models[i]);
      work.push_back(std::make_unique<NoLocalWork>());
    }
  }

  ~Sim() {
    for (auto& t : transports) t->stop();
  }

  void round(std::int64_t r) {
    pool.parallel_for(methods.size(), [&](std::size_t i) { methods[i]->local(r, *work[i]); });
    std::vector<PeerIo> io;
    for (std::size_t i = 0; i < methods.size(); ++i)
      io.push_back({methods[i].get(), transports[i].get(), &traffic[i]});
    run_phased(io, r, pool, std::chrono::milliseconds(1000));
  }

  std::vector<double> mean() const {
    std::vector<double> m(models[0].size(), 0.0);
    for (const auto& x : models)
      for (std::size_t k = 0; k < m.size(); ++k) m[k] += x[k];
    for (auto& v : m) v /= static_cast<double>(models.size());
    return m;
  }

  // Mean over nodes of ||x_i - mean||^2.
  double consensus_distance() const {
    const auto m = mean();
    double sum = 0;
    for (const auto& x : models)
      for (std::size_t k = 0; k < m.size(); ++k) sum += (x[k] - m[k]) * (x[k] - m[k]);
    return sum / static_cast<double>(models.size());
  }
};

}  // namespace rumor::gossip::testing
