// qdata: share important, quantized training samples instead of model updates (Hanna,
// Ezzeldin et al., "Quantizing data for distributed learning"). Training data leaves the node.
//
// A round: local steps on own minibatches mixed with replayed received samples,
//   d = (1 - mix) g(own batch) + mix (g(replay batch) + c),
// where c is the refinement correction (below); then each node draws `candidates` samples
// (a `relay` share of them from its replay buffer, so samples travel further than one hop),
// ranks them by loss at its model, and sends `budget` of the chosen ones, quantized to
// `bits` bits per value, to each out-neighbour (different samples to each). Receivers keep
// them in a bounded FIFO replay buffer.
//
// Refinement (method.refine = a codec spec such as sign or qsgd:2): with each batch the
// sender also sends g(x) - g(Q(x)), the gradient at the original samples minus the one at
// their quantized versions (mean over the batch, at the sender's model), coded with that
// codec. A receiver cannot keep one model-sized vector per buffered batch, so it keeps their
// running mean c <- (1 - rho) c + rho delta, rho = samples received / buffer capacity: the
// share of the buffer the new batch replaces.
//
// Consensus: samples alone do not make the models agree, so every `gossip_every` rounds the
// frame also carries the model (coded with the run's codec) and nodes average with
// Metropolis weights as D-PSGD does. Between those rounds no model bytes move.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "methods.hpp"
#include "rumor/common/error.hpp"
#include "rumor/gossip/qdata.hpp"

namespace rumor::gossip {
namespace {

enum : std::uint64_t { kStreamReplay = 0x7164617461, kStreamRelay = 0x72656c6179 };

class Qdata : public Method {
 public:
  explicit Qdata(MethodContext ctx) : Method(std::move(ctx)), importance_(qdata::Rule::kTop, 0, 0) {
    budget_ = param<int>("budget");
    bits_ = param<int>("bits");
    candidates_ = param<int>("candidates");
    capacity_ = param<int>("buffer");
    mix_ = param<double>("mix");
    replay_batch_ = param<int>("replay_batch");
    relay_ = param<double>("relay");
    gossip_every_ = param<std::int64_t>("gossip_every");
    const auto refine = param<std::string>("refine");
    const auto q = param<double>("quantile");
    importance_ = qdata::Importance(qdata::parse_rule(param<std::string>("importance")), q,
                                    param<double>("quantile_step"));
    auto bad = [](const std::string& what) { throw ConfigError("method qdata: " + what); };
    if (budget_ < 0 || budget_ > 65535) bad("method.budget must be in 0..65535");
    if (bits_ < 1 || bits_ > 8) bad("method.bits must be in 1..8");
    if (candidates_ < 1) bad("method.candidates must be >= 1");
    if (capacity_ < 1) bad("method.buffer must be >= 1");
    if (!(mix_ >= 0 && mix_ <= 1)) bad("method.mix must be in [0, 1]");
    if (replay_batch_ < 1) bad("method.replay_batch must be >= 1");
    if (!(relay_ >= 0 && relay_ <= 1)) bad("method.relay must be in [0, 1]");
    if (gossip_every_ < 0) bad("method.gossip_every must be >= 0 (0: never average models)");
    if (!(q > 0 && q < 1)) bad("method.quantile must be in (0, 1)");
    if (refine != "none") refine_codec_ = codec::make_codec(refine);
  }

  std::string name() const override { return "qdata"; }

  void init(std::span<float> model) override {
    model_ = model;
    encoder_.reset(*ctx_.codec, model.size());
    decoder_ = ctx_.codec->make_decoder(model.size());
    mixed_.assign(model.size(), 0.0f);
    if (refine_codec_) {
      refine_enc_ = refine_codec_->make_encoder(model.size());
      refine_dec_ = refine_codec_->make_decoder(model.size());
      correction_.assign(model.size(), 0.0f);
      delta_.assign(model.size(), 0.0f);
    }
    rng_ = Rng::derive(ctx_.seed, kStreamReplay, static_cast<std::uint64_t>(ctx_.self));
  }

  LocalWork::Stats local(std::int64_t round, LocalWork& work) override {
    SampleWork* sw = work.sample_work();
    if (!sw)
      throw ConfigError(
          "method qdata shares training samples and needs task train with a dataset; use "
          "another method for task average");
    if (!buffer_.capacity()) {
      if (sw->num_classes() > 65535) throw ConfigError("method qdata: at most 65535 classes");
      buffer_ = qdata::ReplayBuffer(static_cast<std::size_t>(capacity_), sw->sample_dim());
      classes_ = sw->num_classes();
    }
    received_ = 0;
    LocalWork::Stats sum;
    for (int h = 0; h < ctx_.local_steps; ++h) {
      const auto s = work.gradient();
      sum.loss += s.loss;
      sum.accuracy += s.accuracy;
      const auto g = work.grads();
      dir_.assign(g.begin(), g.end());
      if (buffer_.size() > 0 && mix_ > 0) {
        rf_.clear();
        rl_.clear();
        buffer_.sample(static_cast<std::size_t>(replay_batch_), rng_, rf_, rl_);
        sw->gradient_on(rf_, rl_);
        const auto r = work.grads();
        const float a = static_cast<float>(1.0 - mix_), b = static_cast<float>(mix_);
        for (std::size_t k = 0; k < dir_.size(); ++k) dir_[k] = a * dir_[k] + b * r[k];
        if (refine_codec_)
          for (std::size_t k = 0; k < dir_.size(); ++k) dir_[k] += b * correction_[k];
      }
      work.step(model_, dir_);
    }
    sum.loss /= ctx_.local_steps;
    sum.accuracy /= ctx_.local_steps;
    choose(round, work, *sw);
    return sum;
  }

  std::vector<Outgoing> produce(std::int64_t round, int) override {
    std::vector<Outgoing> out;
    const codec::Bytes* model = nullptr;
    if (gossip_round(round)) {
      encoder_.encoder().encode(model_, codec_ctx(ctx_, round, ctx_.self), model_bytes_);
      model = &model_bytes_;
    }
    for (auto& o : outbox_) {
      auto bytes = std::make_shared<codec::Bytes>();
      const auto s = qdata::encode_frame(bits_, buffer_.dim(), o.features, o.labels,
                                         refine_codec_ ? &o.refine : nullptr, model, *bytes);
      bytes_samples_ += s.samples;
      bytes_refine_ += s.refine;
      bytes_model_ += s.model;
      out.push_back({o.to, gossip_message(ctx_, round,
                                          net::Payload::share(std::shared_ptr<const codec::Bytes>(
                                              std::move(bytes))))});
    }
    return out;
  }

  std::vector<Expected> expect(std::int64_t round, int) const override {
    std::vector<Expected> out;
    for (int j : ctx_.topology->in_neighbors(ctx_.self, round))
      if (!peer_is_down(j))
        out.push_back({j, net::MessageKind::kGossip, net::LinkKind::kData, round});
    return out;
  }

  Refusal check(const net::Message& m) override {
    if (auto r = check_header(m)) return r;
    const bool gossip = gossip_round(m.round);
    qdata::Limits limits{bits_, buffer_.dim(), classes_, static_cast<std::size_t>(budget_)};
    try {
      qdata::decode_frame(m.payload.bytes(), limits, "qdata", check_frame_);
      if (check_frame_.has_model != gossip || check_frame_.has_refine != bool(refine_codec_) ||
          (check_frame_.has_refine && check_frame_.count == 0 && !check_frame_.refine.empty()))
        return {"wrong frame", "model or refinement present where the config says otherwise"};
      if (auto r = check_values(check_frame_.features)) return r;
      check_buffer_.resize(model_.size());
      const auto cc = codec_ctx(ctx_, m.round, m.sender);
      if (check_frame_.has_refine && check_frame_.count > 0) {
        refine_dec_->decode(check_frame_.refine, cc, check_buffer_);
        if (auto r = check_values(check_buffer_)) return r;
      }
      if (gossip) {
        decoder_->decode(check_frame_.model, cc, check_buffer_);
        if (auto r = check_values(check_buffer_)) return r;
      }
    } catch (const std::exception& e) {
      return {"malformed frame", e.what()};
    }
    return {};
  }

  void absorb(std::int64_t round, int, std::vector<net::Message>& received) override {
    sort_by_sender(received);
    const bool gossip = gossip_round(round);
    const Topology& t = *ctx_.topology;
    float self_w = 1.0f;
    if (gossip) std::fill(mixed_.begin(), mixed_.end(), 0.0f);
    qdata::Limits limits{bits_, buffer_.dim(), classes_, static_cast<std::size_t>(budget_)};
    for (const auto& m : received) {
      const std::string where = "qdata: node " + std::to_string(ctx_.self) + ", from peer " +
                                std::to_string(m.sender) + ", round " + std::to_string(round + 1);
      qdata::decode_frame(m.payload.bytes(), limits, where, frame_);
      if (frame_.has_model != gossip)
        throw ProtocolError(where + ": " + (gossip ? "no model in a" : "a model outside a") +
                            " model-gossip round; do all nodes use the same method.gossip_every?");
      if (frame_.has_refine != static_cast<bool>(refine_codec_))
        throw ProtocolError(where + ": refinement " + (frame_.has_refine ? "sent" : "missing") +
                            "; do all nodes use the same method.refine?");
      try {
        if (frame_.has_refine && frame_.count > 0) {
          refine_dec_->decode(frame_.refine, codec_ctx(ctx_, round, m.sender), delta_);
          const float rho = std::min(
              1.0f, static_cast<float>(frame_.count) / static_cast<float>(buffer_.capacity()));
          for (std::size_t k = 0; k < delta_.size(); ++k)
            correction_[k] += rho * (delta_[k] - correction_[k]);
        } else if (frame_.has_refine && !frame_.refine.empty()) {
          throw ProtocolError(where + ": refinement bytes without samples");
        }
        if (gossip) {
          const float w = static_cast<float>(t.weight(ctx_.self, m.sender, round));
          decoder_->decode_add(frame_.model, codec_ctx(ctx_, round, m.sender), mixed_, w);
          self_w -= w;
        }
      } catch (const CodecError& e) {
        throw ProtocolError(where + ": " + e.what());
      }
      for (std::size_t i = 0; i < frame_.count; ++i)
        buffer_.add(
            std::span<const float>(frame_.features).subspan(i * buffer_.dim(), buffer_.dim()),
            frame_.labels[i]);
      received_ += frame_.count;
    }
    // Missing (down) neighbours' weight stays with this node.
    if (gossip)
      for (std::size_t k = 0; k < model_.size(); ++k) model_[k] = mixed_[k] + self_w * model_[k];
  }

  nlohmann::json round_metrics() const override {
    return {{"qd_samples_sent", sent_},
            {"qd_samples_recv", received_},
            {"qd_threshold", std::isnan(importance_.threshold())
                                 ? nlohmann::json(nullptr)
                                 : nlohmann::json(importance_.threshold())},
            {"qd_buffer", buffer_.size()},
            {"qd_bytes_samples", bytes_samples_},
            {"qd_bytes_refine", bytes_refine_},
            {"qd_bytes_model", bytes_model_}};
  }

  nlohmann::json save_state() const override {
    return {{"bytes", {bytes_samples_, bytes_refine_, bytes_model_}}};
  }
  void load_state(const nlohmann::json& s) override {
    if (!s.contains("bytes")) return;
    bytes_samples_ = s["bytes"][0];
    bytes_refine_ = s["bytes"][1];
    bytes_model_ = s["bytes"][2];
  }
  std::vector<StateBuffer> state_buffers() override {
    // The replay buffer is not checkpointed: a resumed node refills it from its neighbours.
    std::vector<StateBuffer> out;
    encoder_.add_state(out, "ef_memory");
    if (refine_codec_) {
      out.push_back(vector_state("refine_correction", correction_));
      if (!refine_enc_->memory().empty())  // ef|... refinement codec
        out.push_back({"refine_ef_memory", refine_enc_->memory(),
                       [this](std::span<const float> m) { refine_enc_->set_memory(m); }});
    }
    return out;
  }

 private:
  struct Outbox {
    int to = 0;
    std::vector<float> features;
    std::vector<std::int32_t> labels;
    codec::Bytes refine;
  };

  bool gossip_round(std::int64_t round) const {
    return gossip_every_ > 0 && (round + 1) % gossip_every_ == 0;
  }

  // Picks, quantizes and (with refinement) corrects this round's samples per out-neighbour.
  void choose(std::int64_t round, LocalWork& work, SampleWork& sw) {
    std::vector<int> to;
    for (int j : ctx_.topology->out_neighbors(ctx_.self, round))
      if (!peer_is_down(j)) to.push_back(j);
    outbox_.resize(to.size());
    for (std::size_t n = 0; n < to.size(); ++n) {
      outbox_[n].to = to[n];
      outbox_[n].features.clear();
      outbox_[n].labels.clear();
    }
    sent_ = 0;
    if (to.empty() || budget_ == 0) return;
    const std::size_t dim = buffer_.dim();
    const auto relayed = std::min<std::size_t>(
        buffer_.size(), static_cast<std::size_t>(std::lround(relay_ * candidates_)));
    cf_.clear();
    cl_.clear();
    sw.draw(static_cast<std::size_t>(candidates_) - relayed, round, cf_, cl_);
    if (relayed) {
      Rng r = Rng::derive(ctx_.seed, kStreamRelay, static_cast<std::uint64_t>(ctx_.self),
                          static_cast<std::uint64_t>(round));
      buffer_.sample(relayed, r, cf_, cl_);
    }
    const auto losses = sw.losses(cf_, cl_);
    const auto picked = importance_.select(losses, static_cast<std::size_t>(budget_) * to.size());
    // Dealt round-robin: the highest losses spread over all neighbours.
    for (std::size_t r = 0; r < picked.size(); ++r) {
      auto& o = outbox_[r % to.size()];
      const std::size_t i = picked[r];
      o.features.insert(o.features.end(), cf_.begin() + static_cast<std::ptrdiff_t>(i * dim),
                        cf_.begin() + static_cast<std::ptrdiff_t>((i + 1) * dim));
      o.labels.push_back(cl_[i]);
    }
    sent_ = picked.size();
    if (!refine_codec_) return;
    for (auto& o : outbox_) {
      if (o.labels.empty()) {
        o.refine.clear();
        continue;
      }
      sw.gradient_on(o.features, o.labels);
      const auto g = work.grads();
      delta_.assign(g.begin(), g.end());
      quantized_.resize(o.features.size());
      scratch_.resize(qdata::packed_size(dim, bits_));
      for (std::size_t s = 0; s < o.labels.size(); ++s) {
        const auto x = std::span<const float>(o.features).subspan(s * dim, dim);
        const auto sc = qdata::quantize(x, bits_, scratch_.data());
        qdata::dequantize(scratch_.data(), bits_, sc,
                          std::span<float>(quantized_).subspan(s * dim, dim));
      }
      sw.gradient_on(quantized_, o.labels);
      const auto gq = work.grads();
      for (std::size_t k = 0; k < delta_.size(); ++k) delta_[k] -= gq[k];
      refine_enc_->encode(delta_, codec_ctx(ctx_, round, ctx_.self), o.refine);
    }
  }

  // Options (defaults in qdata_options()).
  int budget_ = 0, bits_ = 0, candidates_ = 0, capacity_ = 0, replay_batch_ = 0;
  double mix_ = 0, relay_ = 0;
  std::int64_t gossip_every_ = 0;
  int classes_ = 0;
  qdata::Importance importance_;
  qdata::ReplayBuffer buffer_;
  Rng rng_{1};
  std::shared_ptr<const codec::Codec> refine_codec_;
  std::unique_ptr<codec::Encoder> refine_enc_;
  std::unique_ptr<codec::Decoder> refine_dec_;
  std::vector<float> correction_, delta_, quantized_, dir_, rf_, cf_, mixed_;
  std::vector<std::int32_t> rl_, cl_;
  std::vector<std::uint8_t> scratch_;
  std::vector<Outbox> outbox_;
  qdata::Frame frame_;
  PayloadEncoder encoder_;
  codec::Bytes model_bytes_;
  std::unique_ptr<codec::Decoder> decoder_;
  qdata::Frame check_frame_;  // check() decodes here, absorb() into frame_
  std::uint64_t sent_ = 0, received_ = 0;
  std::uint64_t bytes_samples_ = 0, bytes_refine_ = 0, bytes_model_ = 0;
};

}  // namespace

namespace {
std::vector<Option> qdata_options() {
  return {
      {"method.budget", "int", 4, "qdata: samples sent to each neighbour per round", 0, 65535},
      {"method.bits", "int", 4, "qdata: bits per input value (1..8; per-sample scale, offset)", 1,
       8},
      {"method.importance", "string", "top",
       "qdata: top (highest-loss candidates) or quantile (loss above a running quantile)"},
      {"method.quantile", "number", 0.8, "qdata importance quantile: send losses above it", 0, 1},
      {"method.quantile_step", "number", 0.01, "qdata importance quantile: tracking step", 0, 1},
      {"method.candidates", "int", 64, "qdata: candidates ranked by loss each round", 1, 1e6},
      {"method.relay", "number", 0.0,
       "qdata: share of the candidates drawn from the replay buffer (samples travel on)", 0, 1},
      {"method.buffer", "int", 1024, "qdata: replay buffer capacity (received samples)", 1, 1e8},
      {"method.mix", "number", 0.5, "qdata: weight of the replay gradient in each step", 0, 1},
      {"method.replay_batch", "int", 32, "qdata: replayed samples per local step", 1, 1e6},
      {"method.refine", "string", "none",
       "qdata: codec of the gradient refinement g(x) - g(Q(x)) (none, sign, qsgd:2, ...)"},
      {"method.gossip_every", "int", 10,
       "qdata: average models (run's codec) every N rounds (0: never)", 0, 1e12}};
}
}  // namespace

MethodInfo qdata_method() {
  return method_entry<Qdata>(
      "qdata",
      "quantized data: sends important training samples (data leaves the node), averages "
      "models every gossip_every rounds",
      {true, true, false}, LocalMomentum::kOptimizer, qdata_options());
}

}  // namespace rumor::gossip
