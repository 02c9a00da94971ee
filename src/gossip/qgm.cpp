// Quasi-global momentum (Lin et al. 2021) on D-PSGD mixing: the local step uses a buffer m
// built from the change of the model over a round (a proxy for the global direction), not
// the local gradients, which disagree under label skew:
//   u = g + beta (beta m + g);  x^{t+1/2} = x^t - eta u;  x^{t+1} = sum_j w_ij x_j^{t+1/2};
//   m <- mu m + (1 - mu) (x^t - x^{t+1}) / eta.
#include "methods.hpp"
#include "rumor/common/error.hpp"

namespace rumor::gossip {
namespace {

class Qgm : public Dpsgd {
 public:
  explicit Qgm(MethodContext ctx) : Dpsgd(std::move(ctx)) {
    beta_ = param<double>("beta");
    mu_ = param<double>("mu");
    if (combine_then_adapt_) throw ConfigError("method qgm supports method.variant atc only");
  }
  std::string name() const override { return "qgm"; }

  void init(std::span<float> model) override {
    Dpsgd::init(model);
    m_.assign(model.size(), 0.0f);
    u_.assign(model.size(), 0.0f);
    start_.assign(model.size(), 0.0f);
  }

  LocalWork::Stats local(std::int64_t, LocalWork& work) override {
    start_.assign(model_.begin(), model_.end());
    LocalWork::Stats sum;
    if (!work.trains()) return sum;
    lr_ = work.lr();
    for (int h = 0; h < ctx_.local_steps; ++h) {
      const auto s = work.gradient();
      const auto g = work.grads();
      const float b = static_cast<float>(beta_);
      for (std::size_t k = 0; k < u_.size(); ++k) u_[k] = g[k] + b * (b * m_[k] + g[k]);
      work.step(model_, u_);
      sum.loss += s.loss;
      sum.accuracy += s.accuracy;
    }
    sum.loss /= ctx_.local_steps;
    sum.accuracy /= ctx_.local_steps;
    return sum;
  }

  void absorb(std::int64_t round, int stage, std::vector<net::Message>& received) override {
    Dpsgd::absorb(round, stage, received);
    if (lr_ <= 0) return;  // task average: no steps, no momentum
    const float mu = static_cast<float>(mu_);
    const float scale = static_cast<float>((1.0 - mu_) / lr_);
    for (std::size_t k = 0; k < m_.size(); ++k)
      m_[k] = mu * m_[k] + scale * (start_[k] - model_[k]);
  }

  std::vector<StateBuffer> state_buffers() override {
    auto out = Dpsgd::state_buffers();
    out.push_back(vector_state("qgm_momentum", m_));
    return out;
  }

 private:
  double beta_ = 0, mu_ = 0, lr_ = 0;  // options: qgm_options()
  std::vector<float> m_, u_, start_;
};

}  // namespace

namespace {
std::vector<Option> qgm_options() {
  auto o = dpsgd_method().options;
  o.insert(o.end(),
           {{"method.beta", "number", 0.9, "squarm, qgm: Nesterov momentum factor", 0, 1},
            {"method.mu", "number", 0.9, "qgm: quasi-global momentum averaging factor", 0, 1}});
  return o;
}
}  // namespace

MethodInfo qgm_method() {
  return method_entry<Qgm>("qgm", "quasi-global momentum on D-PSGD mixing (non-IID data)",
                           {true, true, false}, LocalMomentum::kOwn, qgm_options());
}

}  // namespace rumor::gossip
