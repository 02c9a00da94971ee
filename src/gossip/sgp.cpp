// Stochastic Gradient Push (Assran et al. 2019): push-sum on directed, time-varying graphs.
// State: numerator x and weight p (fp64); the model is z = x / p. Each round:
//   local steps on x with gradients at z;  keep 1/(d+1) of (x, p), send the same share to
//   each of the d out-neighbours;  add what arrives;  z = x / p.
//
// Robust push-sum (method.robust, the default; Hadjicostis, Vaidya and Dominguez-Garcia):
// messages carry running sums instead of shares. Per out-edge the sender keeps sigma, the
// sum of every share it ever pushed on that edge (fp64 numerator and weight), and sends
// sigma; per in-edge the receiver keeps rho, the last sigma it applied, adds sigma - rho
// and stores sigma. A lost or late message is repaired by the next one on the same edge,
// so mass is never lost, only delayed; a message older than the last one applied is
// ignored (its shares are already in). Running sums grow without bound, so they travel
// as raw fp64 whatever the codec: robust mode takes codec fp32 only (a lossy codec cannot
// carry a running sum: its error would grow with it) and says so; method.robust false
// sends codec-compressed shares as before.
//
// Sums on the wire only when needed. A link that delivers every message while it lives (TCP,
// in-process without a loss model) loses messages only when a send is dropped or the link
// breaks, and the runtime says so (delivery_failed). There each message carries the plain
// fp32 share, as in plain push-sum (half the bytes of fp64 sums, and the same arithmetic),
// while both ends still keep sigma and rho locally (each block of rounds gathered in fp32,
// then added to fp64 totals: Sums); after a loss the next message on that
// edge carries sigma (two scalars: sigma's weight, then 1), which repairs it, and a share
// older than the sums last applied is ignored. With a loss model (links.loss) every message
// carries the sums. Where no message can be lost (in-process without a loss model or a
// stopping node) the fp64 sums are not kept at all: they could never be sent, and they
// would take two model-sized vectors per edge (most of the memory of a 10,000-peer run).
//
// Plain mode over a lossy codec: the sender keeps x - d * decode(sent), so what it keeps
// plus what the receivers decode is exactly what it had: mass is conserved without loss.
// Overlap mode absorbs every message that has arrived and waits only for those more than
// tau rounds old. Without overlap it waits for the current round's (tau 0); in both modes
// whatever has arrived is absorbed, as a late message from an earlier round is still mass.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <map>
#include <set>
#include <utility>

#include "methods.hpp"
#include "rumor/common/error.hpp"

namespace rumor::gossip {
namespace {

// Rounds whose shares a running sum gathers in fp32 before adding them to its fp64 total.
constexpr std::int64_t kFoldRounds = 32;

// Running sums kept locally (shares on the wire): fp64 totals, as they grow without bound,
// but a round's share goes into an fp32 vector of the current block of kFoldRounds rounds,
// added to the total when a share of the next block comes. A round then reads and writes 8
// bytes a value instead of 16 (the sums are memory-bound: the largest part of a co-located
// run's gossip time). Both ends of an edge fold at the same share rounds, so on a fault-free
// edge sigma and rho stay equal bit for bit; what a repair recovers is exact up to the fp32
// rounding of one block's sum, below the rounding of the fp32 numerator it is added to.
struct Sums {
  explicit Sums(std::size_t n = 0) : total(n, 0.0), recent(n, 0.0f) {}
  explicit Sums(const std::vector<double>& v) : total(v), recent(v.size(), 0.0f) {}
  // Called before a share of `round` goes into `recent`: whether it starts a new block, so
  // that the sums are to be folded first.
  bool starts_block(std::int64_t round) {
    held = true;
    const std::int64_t b = round / kFoldRounds;
    return std::exchange(block, b) != b;
  }
  void fold(std::size_t b, std::size_t e) {
    for (std::size_t k = b; k < e; ++k) {
      total[k] += recent[k];
      recent[k] = 0.0f;
    }
  }
  // Every share in the total (the sums are read, sent or saved).
  std::vector<double>& settled() {
    if (std::exchange(held, false)) fold(0, total.size());
    return total;
  }
  std::vector<double> total;
  std::vector<float> recent;
  std::int64_t block = -1;
  bool held = false;  // recent may hold shares (with the sums on every message it never does)
};

// Running sums of one edge. Out-edges that have carried the same shares point at one Sums,
// updated once a round instead of once per edge; an edge that misses a share or whose sums
// are set (leave, rejoin, checkpoint) gets a copy of its own first. In-edges always have
// their own.
struct EdgeSum {
  std::shared_ptr<Sums> x = std::make_shared<Sums>();
  // Out-edges: the last copy of x put on the wire, reused once the transport lets go of it
  // so that steady-state rounds allocate nothing.
  std::shared_ptr<std::vector<double>> wire;
  double w = 0.0;
  std::int64_t round = -1;  // in-edges: round of the last running sums applied
  bool resync = false;      // out-edges: the next message carries the sums (a loss)
};

// An edge's fp64 sums go into fp32 checkpoint buffers bit for bit (two floats per double);
// loaded, they are the edge's own.
Method::StateBuffer double_state(const std::string& name, EdgeSum& e) {
  const std::vector<double>& v = e.x->settled();
  return {name, std::span<const float>(reinterpret_cast<const float*>(v.data()), 2 * v.size()),
          [&e](std::span<const float> s) {
            std::vector<double> v(s.size() / 2);
            std::memcpy(v.data(), s.data(), s.size_bytes());
            e.x = std::make_shared<Sums>(v);
          }};
}

void set_sums(EdgeSum& e, const std::vector<double>& v) {
  e.x = std::make_shared<Sums>(v);
}

std::span<const double> as_doubles(const net::Payload& p) {
  return {reinterpret_cast<const double*>(p.data()), p.size() / sizeof(double)};
}

// f(begin, end) over [0, n) in blocks small enough that what f's loops touch in one block
// stays in cache from one loop to the next: vectors read or written by several loops then
// cross memory once.
template <typename F>
void for_blocks(std::size_t n, F&& f) {
  constexpr std::size_t kBlock = 2048;
  for (std::size_t b = 0; b < n; b += kBlock) f(b, std::min(n, b + kBlock));
}

class Sgp : public Method {
 public:
  explicit Sgp(MethodContext ctx) : Method(std::move(ctx)) {
    overlap_ = param<bool>("overlap");
    tau_ = param<int>("tau");
    robust_ = param<bool>("robust");
    sums_on_wire_ = robust_ && ctx_.lossy_links;
    keep_sums_ = robust_ && !ctx_.reliable_links;
    if (overlap_ && tau_ < 0) throw ConfigError("method.tau must be >= 0");
    if (!overlap_) tau_ = 0;
    if (robust_ && ctx_.codec->name() != "fp32")
      throw ConfigError(
          "method sgp with method.robust true (the default) sends running sums as "
          "fp64 and cannot carry codec '" +
          ctx_.codec->name() +
          "'; use codec fp32, or set method.robust false to send compressed "
          "shares (mass is then lost with every lost message)");
    // Every edge of the schedule, so checkpoints list the same buffers on save and load.
    const Topology& t = *ctx_.topology;
    for (int j : t.out_peers(ctx_.self)) out_[j];
    for (int j : t.in_peers(ctx_.self)) in_[j];
  }
  std::string name() const override { return "sgp"; }

  void init(std::span<float> model) override {
    model_ = model;
    x_.assign(model.begin(), model.end());
    encoder_.reset(*ctx_.codec, model.size());
    decoder_ = ctx_.codec->make_decoder(model.size());
    p_ = 1.0;
    const std::size_t sums = keep_sums_ ? model.size() : 0;
    auto shared = std::make_shared<Sums>(sums);
    for (auto& [j, e] : out_) {
      e = EdgeSum{};
      e.x = shared;
    }
    for (auto& [j, e] : in_) {
      e = EdgeSum{};
      e.x = std::make_shared<Sums>(sums);
    }
  }

  LocalWork::Stats local(std::int64_t, LocalWork& work) override {
    LocalWork::Stats sum;
    if (!work.trains()) return sum;
    for (int h = 0; h < ctx_.local_steps; ++h) {
      const auto s = work.gradient();  // at z (the model span)
      work.step(x_);                   // on the numerator
      debias();
      sum.loss += s.loss;
      sum.accuracy += s.accuracy;
    }
    sum.loss /= ctx_.local_steps;
    sum.accuracy /= ctx_.local_steps;
    return sum;
  }

  std::vector<Outgoing> produce(std::int64_t round, int) override {
    // A neighbour marked down gets nothing: its share stays here.
    const auto outs = live(ctx_.topology->out_neighbors(ctx_.self, round));
    const double d = static_cast<double>(outs.size());
    if (outs.empty()) return {};
    const float f = static_cast<float>(1.0 / (d + 1.0));
    const auto share = scratch(1, x_.size());
    const double p_share = p_ / (d + 1.0);
    const float df = static_cast<float>(d);
    if (sums_on_wire_) {
      for (std::size_t k = 0; k < x_.size(); ++k) share[k] = x_[k] * f;
      return produce_running_sums(round, outs, share, p_share);
    }
    // Robust mode sends the share itself (codec fp32, exact), so it is not decoded back; the
    // same arithmetic as below, one pass fewer, and sigma takes the share in that pass.
    net::Payload payload;
    if (robust_) {
      const auto sigmas = keep_sums_ ? sigma_targets(outs) : std::vector<Sums*>{};
      std::vector<bool> folds;
      for (Sums* sum : sigmas) folds.push_back(sum->starts_block(round));
      for_blocks(x_.size(), [&](std::size_t b, std::size_t e) {
        for (std::size_t k = b; k < e; ++k) {
          share[k] = x_[k] * f;
          x_[k] -= df * share[k];
        }
        for (std::size_t i = 0; i < sigmas.size(); ++i) {
          if (folds[i]) sigmas[i]->fold(b, e);
          float* sum = sigmas[i]->recent.data();
          for (std::size_t k = b; k < e; ++k) sum[k] += share[k];
        }
      });
      payload = encoder_.encode(share, codec_ctx(ctx_, round, ctx_.self));
    } else {
      const auto decoded = scratch(2, x_.size());
      for (std::size_t k = 0; k < x_.size(); ++k) share[k] = x_[k] * f;
      payload = encoder_.encode(share, codec_ctx(ctx_, round, ctx_.self), decoded);
      for (std::size_t k = 0; k < x_.size(); ++k) x_[k] -= df * decoded[k];
    }
    p_ -= d * p_share;
    auto m = gossip_message(ctx_, round, std::move(payload), {p_share});
    if (!robust_) return to_each(outs, m);
    std::vector<Outgoing> out;
    for (int j : outs) {
      EdgeSum& e = edge(out_, j, "out-neighbour");
      e.w += p_share;
      if (!std::exchange(e.resync, false)) {
        out.push_back({j, m});
        continue;
      }
      out.push_back({j, sums_message(round, e)});
      out.back().message.scalars.push_back(1.0);  // marks sums among shares
    }
    return out;
  }

  void delivery_failed(int peer) override {
    if (robust_ && !keep_sums_)
      throw Error("sgp: node " + std::to_string(ctx_.self) + ": a message to peer " +
                  std::to_string(peer) +
                  " was lost on links that cannot lose one (in-process, no loss model, no node "
                  "stopping), so no running sums were kept to repair it; please report this");
    if (auto it = out_.find(peer); robust_ && it != out_.end()) it->second.resync = true;
  }

  std::vector<Expected> expect(std::int64_t round, int) const override {
    // Wait only for messages of round - tau not absorbed yet (tau 0 without overlap).
    const std::int64_t due = round - tau_;
    std::vector<Expected> out;
    if (due < 0) return out;
    for (const auto& e : expect_from_in_neighbors(ctx_, due))
      if (!peer_is_down(e.sender) && !absorbed_.count({e.sender, due})) out.push_back(e);
    return out;
  }

  // Push-sum can always use a message, whatever its round: a late share is still mass.
  bool absorbs_early() const override { return true; }
  // Synchronous: only late messages early, so that over TCP the current round's arrive in one
  // absorb whatever their timing, and fault-free runs add in the same order every time.
  std::int64_t early_round_limit(std::int64_t round) const override {
    return overlap_ ? std::numeric_limits<std::int64_t>::max() : round - 1;
  }

  Refusal check(const net::Message& m) override {
    if (auto r = check_header(m)) return r;
    // Running sums grow by at most one share a round.
    const double n = ctx_.topology->size();
    const bool sums = carries_sums(m);
    const double rounds = sums ? static_cast<double>(std::max<std::int64_t>(m.round, 0) + 2) : 1;
    const double bound = ctx_.max_abs_value * n * rounds;
    const std::size_t scalars = sums && !sums_on_wire_ ? 2 : 1;
    if (m.scalars.size() != scalars || (sums ? m.scalars[0] < 0 : m.scalars[0] <= 0) ||
        m.scalars[0] > n * rounds)
      return {"bad push-sum weight",
              "push-sum weight " +
                  (m.scalars.empty() ? std::string("missing") : std::to_string(m.scalars[0]))};
    if (robust_ && !in_.count(m.sender))
      return {"not an in-neighbour", "push-sum share from a peer that is not an in-neighbour"};
    if (sums && !keep_sums_)
      return {"unexpected running sums", "running sums on links that lose nothing"};
    if (!sums) return check_payload(m);
    if (m.payload.size() != x_.size() * sizeof(double))
      return {"wrong size", std::to_string(m.payload.size()) + " bytes of running sums, expected " +
                                std::to_string(x_.size() * sizeof(double))};
    return check_values(as_doubles(m.payload), bound);
  }

  void absorb(std::int64_t round, int, std::vector<net::Message>& received) override {
    sort_by_sender(received);
    for (std::size_t i = 0, end = 0; i < received.size(); i = end) {
      const net::Message& m = received[i];
      end = i + 1;
      if (keep_sums_ && !carries_sums(m))  // the plain shares up to the next sums, in one pass
        while (end < received.size() && !carries_sums(received[end])) ++end;
      for (std::size_t k = i; k < end; ++k)
        absorbed_.insert({received[k].sender, received[k].round});
      if (carries_sums(m)) {
        apply_running_sum(m);
      } else if (keep_sums_) {
        absorb_tracked_shares(std::span<const net::Message>(received).subspan(i, end - i));
      } else {
        absorb_share(m);
      }
    }
    // Forget bookkeeping that can no longer matter.
    while (!absorbed_.empty() && absorbed_.begin()->second + 2 * tau_ + 2 < round)
      absorbed_.erase(absorbed_.begin());
    debias();
  }

  double weight() const override { return p_; }

  nlohmann::json save_state() const override {
    nlohmann::json s = {{"ps_weight", p_}};
    if (robust_) {
      nlohmann::json edges = nlohmann::json::array();
      for (const auto& [j, e] : out_) edges.push_back({{"to", j}, {"w", e.w}});
      for (const auto& [j, e] : in_) edges.push_back({{"from", j}, {"w", e.w}, {"round", e.round}});
      s["edges"] = edges;
    }
    return s;
  }
  void load_state(const nlohmann::json& s) override {
    p_ = s.at("ps_weight").get<double>();
    if (robust_) {
      for (const auto& e : s.at("edges")) {
        if (e.contains("to")) {
          edge(out_, e.at("to").get<int>(), "out-neighbour (checkpoint edge)").w =
              e.at("w").get<double>();
        } else {
          auto& in = edge(in_, e.at("from").get<int>(), "in-neighbour (checkpoint edge)");
          in.w = e.at("w").get<double>();
          in.round = e.at("round").get<std::int64_t>();
        }
      }
    }
    debias();
  }
  std::vector<StateBuffer> state_buffers() override {
    std::vector<StateBuffer> out{vector_state("sgp_numerator", x_)};
    encoder_.add_state(out, "ef_memory");
    if (keep_sums_) {
      for (auto& [j, e] : out_) out.push_back(double_state("sgp_sigma_to_" + std::to_string(j), e));
      for (auto& [j, e] : in_) out.push_back(double_state("sgp_rho_from_" + std::to_string(j), e));
    }
    return out;
  }

  // Graceful leave: x and p split equally among the live out-neighbours (nothing stays), and
  // per edge the running sums that settle what is still on the way: sigma towards the
  // neighbour (what it has not applied yet is added there) and rho from it (what it pushed
  // here and this node never applied goes back to it). Payload: the share of x (fp32), then
  // sigma and rho (fp64) where the edges exist; scalars: weight, sigma's and rho's weight (-1:
  // no such edge).
  std::vector<Outgoing> leave(std::int64_t round) override {
    const auto outs = live(ctx_.topology->out_peers(ctx_.self));
    std::vector<Outgoing> out;
    const float f =
        outs.empty() ? 0.0f : static_cast<float>(1.0 / static_cast<double>(outs.size()));
    const auto share = scratch(1, x_.size());
    for (std::size_t i = 0; i < outs.size(); ++i) {
      const int j = outs[i];
      const bool last = i + 1 == outs.size();  // takes the rest: x and p go out exactly
      for (std::size_t k = 0; k < x_.size(); ++k) share[k] = last ? x_[k] : x_[k] * f;
      for (std::size_t k = 0; k < x_.size(); ++k) x_[k] -= share[k];
      const double p_share = last ? p_ : p_ * static_cast<double>(f);
      p_ -= p_share;
      std::vector<std::uint8_t> bytes;
      append_bytes(bytes, share.data(), share.size() * sizeof(float));
      double sigma_w = -1.0, rho_w = -1.0;
      if (auto it = out_.find(j); robust_ && it != out_.end()) {
        append_doubles(bytes, it->second.x->settled());
        sigma_w = it->second.w;
      }
      if (auto it = in_.find(j); robust_ && it != in_.end()) {
        append_doubles(bytes, it->second.x->settled());
        rho_w = it->second.w;
      }
      net::Message m;
      m.kind = net::MessageKind::kBye;
      m.round = round;
      m.scalars = {p_share, sigma_w, rho_w};
      m.payload = net::Payload::take(std::move(bytes));
      out.push_back({j, std::move(m)});
    }
    return out;
  }

  void accept_leave(const net::Message& bye, std::int64_t round) override {
    const Bye b = read_bye(bye);
    for (std::size_t k = 0; k < x_.size(); ++k) x_[k] += b.part[k];
    p_ += bye.scalars[0];
    if (b.in != in_.end()) {  // what the leaver pushed here and was not applied yet
      EdgeSum& rho = b.in->second;
      const std::vector<double>& r = rho.x->settled();
      for (std::size_t k = 0; k < x_.size(); ++k) x_[k] += static_cast<float>(b.sigma[k] - r[k]);
      p_ += bye.scalars[1] - rho.w;
      set_sums(rho, b.sigma);
      rho.w = bye.scalars[1];
      rho.round = std::numeric_limits<std::int64_t>::max();  // anything later is in already
    }
    if (b.out != out_.end()) {  // what this node pushed and the leaver never applied comes back
      EdgeSum& sigma = b.out->second;
      const std::vector<double>& s = sigma.x->settled();
      for (std::size_t k = 0; k < x_.size(); ++k) x_[k] += static_cast<float>(s[k] - b.rho[k]);
      p_ += sigma.w - bye.scalars[2];
      set_sums(sigma, b.rho);
      sigma.w = bye.scalars[2];
    }
    set_peer_down(bye.sender, round);
    debias();
  }

  // Rejoin. Without a checkpoint the restarted peer starts from nothing: the offer hands
  // over half of the neighbour's (x, p), and both ends restart the sums of their shared edges
  // (the peer's old mass is lost). From a checkpoint the peer rebuilds the state it had when
  // it died, so that no mass is counted twice or lost: per neighbour i it adds what i pushed
  // after the checkpoint (sigma_i->j - its rho) and takes back what it pushed after it (i's
  // rho - its sigma); the offer carries i's sigma towards it and i's rho from it, and i
  // keeps its sums.
  net::Message rejoin_request(int peer, bool from_checkpoint) override {
    auto m = Method::rejoin_request(peer, from_checkpoint);
    if (auto it = out_.find(peer); robust_ && it != out_.end()) {
      m.scalars.push_back(it->second.w);
      m.payload = doubles_payload(it->second.x->settled());
    }
    return m;
  }

  net::Message rejoin_offer(const net::Message& request, std::int64_t round) override {
    set_peer_up(request.sender, round);
    const int j = request.sender;
    const bool fresh = wants_model(request);
    if (auto it = in_.find(j); robust_ && it != in_.end()) {
      // A fresh peer's sums start at zero; one from a checkpoint adopts this rho (below).
      EdgeSum& rho = it->second;
      const double w = request.scalars.size() > 1 ? request.scalars[1] : -1.0;
      const double n = ctx_.topology->size();
      const double bound = n * (static_cast<double>(std::max<std::int64_t>(round, 0)) + 2);
      std::vector<double> sigma(request.payload.size() / sizeof(double));
      if (!sigma.empty())
        std::memcpy(sigma.data(), request.payload.data(), sigma.size() * sizeof(double));
      if (request.payload.size() != rho.x->total.size() * sizeof(double) || !std::isfinite(w) ||
          w < 0 || w > bound || check_values(sigma, ctx_.max_abs_value * bound))
        throw ProtocolError("sgp rejoin: node " + std::to_string(ctx_.self) +
                            " got a malformed request from peer " + std::to_string(j) +
                            "; do all nodes use the same config (method.robust, model)?");
      if (fresh) {
        set_sums(rho, sigma);
        rho.w = w;
      }
      rho.round = round - 1;  // anything older is from before the restart
      std::erase_if(absorbed_, [j](const auto& a) { return a.first == j; });
    }
    net::Message m;
    m.kind = net::MessageKind::kRejoinOffer;
    m.round = round;
    // Payload: half of x as fp32 (empty when the peer has its own state), then (robust)
    // the running sum towards the peer as fp64. Scalars: weight handed over, sigma weight.
    std::vector<std::uint8_t> bytes;
    double p_given = 0.0;
    if (wants_model(request)) {
      const auto share = scratch(1, x_.size());
      for (std::size_t k = 0; k < x_.size(); ++k) {
        share[k] = x_[k] * 0.5f;
        x_[k] -= share[k];
      }
      p_given = p_ * 0.5;
      p_ -= p_given;
      debias();
      append_bytes(bytes, share.data(), share.size() * sizeof(float));
    }
    double sigma_w = 0.0, rho_w = 0.0;
    if (auto it = out_.find(j); robust_ && it != out_.end()) {
      append_doubles(bytes, it->second.x->settled());
      sigma_w = it->second.w;
    }
    if (auto it = in_.find(j); robust_ && !fresh && it != in_.end()) {
      append_doubles(bytes, it->second.x->settled());
      rho_w = it->second.w;
    }
    m.scalars = {p_given, sigma_w, fresh ? 1.0 : 0.0, rho_w};
    m.payload = net::Payload::take(std::move(bytes));
    return m;
  }

  void rejoin_declined(const net::Message& offer) override {
    const std::size_t d = x_.size();
    if (offer.scalars.size() != 4 || offer.scalars[2] == 0.0 ||
        offer.payload.size() < d * sizeof(float))
      return;  // nothing was handed over
    std::vector<float> part(d);
    std::memcpy(part.data(), offer.payload.data(), d * sizeof(float));
    for (std::size_t k = 0; k < d; ++k) x_[k] += part[k];
    p_ += offer.scalars[0];
    debias();
  }

  void rejoin_accept(const net::Message& offer) override {
    const std::size_t d = x_.size();
    const Offer o = read_offer(offer);
    if (o.has_model) {
      if (offers_accepted_ == 0) {  // the first offer replaces the fresh start
        std::fill(x_.begin(), x_.end(), 0.0f);
        p_ = 0.0;
      }
      for (std::size_t k = 0; k < d; ++k) x_[k] += o.part[k];
      p_ += offer.scalars[0];
      ++offers_accepted_;
    }
    if (o.in != in_.end()) {
      EdgeSum& rho = o.in->second;
      if (!o.has_model) {  // what the neighbour pushed after the checkpoint
        const std::vector<double>& r = rho.x->settled();
        for (std::size_t k = 0; k < d; ++k) x_[k] += static_cast<float>(o.sigma[k] - r[k]);
        p_ += offer.scalars[1] - rho.w;
      }
      set_sums(rho, o.sigma);
      rho.w = offer.scalars[1];
      // Messages the neighbour pushed before it let this node back in (still queued on a
      // link that went down) are older than the offer: ignored.
      rho.round = offer.round - 1;
    }
    if (o.out != out_.end()) {  // what this node pushed to the neighbour after the checkpoint
      EdgeSum& sigma = o.out->second;
      const std::vector<double>& s = sigma.x->settled();
      for (std::size_t k = 0; k < d; ++k) x_[k] -= static_cast<float>(o.applied[k] - s[k]);
      p_ -= offer.scalars[3] - sigma.w;
      set_sums(sigma, o.applied);
      sigma.w = offer.scalars[3];
    }
    debias();
  }

 private:
  // A rejoin offer's parts, checked and copied out of the payload (no unaligned reads). The
  // neighbour's sigma comes along when it pushes to this node (an in-edge here, `in`), its
  // rho when this node pushes to it and rebuilds from a checkpoint (`out`); end() otherwise.
  struct Offer {
    bool has_model = false;
    std::vector<float> part;
    std::vector<double> sigma, applied;
    std::map<int, EdgeSum>::iterator in, out;
  };
  Offer read_offer(const net::Message& offer) {
    const std::size_t d = x_.size();
    Offer o;
    o.has_model = offer.scalars.size() == 4 && offer.scalars[2] != 0.0;
    o.in = robust_ ? in_.find(offer.sender) : in_.end();
    o.out = robust_ && !o.has_model ? out_.find(offer.sender) : out_.end();
    const std::size_t want = (o.has_model ? d * sizeof(float) : 0) +
                             (o.in != in_.end() ? d * sizeof(double) : 0) +
                             (o.out != out_.end() ? d * sizeof(double) : 0);
    const double bound = sums_bound(offer.round);
    bool ok = offer.scalars.size() == 4 && offer.payload.size() == want;
    for (double v : offer.scalars) ok = ok && std::isfinite(v) && v >= 0 && v <= bound;
    if (!ok)
      throw ProtocolError("sgp rejoin: node " + std::to_string(ctx_.self) +
                          " got a malformed offer from peer " + std::to_string(offer.sender) +
                          "; do all nodes use the same config (method.robust)?");
    PartReader take{offer.payload.data(), d};
    if (o.has_model) take(o.part);
    if (o.in != in_.end()) take(o.sigma);
    if (o.out != out_.end()) take(o.applied);
    refuse_offer_values(check_values(o.part), offer);
    refuse_offer_values(check_values(o.sigma, ctx_.max_abs_value * bound), offer);
    refuse_offer_values(check_values(o.applied, ctx_.max_abs_value * bound), offer);
    return o;
  }

  // Weights and sums are bounded as check() bounds gossip: a share a round at most.
  double sums_bound(std::int64_t round) const {
    return ctx_.topology->size() * (static_cast<double>(std::max<std::int64_t>(round, 0)) + 2);
  }
  // Copies parts of `d` values out of a payload whose size was checked (no unaligned reads).
  struct PartReader {
    const std::uint8_t* at;
    std::size_t d;
    template <typename T>
    void operator()(std::vector<T>& v) {
      v.resize(d);
      std::memcpy(v.data(), at, d * sizeof(T));
      at += d * sizeof(T);
    }
  };

  // A goodbye's parts, checked and copied out of the payload (bytes from a peer are hostile).
  struct Bye {
    std::vector<float> part;
    std::vector<double> sigma, rho;
    std::map<int, EdgeSum>::iterator in, out;
  };
  Bye read_bye(const net::Message& bye) {
    const std::size_t d = x_.size();
    Bye b;
    b.in = robust_ ? in_.find(bye.sender) : in_.end();
    b.out = robust_ ? out_.find(bye.sender) : out_.end();
    const std::size_t want = d * sizeof(float) + (b.in != in_.end() ? d * sizeof(double) : 0) +
                             (b.out != out_.end() ? d * sizeof(double) : 0);
    const double bound = sums_bound(bye.round);
    bool ok = bye.scalars.size() == 3 && bye.payload.size() == want;
    for (std::size_t i = 0; ok && i < 3; ++i) {
      const bool edge = i == 0 || (i == 1 ? b.in != in_.end() : b.out != out_.end());
      const double v = bye.scalars[i];
      ok = std::isfinite(v) && (edge ? v >= 0 && v <= bound : v == -1.0);
    }
    if (!ok)
      throw ProtocolError("sgp: node " + std::to_string(ctx_.self) +
                          " got a malformed goodbye from peer " + std::to_string(bye.sender) +
                          "; do all nodes use the same config (method.robust, model)?");
    PartReader take{bye.payload.data(), d};
    take(b.part);
    if (b.in != in_.end()) take(b.sigma);
    if (b.out != out_.end()) take(b.rho);
    for (const Refusal& r :
         {check_values(b.part), check_values(b.sigma, ctx_.max_abs_value * bound),
          check_values(b.rho, ctx_.max_abs_value * bound)})
      if (r)
        throw ProtocolError("sgp: node " + std::to_string(ctx_.self) +
                            " refuses the goodbye of peer " + std::to_string(bye.sender) + ": " +
                            r.reason + " (" + r.detail + ")");
    return b;
  }

  std::vector<Outgoing> produce_running_sums(std::int64_t round, const std::vector<int>& outs,
                                             std::span<const float> share, double p_share) {
    add_to_sigma(outs, share);
    std::vector<Outgoing> out;
    for (int j : outs) {
      EdgeSum& e = edge(out_, j, "out-neighbour");
      e.w += p_share;
      out.push_back({j, sums_message(round, e)});
    }
    const float df = static_cast<float>(outs.size());
    for (std::size_t k = 0; k < x_.size(); ++k) x_[k] -= df * share[k];
    p_ -= static_cast<double>(outs.size()) * p_share;
    return out;
  }

  // sigma += sent on the out-edges `outs`, once per vector they share. Straight into the
  // fp64 totals: these sums go on the wire with every message.
  void add_to_sigma(const std::vector<int>& outs, std::span<const float> sent) {
    for (Sums* sum : sigma_targets(outs)) {
      std::vector<double>& total = sum->settled();
      for (std::size_t k = 0; k < sent.size(); ++k) total[k] += sent[k];
    }
  }

  // The distinct sigma vectors of the out-edges `outs`, each to take the share once. A vector
  // that an edge outside `outs` shares as well is copied for those in it first.
  std::vector<Sums*> sigma_targets(const std::vector<int>& outs) {
    struct Held {
      Sums* v;
      long in_outs, holders;  // edges of `outs` on it, edges on it
    };
    std::vector<Held> held;
    for (int j : outs) {
      const auto& x = edge(out_, j, "out-neighbour").x;
      auto it =
          std::find_if(held.begin(), held.end(), [&x](const Held& h) { return h.v == x.get(); });
      if (it == held.end())
        held.push_back({x.get(), 1, x.use_count()});
      else
        ++it->in_outs;
    }
    std::vector<Sums*> out;
    for (const Held& h : held) {
      std::shared_ptr<Sums> copy;
      if (h.holders > h.in_outs)
        for (int j : outs) {
          auto& x = out_.at(j).x;
          if (x.get() != h.v) continue;
          if (!copy) copy = std::make_shared<Sums>(*x);
          x = copy;
        }
      out.push_back(copy ? copy.get() : h.v);
    }
    return out;
  }

  // sigma of an out-edge as a message (scalars: sigma's weight).
  net::Message sums_message(std::int64_t round, EdgeSum& e) {
    if (!e.wire || e.wire.use_count() > 1) e.wire = std::make_shared<std::vector<double>>();
    *e.wire = e.x->settled();
    return gossip_message(ctx_, round,
                          net::Payload::share(std::shared_ptr<const std::vector<double>>(e.wire)),
                          {e.w});
  }

  bool carries_sums(const net::Message& m) const {
    return sums_on_wire_ || (robust_ && m.scalars.size() == 2);
  }

  // A plain share where no sums are kept; on a robust edge its weight still counts it, unless
  // the running sums applied at a rejoin already hold it.
  void absorb_share(const net::Message& m) {
    if (robust_) {
      EdgeSum& rho = edge(in_, m.sender, "in-neighbour");
      if (m.round <= rho.round) return;
      rho.w += m.scalars[0];
    }
    decoder_->decode_add(m.payload.bytes(), codec_ctx(ctx_, m.round, m.sender), x_, 1.0f);
    p_ += m.scalars[0];
  }

  // Plain shares on robust edges where sums are kept, added to x and to their edges' rho
  // unless the running sums already applied (after a loss, or at a rejoin) hold them. Block
  // by block, one share after another: every value takes the same additions in the same
  // order as share by share, while x crosses memory once for all of them. Every share is
  // checked before any is added.
  void absorb_tracked_shares(std::span<const net::Message> shares) {
    struct Tracked {
      const std::uint8_t* values;  // raw fp32, unaligned in the payload
      EdgeSum* rho;
      double w;
      bool fold;  // the share starts a block of rho's
    };
    std::vector<Tracked> todo;
    for (const net::Message& m : shares) {
      EdgeSum& rho = edge(in_, m.sender, "in-neighbour");
      if (m.round <= rho.round) continue;
      // Robust mode takes codec fp32 only: the payload holds the share's floats as they are.
      const auto raw = decoder_->raw_values(m.payload.bytes(), codec_ctx(ctx_, m.round, m.sender));
      if (raw.size() != x_.size() * sizeof(float))
        throw ProtocolError("sgp: node " + std::to_string(ctx_.self) + " got a share of " +
                            std::to_string(m.payload.size()) + " bytes from peer " +
                            std::to_string(m.sender) + " that is not " + std::to_string(x_.size()) +
                            " raw fp32 values");
      todo.push_back({raw.data(), &rho, m.scalars[0], rho.x->starts_block(m.round)});
    }
    float* x = x_.data();
    for_blocks(x_.size(), [&](std::size_t b, std::size_t e) {
      for (const Tracked& t : todo) {
        if (t.fold) t.rho->x->fold(b, e);
        float* r = t.rho->x->recent.data();
        for (std::size_t k = b; k < e; ++k) {
          float v;
          std::memcpy(&v, t.values + 4 * k, 4);
          x[k] += v;
          r[k] += v;
        }
      }
    });
    for (const Tracked& t : todo) {
      p_ += t.w;
      t.rho->w += t.w;
    }
  }

  void apply_running_sum(const net::Message& m) {
    EdgeSum& rho = edge(in_, m.sender, "in-neighbour");
    if (m.round <= rho.round) return;  // older than what is applied: already counted
    const auto sigma = as_doubles(m.payload);
    if (sigma.size() != rho.x->total.size() || m.payload.size() % sizeof(double) != 0)
      throw ProtocolError("sgp: node " + std::to_string(ctx_.self) + " got " +
                          std::to_string(m.payload.size()) + " bytes of running sums from peer " +
                          std::to_string(m.sender) + ", expected " +
                          std::to_string(rho.x->total.size() * sizeof(double)) +
                          "; do all nodes use the same config (method.robust, model)?");
    double* r = rho.x->settled().data();
    for (std::size_t k = 0; k < x_.size(); ++k) {
      x_[k] += static_cast<float>(sigma[k] - r[k]);
      r[k] = sigma[k];
    }
    p_ += m.scalars[0] - rho.w;
    rho.w = m.scalars[0];
    rho.round = m.round;
  }

  EdgeSum& edge(std::map<int, EdgeSum>& edges, int j, const char* what) {
    auto it = edges.find(j);
    if (it == edges.end())
      throw ProtocolError("sgp: node " + std::to_string(ctx_.self) + ": peer " + std::to_string(j) +
                          " is not an " + what + " in topology '" + ctx_.topology->name() + "'");
    return it->second;
  }

  static void append_bytes(std::vector<std::uint8_t>& out, const void* p, std::size_t n) {
    const auto* b = static_cast<const std::uint8_t*>(p);
    out.insert(out.end(), b, b + n);
  }
  static void append_doubles(std::vector<std::uint8_t>& out, const std::vector<double>& v) {
    append_bytes(out, v.data(), v.size() * sizeof(double));
  }
  static net::Payload doubles_payload(const std::vector<double>& v) {
    return net::Payload::share(std::make_shared<const std::vector<double>>(v));
  }

  // z = x / p. A weight so near zero (or below) that z would leave float's range, which only
  // a peer's bad values make, leaves the model as it was until the weight recovers.
  // Two passes that vectorise and write nothing but the model: the largest |x| by its bits
  // (an infinity or NaN when x holds one), then, when that value's z is finite, z into the
  // model (every other z is then finite too: rounding is monotonic).
  void debias() {
    if (!(p_ > 0)) return;
    const float inv = static_cast<float>(1.0 / p_);
    std::uint32_t top = 0;
    for (const float v : x_) top = std::max(top, std::bit_cast<std::uint32_t>(v) & 0x7fffffffu);
    if (!(std::bit_cast<float>(top) * inv < std::numeric_limits<float>::infinity())) return;
    float* z = model_.data();
    for (std::size_t k = 0; k < x_.size(); ++k) z[k] = x_[k] * inv;
  }

  bool overlap_ = false, robust_ = false;  // options: sgp_method()
  bool sums_on_wire_ = false;              // robust over a lossy link model
  bool keep_sums_ = false;                 // robust where a message can be lost
  int tau_ = 0;
  double p_ = 1.0;
  std::vector<float> x_;             // numerator (shares and received values: per-thread scratch)
  std::map<int, EdgeSum> out_, in_;  // robust: sigma per out-edge, rho per in-edge
  PayloadEncoder encoder_;
  std::unique_ptr<codec::Decoder> decoder_;
  // (sender, round) pairs absorbed ahead of their due round, ordered by round.
  struct ByRound {
    bool operator()(const std::pair<int, std::int64_t>& a,
                    const std::pair<int, std::int64_t>& b) const {
      return a.second != b.second ? a.second < b.second : a.first < b.first;
    }
  };
  std::set<std::pair<int, std::int64_t>, ByRound> absorbed_;
};

}  // namespace

MethodInfo sgp_method() {
  return method_entry<Sgp>(
      "sgp", "Stochastic Gradient Push: push-sum on directed / time-varying graphs",
      {false, false, false}, LocalMomentum::kOptimizer,
      {{"method.overlap", "bool", false,
        "sgp: absorb messages up to tau rounds late instead of waiting"},
       {"method.tau", "int", 1, "sgp overlap: bounded staleness in rounds", 0, 1000},
       {"method.robust", "bool", true,
        "sgp: robust push-sum (running sums in fp64, codec fp32 only): a lost or late message "
        "is repaired by the next one; false: plain shares, any codec"}},
      "push-sum mixes weighted shares x/w whose sum must be kept exactly (mass conservation); "
      "a robust rule that drops or clips a share loses mass and biases every node's z = x/w");
}

}  // namespace rumor::gossip
