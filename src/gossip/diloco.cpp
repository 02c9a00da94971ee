// DiLoCo over gossip. Each node keeps outer parameters theta and an outer Nesterov buffer;
// an outer round (one rumor round) runs local_steps = H inner steps of the local optimizer
// from x = theta (its state carries over between outer rounds), then mixes (theta, Delta),
// Delta = theta - x, with the nodes method.outer_mix picks, and takes the outer step
//   m <- mu m + mix(Delta);  theta <- mix(theta) - outer_lr (mix(Delta) + mu m).
// outer_mix: allreduce (exact mean over all nodes, so every theta stays equal: DiLoCo,
// Douillard et al. 2023, "DiLoCo: Distributed Low-Communication Training of Language
// Models"), gossip (Metropolis weights over the topology, gossip_steps mixing steps) and
// one-peer (each outer round a random matching of the graph's edges, drawn from the seed;
// matched pairs take their mean, in the spirit of NoLoCo, Kolehmainen et al. 2025,
// arXiv:2506.10911, which averages with one random peer instead of all-reducing; rumor
// takes the pair's full mean of theta and applies the Nesterov step to the pair's mean
// Delta, the form of the update above with W the matching).
// The evaluated model is theta. Delta goes through the codec chain, theta in fp32: before
// compression an outer round sends two models per neighbour.
#include <algorithm>
#include <cstring>

#include "common.hpp"
#include "rumor/common/error.hpp"
#include "rumor/common/rng.hpp"
#include "rumor/gossip/ring_allreduce.hpp"

namespace rumor::gossip {
namespace {

enum class Mix { kGossip, kOnePeer, kAllreduce };

Mix parse_mix(const std::string& s) {
  if (s == "gossip") return Mix::kGossip;
  if (s == "one-peer") return Mix::kOnePeer;
  if (s == "allreduce") return Mix::kAllreduce;
  throw ConfigError("method.outer_mix must be gossip, one-peer or allreduce, got \"" + s + "\"");
}

class Diloco : public Method {
 public:
  explicit Diloco(MethodContext ctx)
      : Method(std::move(ctx)),
        mix_(parse_mix(param<std::string>("outer_mix"))),
        outer_lr_(param<double>("outer_lr")),
        mu_(param<double>("outer_momentum")),
        gossip_steps_(param<int>("gossip_steps")),
        plain_(codec::make_codec("fp32")),
        ring_(ctx_.self, ctx_.topology->size(), net::MessageKind::kAllreduce,
              net::LinkKind::kControl) {
    if (mix_ == Mix::kAllreduce && ctx_.codec->name() != "fp32")
      throw ConfigError(
          "diloco with outer_mix allreduce sums exact fp32 chunks on the ring, so "
          "codec " +
          ctx_.codec->name() +
          " cannot apply; set codec to fp32, or use outer_mix gossip or one-peer");
  }
  std::string name() const override { return "diloco"; }

  void init(std::span<float> model) override {
    model_ = model;
    const std::size_t d = model.size();
    theta_.assign(model.begin(), model.end());
    momentum_.assign(d, 0.0f);
    both_.assign(2 * d, 0.0f);
    mixed_.assign(2 * d, 0.0f);
    plain_encoder_ = plain_->make_encoder(d);
    plain_decoder_ = plain_->make_decoder(d);
    delta_decoder_ = ctx_.codec->make_decoder(d);
    check_plain_ = plain_->make_decoder(d);
    check_delta_ = ctx_.codec->make_decoder(d);
    check_values_.assign(d, 0.0f);
    sent_.assign(d, 0.0f);
    delta_encoders_.resize(static_cast<std::size_t>(gossip_steps_));
    for (auto& e : delta_encoders_) e.reset(*ctx_.codec, d);
  }

  int stages(std::int64_t round) const override {
    if (mix_ == Mix::kAllreduce) return ring_.stages(round);
    return mix_ == Mix::kGossip ? gossip_steps_ : 1;
  }

  std::vector<Outgoing> produce(std::int64_t round, int stage) override {
    if (stage == 0) start_mixing();
    if (mix_ == Mix::kAllreduce) {
      if (stage == 0) ring_.begin(both_);
      return ring_.produce(round, stage);
    }
    const auto peers = partners(round);
    if (peers.empty()) return {};
    auto m = gossip_message(ctx_, round, encode(round, stage));
    m.stage = static_cast<std::uint32_t>(stage);
    return to_each(peers, m);
  }

  std::vector<Expected> expect(std::int64_t round, int stage) const override {
    if (mix_ == Mix::kAllreduce) return ring_.expect(round, stage);
    std::vector<Expected> out;
    for (int j : partners(round))
      out.push_back({j, net::MessageKind::kGossip, net::LinkKind::kData, round,
                     static_cast<std::uint32_t>(stage), false});
    return out;
  }

  Refusal check(const net::Message& m) override {
    if (mix_ == Mix::kAllreduce) return ring_.check(m);
    if (auto r = check_header(m)) return r;
    const auto bytes = m.payload.bytes();
    const std::size_t split = plain_->max_encoded_size(model_.size());
    if (bytes.size() <= split)
      return {"payload size", std::to_string(bytes.size()) + " bytes, fewer than theta's " +
                                  std::to_string(split) + " plus a Delta payload"};
    try {
      const codec::CodecContext cc = codec_ctx(ctx_, m.round, m.sender);
      check_plain_->decode(bytes.first(split), cc, check_values_);
      if (auto r = check_values(check_values_)) return r;
      check_delta_->decode(bytes.subspan(split), cc, check_values_);
    } catch (const std::exception& e) {
      return {"codec error", e.what()};
    }
    return check_values(check_values_);
  }

  void absorb(std::int64_t round, int stage, std::vector<net::Message>& received) override {
    if (mix_ == Mix::kAllreduce) {
      ring_.absorb(round, stage, received);
      if (!ring_.done()) return;
      const float inv = 1.0f / static_cast<float>(ctx_.topology->size());
      for (float& v : both_) v *= inv;
    } else {
      mix_received(round, received);
      if (stage + 1 < stages(round)) return;
    }
    outer_step();
  }

  nlohmann::json save_state() const override { return nlohmann::json::object(); }
  // At a round boundary theta is the model vector (restored before this is called).
  void load_state(const nlohmann::json&) override { theta_.assign(model_.begin(), model_.end()); }
  std::vector<StateBuffer> state_buffers() override {
    std::vector<StateBuffer> out{vector_state("outer_momentum", momentum_)};
    for (std::size_t s = 0; s < delta_encoders_.size(); ++s)
      delta_encoders_[s].add_state(out, "ef_memory_" + std::to_string(s));
    return out;
  }

 private:
  // (theta, Delta) into both_ once the inner steps are done.
  void start_mixing() {
    const std::size_t d = model_.size();
    for (std::size_t k = 0; k < d; ++k) {
      both_[k] = theta_[k];
      both_[d + k] = theta_[k] - model_[k];
    }
  }

  // theta in fp32, then Delta through the codec chain (what is sent is also what this node
  // mixes as its own, so both ends of a link use the same Delta).
  net::Payload encode(std::int64_t round, int stage) {
    const std::size_t d = model_.size();
    const auto cc = codec_ctx(ctx_, round, ctx_.self);
    const std::span<float> theta(both_.data(), d), delta(both_.data() + d, d);
    if (!out_ || out_.use_count() > 1) out_ = std::make_shared<codec::Bytes>();
    plain_encoder_->encode(theta, cc, *out_, {});
    delta_encoders_[static_cast<std::size_t>(stage)].encoder().encode(delta, cc, delta_bytes_,
                                                                      sent_);
    std::copy(sent_.begin(), sent_.end(), delta.begin());
    out_->insert(out_->end(), delta_bytes_.begin(), delta_bytes_.end());
    return net::Payload::share(std::shared_ptr<const codec::Bytes>(out_));
  }

  void mix_received(std::int64_t round, std::vector<net::Message>& received) {
    sort_by_sender(received);
    const std::size_t d = model_.size();
    const std::size_t split = plain_->max_encoded_size(d);
    const bool pair = mix_ == Mix::kOnePeer;
    const float own = pair ? (received.empty() ? 1.0f : 0.5f) : kept_weight(ctx_, round, received);
    for (std::size_t k = 0; k < 2 * d; ++k) mixed_[k] = own * both_[k];
    const std::span<float> theta(mixed_.data(), d), delta(mixed_.data() + d, d);
    for (const auto& m : received) {
      const auto w =
          pair ? 0.5f : static_cast<float>(ctx_.topology->weight(ctx_.self, m.sender, round));
      const auto cc = codec_ctx(ctx_, round, m.sender);
      const auto bytes = m.payload.bytes();
      plain_decoder_->decode_add(bytes.first(split), cc, theta, w);
      delta_decoder_->decode_add(bytes.subspan(split), cc, delta, w);
    }
    both_.swap(mixed_);
  }

  // m <- mu m + Delta;  theta <- theta - outer_lr (Delta + mu m); the inner model restarts there.
  void outer_step() {
    const std::size_t d = model_.size();
    const auto lr = static_cast<float>(outer_lr_), mu = static_cast<float>(mu_);
    for (std::size_t k = 0; k < d; ++k) {
      const float delta = both_[d + k];
      momentum_[k] = mu * momentum_[k] + delta;
      theta_[k] = both_[k] - lr * (delta + mu * momentum_[k]);
    }
    std::memcpy(model_.data(), theta_.data(), d * sizeof(float));
  }

  // Who this node mixes with in `round`: its live neighbours (gossip) or its partner in
  // the round's random matching of the graph's edges (one-peer; none if unmatched).
  std::vector<int> partners(std::int64_t round) const {
    if (mix_ == Mix::kGossip) return live(ctx_.topology->out_neighbors(ctx_.self, round));
    const int p = matched_peer(round);
    if (p < 0 || peer_is_down(p)) return {};
    return {p};
  }

  // Every node draws the same matching from (seed, round): a shuffle of the edges, then
  // each edge whose two ends are still free pairs them. Drawn once per round (produce and
  // expect both ask).
  int matched_peer(std::int64_t round) const {
    if (matched_round_ == round) return matched_;
    const Topology& t = *ctx_.topology;
    std::vector<Edge> edges = t.edges();
    Rng rng = Rng::derive(ctx_.seed, static_cast<std::uint64_t>(round), 0x6d61746368ULL);
    std::shuffle(edges.begin(), edges.end(), rng);
    std::vector<char> taken(static_cast<std::size_t>(t.size()), 0);
    matched_round_ = round;
    matched_ = -1;
    for (const Edge& e : edges) {
      if (e.from == e.to || taken[e.from] || taken[e.to]) continue;
      taken[e.from] = taken[e.to] = 1;
      if (e.from == ctx_.self || e.to == ctx_.self) {
        matched_ = e.from == ctx_.self ? e.to : e.from;
        break;
      }
    }
    return matched_;
  }

  Mix mix_;
  double outer_lr_, mu_;
  int gossip_steps_;
  std::shared_ptr<const codec::Codec> plain_;
  RingAllreduce ring_;
  std::vector<float> theta_, momentum_;
  std::vector<float> both_, mixed_;  // (theta, Delta) being mixed, and the next mix
  std::unique_ptr<codec::Encoder> plain_encoder_;
  std::vector<PayloadEncoder> delta_encoders_;  // one per mixing step (own error feedback)
  std::unique_ptr<codec::Decoder> plain_decoder_, delta_decoder_, check_plain_, check_delta_;
  std::vector<float> check_values_, sent_;
  codec::Bytes delta_bytes_;           // Delta's payload before it is appended (reused)
  std::shared_ptr<codec::Bytes> out_;  // the message buffer, recycled once no transport holds it
  mutable std::int64_t matched_round_ = -1;
  mutable int matched_ = -1;
};

}  // namespace

MethodInfo diloco_method() {
  auto info = method_entry<Diloco>(
      "diloco",
      "DiLoCo: H = local_steps inner steps (adamw by default), then an outer Nesterov step on "
      "the mixed change; mixing by gossip, one-peer matching or all-reduce",
      {true, true, false}, LocalMomentum::kOptimizer,
      {{"method.outer_lr", "number", 0.7, "diloco: outer learning rate", 0, 100},
       {"method.outer_momentum", "number", 0.9, "diloco: outer Nesterov momentum", 0, 0.999},
       {"method.outer_mix", "string", "gossip",
        "diloco: gossip (Metropolis over the neighbours), one-peer (a random matching each outer "
        "round), allreduce (exact mean: DiLoCo itself)"},
       {"method.gossip_steps", "int", 1, "diloco gossip: mixing steps per outer round", 1, 100}},
      "its outer step mixes parameters and changes with exact weights, not robust rules");
  // The inner optimizer of DiLoCo (its state carries over between outer rounds).
  info.run_defaults = {{"optimizer.name", "adamw"}};
  return info;
}

}  // namespace rumor::gossip
