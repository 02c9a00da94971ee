// Asynchronous decentralized SGD (AD-PSGD; Lian, Zhang, Zhang, Liu 2018, "Asynchronous
// decentralized parallel stochastic gradient descent", ICML): no global rounds; after each
// local step a node averages with one neighbour drawn at random, x_i, x_j <- (x_i + x_j) / 2,
// atomically (pairwise.hpp), so the sum of the models only changes by the local steps.
// Both ends keep the very same average: the reply carries it bit for bit (codec fp32).
#include <algorithm>

#include "common.hpp"
#include "rumor/common/error.hpp"
#include "rumor/common/rng.hpp"
#include "rumor/gossip/pairwise.hpp"

namespace rumor::gossip {

net::Message pair_done_message(std::int64_t steps) {
  net::Message m;
  m.kind = net::MessageKind::kPairDone;
  m.round = steps;
  return m;
}

bool is_pairwise_kind(net::MessageKind k) {
  using K = net::MessageKind;
  return k == K::kPairRequest || k == K::kPairReply || k == K::kPairBusy || k == K::kPairDone;
}

int crossing_server(std::uint64_t seed, int a, std::int64_t a_step, int b, std::int64_t b_step) {
  // Stream tag of the crossing coins.
  constexpr std::uint64_t kCrossingTag = 0xc055;
  const bool a_low = a < b;
  const auto lo = static_cast<std::uint64_t>(a_low ? a : b);
  const auto hi = static_cast<std::uint64_t>(a_low ? b : a);
  const auto lo_step = static_cast<std::uint64_t>(a_low ? a_step : b_step);
  const auto hi_step = static_cast<std::uint64_t>(a_low ? b_step : a_step);
  const bool low_serves = (mix_words({seed, kCrossingTag, lo, hi, lo_step, hi_step}) >> 63) != 0;
  return static_cast<int>(low_serves ? lo : hi);
}

Refusal check_message(Exchange& method, const net::Message& m) {
  try {
    return method.check(m);
  } catch (const std::exception& e) {
    return {"check failed", e.what()};
  }
}

namespace {

class AdPsgd : public Method, public Pairwise {
 public:
  explicit AdPsgd(MethodContext ctx)
      : Method(std::move(ctx)), rng_(Rng::derive(ctx_.seed, 0xad95, ctx_.self)) {
    if (ctx_.codec->name() != "fp32")
      throw ConfigError(
          "method adpsgd averages pairs exactly (both ends keep the same average, so "
          "the sum of the models is conserved); codec " +
          ctx_.codec->name() + " would break that: set codec to fp32");
    max_tries_ = param<int>("max_tries");
  }
  std::string name() const override { return "adpsgd"; }
  Pairwise* pairwise() override { return this; }

  void init(std::span<float> model) override {
    model_ = model;
    peer_x_.assign(model.size(), 0.0f);
    encoder_.reset(*ctx_.codec, model.size());
    decoder_ = ctx_.codec->make_decoder(model.size());
  }

  // No synchronous rounds: the drivers of asynchronous methods use pairwise().
  int stages(std::int64_t) const override { return 0; }
  std::vector<Outgoing> produce(std::int64_t, int) override { return {}; }
  std::vector<Expected> expect(std::int64_t, int) const override { return {}; }
  void absorb(std::int64_t, int, std::vector<net::Message>&) override {}

  Refusal check(const net::Message& m) override;
  std::optional<Outgoing> start(std::int64_t step) override;
  net::Message serve(const net::Message& request) override;
  net::Message busy(const net::Message& request) override;
  bool finish(const net::Message& answer) override;
  void give_up() override;
  bool locked() const override { return partner_ >= 0; }
  int partner() const override { return partner_; }

  nlohmann::json round_metrics() const override { return counters(); }
  nlohmann::json save_state() const override { return counters(); }
  void load_state(const nlohmann::json& s) override {
    exchanges_ = s.at("pair_exchanges").get<std::uint64_t>();
    served_ = s.at("pair_served").get<std::uint64_t>();
    busy_ = s.at("pair_busy").get<std::uint64_t>();
    skipped_ = s.at("pair_skipped").get<std::uint64_t>();
  }

 private:
  nlohmann::json counters() const {
    return {{"pair_exchanges", exchanges_},
            {"pair_served", served_},
            {"pair_busy", busy_},
            {"pair_skipped", skipped_}};
  }
  net::Message with_model(net::MessageKind kind, std::int64_t step) {
    net::Message m = gossip_message(ctx_, step, encoder_.encode(model_, codec_ctx(ctx_, step, 0)));
    m.kind = kind;
    return m;
  }
  // The step's exchange is over (averaged or not): the next one starts afresh.
  void unlock() {
    partner_ = -1;
    tries_ = 0;
  }

  Rng rng_;
  int max_tries_ = 3;
  int partner_ = -1;       // the neighbour asked, while locked
  std::int64_t step_ = 0;  // the step of the request to partner_
  int tries_ = 0;          // requests made after the current local step
  std::vector<float> peer_x_;
  PayloadEncoder encoder_;
  std::unique_ptr<codec::Decoder> decoder_;
  std::uint64_t exchanges_ = 0, served_ = 0, busy_ = 0, skipped_ = 0;
};

Refusal AdPsgd::check(const net::Message& m) {
  using K = net::MessageKind;
  if (!is_pairwise_kind(m.kind) || m.link != net::LinkKind::kData)
    return {"unexpected kind", net::to_string(m.kind) + " where a pairwise message was expected"};
  if ((m.kind == K::kPairReply || m.kind == K::kPairBusy) && m.sender != partner_)
    return {"unexpected reply",
            "an answer from peer " + std::to_string(m.sender) +
                ", which this node did not ask (asked: " + std::to_string(partner_) + ")"};
  if (m.kind != K::kPairRequest && m.kind != K::kPairReply) return {};
  if (m.codec != ctx_.codec_id)
    return {"codec tag mismatch", "codec tag " + std::to_string(m.codec) + ", this run's is " +
                                      std::to_string(ctx_.codec_id) + "; same config everywhere?"};
  return check_payload(m);
}

std::optional<Outgoing> AdPsgd::start(std::int64_t step) {
  // Neighbours done with their steps are asked too: they serve until everyone is done.
  const auto peers = live(ctx_.topology->peers(ctx_.self));
  if (peers.empty()) {
    ++skipped_;
    unlock();
    return std::nullopt;
  }
  partner_ = peers[rng_.below(peers.size())];
  step_ = step;
  ++tries_;
  return Outgoing{partner_, with_model(net::MessageKind::kPairRequest, step)};
}

net::Message AdPsgd::serve(const net::Message& request) {
  // Locked: our model is on its way to partner_. Serve only partner_'s crossing request, and
  // only when the pair's coin names this node (partner_ then refuses ours, so our model in
  // flight is never averaged twice).
  if (locked() &&
      !(request.sender == partner_ &&
        crossing_server(ctx_.seed, ctx_.self, step_, partner_, request.round) == ctx_.self))
    return busy(request);
  decoder_->decode(request.payload.bytes(), codec_ctx(ctx_, request.round, 0), peer_x_);
  for (std::size_t k = 0; k < peer_x_.size(); ++k) model_[k] = 0.5f * (model_[k] + peer_x_[k]);
  ++served_;
  return with_model(net::MessageKind::kPairReply, request.round);
}

net::Message AdPsgd::busy(const net::Message& request) {
  net::Message m;
  m.kind = net::MessageKind::kPairBusy;
  m.round = request.round;
  return m;
}

bool AdPsgd::finish(const net::Message& answer) {
  if (answer.kind == net::MessageKind::kPairReply) {
    decoder_->decode(answer.payload.bytes(), codec_ctx(ctx_, answer.round, 0), model_);
    ++exchanges_;
    unlock();
    return true;
  }
  ++busy_;
  const int tries = tries_;
  partner_ = -1;
  if (tries < max_tries_) return false;
  ++skipped_;
  unlock();
  return true;
}

void AdPsgd::give_up() {
  ++skipped_;
  unlock();
}

}  // namespace

MethodInfo adpsgd_method() {
  auto info = method_entry<AdPsgd>(
      "adpsgd",
      "asynchronous decentralized SGD (AD-PSGD): no rounds; after each local step a node "
      "averages with one random neighbour, atomically; fp32 only",
      {true, false, false}, LocalMomentum::kOptimizer,
      {{"method.max_tries", "int", 3,
        "adpsgd: requests a node makes after one local step when neighbours answer busy, "
        "before it goes on without averaging",
        1, 1000}},
      "it averages with one neighbour at a time, exactly, to keep the sum of the models");
  info.asynchronous = true;
  return info;
}

}  // namespace rumor::gossip
