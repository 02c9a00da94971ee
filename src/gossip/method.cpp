#include "rumor/gossip/method.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <limits>
#include <type_traits>

#include "common.hpp"
#include "methods.hpp"
#include "rumor/common/error.hpp"
#include "rumor/common/strings.hpp"

namespace rumor::gossip {

LocalWork::Stats Method::local(std::int64_t round, LocalWork& work) {
  LocalWork::Stats sum;
  if (!work.trains()) return sum;
  for (int h = 0; h < ctx_.local_steps; ++h) {
    const auto s = work.gradient();
    work.step(model_);
    sum.loss += s.loss;
    sum.accuracy += s.accuracy;
  }
  sum.loss /= ctx_.local_steps;
  sum.accuracy /= ctx_.local_steps;
  return sum;
}

Refusal Method::check(const net::Message& m) {
  if (auto r = check_header(m)) return r;
  return check_payload(m);
}

Refusal Method::check_header(const net::Message& m) const {
  if (m.kind != net::MessageKind::kGossip || m.link != net::LinkKind::kData)
    return {"unexpected kind", net::to_string(m.kind) + " where a gossip message was expected"};
  if (m.codec != ctx_.codec_id)
    return {"codec tag mismatch", "codec tag " + std::to_string(m.codec) + ", this run's codec " +
                                      ctx_.codec->name() + " has tag " +
                                      std::to_string(ctx_.codec_id) + "; same config everywhere?"};
  for (double s : m.scalars)
    if (!std::isfinite(s))
      return {"non-finite values", "a side value (push-sum weight) is not finite"};
  // Its absorb() would read the empty payload of the notice as a model.
  if (m.not_triggered && !sends_not_triggered())
    return {"unexpected not-triggered notice",
            "a 'not triggered' notice, which method " + name() + " never sends"};
  return {};
}

namespace {
// Whether the receiving transport's peak of the payload's words (Payload::fp32_peak) already
// shows the raw values within [-bound, bound]: when they lie on its word grid (counted back
// from the payload's end, where a codec's values are) their magnitudes are at most the peak,
// and non-negative floats order like their bits (NaN above all). When it does not, the values
// are read to say which one is wrong.
bool within_peak(const net::Payload& p, codec::ByteView raw, double bound) {
  const auto peak = p.fp32_peak();
  const auto at = reinterpret_cast<std::uintptr_t>(raw.data());
  const auto base = reinterpret_cast<std::uintptr_t>(p.data());
  if (!peak || !(bound >= 0) || at < base || (at - base) % 4 != p.size() % 4 ||
      at - base + raw.size() > p.size())
    return false;
  const float limit =
      static_cast<float>(std::min<double>(bound, std::numeric_limits<float>::max()));
  return *peak <= std::bit_cast<std::uint32_t>(limit);
}
}  // namespace

Refusal Method::check_payload(const net::Message& m, std::size_t dim) {
  if (m.not_triggered && m.payload.empty()) return {};
  if (dim == 0) dim = model_.size();
  if (!check_decoder_ || check_dim_ != dim) {
    check_decoder_ = ctx_.codec->make_decoder(dim);
    check_dim_ = dim;
  }
  // A payload of the wrong length is named as such before the codec reads into it.
  const std::size_t want = ctx_.codec->max_encoded_size(dim);
  if (ctx_.codec->fixed_size() ? m.payload.size() != want : m.payload.size() > want)
    return {"wrong size", std::to_string(m.payload.size()) + " bytes of payload, " +
                              (ctx_.codec->fixed_size() ? "expected " : "at most ") +
                              std::to_string(want) + " for " + std::to_string(dim) + " values"};
  // Raw fp32 values are checked where they lie; other codecs' are decoded first.
  codec::ByteView raw;
  std::span<float> values;
  try {
    const auto cc = codec_ctx(ctx_, m.round, m.sender);
    raw = check_decoder_->raw_values(m.payload.bytes(), cc);
    if (raw.empty()) {
      values = scratch(0, dim);
      check_decoder_->decode(m.payload.bytes(), cc, values);
    }
  } catch (const std::exception& e) {
    return {"codec error", e.what()};
  }
  if (raw.empty()) return check_values(values);
  if (within_peak(m.payload, raw, ctx_.max_abs_value)) return {};
  return check_raw_values(raw);
}

namespace {
// n values of type T at p (any alignment: a float vector, or raw fp32 payload bytes).
template <typename T>
struct Values {
  const std::uint8_t* p;
  std::size_t n;
  template <typename U = T>
  U bits(std::size_t k) const {
    U v;
    std::memcpy(&v, p + sizeof(T) * k, sizeof(T));
    return v;
  }
  T operator[](std::size_t k) const { return bits<T>(k); }
};
template <typename T>
Values<T> values_of(std::span<const T> v) {
  return {reinterpret_cast<const std::uint8_t*>(v.data()), v.size()};
}

// True when every value is within [-bound, bound] (NaN is not): every received value goes
// through here, so it is a mask, a subtraction and an OR per value. Non-negative floats
// order like their bits as signed integers, and NaN's lie above every finite bound: the
// magnitude's bits m and the bound's b are both in [0, max], so b - m cannot overflow and is
// negative exactly when the value is out of range; OR-ing the differences keeps a sign bit
// set by any of them. (A compare-and-OR form was vectorised with shuffles and spills.)
template <typename T>
bool all_within(Values<T> v, T bound) {
  using S = std::conditional_t<sizeof(T) == 4, std::int32_t, std::int64_t>;
  if (!(bound >= 0)) return v.n == 0;
  constexpr S kMagnitude = std::numeric_limits<S>::max();
  const S limit = std::bit_cast<S>(bound);
  S below = 0;
  for (std::size_t k = 0; k < v.n; ++k) below |= limit - (v.template bits<S>(k) & kMagnitude);
  return below >= 0;
}

template <typename T>
Refusal check_finite(Values<T> v, double bound) {
  if (all_within(v, static_cast<T>(std::min<double>(bound, std::numeric_limits<T>::max()))))
    return {};
  for (std::size_t k = 0; k < v.n; ++k) {  // say which value, and why
    const double x = static_cast<double>(v[k]);
    if (!std::isfinite(x))
      return {"non-finite values", "value " + std::to_string(k) + " is " + std::to_string(x)};
    if (std::abs(x) > bound)
      return {"value out of range", "value " + std::to_string(k) + " is " + std::to_string(x) +
                                        ", above network.max_abs_value " + std::to_string(bound)};
  }
  return {};
}
}  // namespace

Refusal Method::check_values(std::span<const float> v) const {
  return check_finite(values_of(v), ctx_.max_abs_value);
}

Refusal Method::check_raw_values(codec::ByteView raw) const {
  return check_finite(Values<float>{raw.data(), raw.size() / 4}, ctx_.max_abs_value);
}

Refusal Method::check_values(std::span<const double> v, double bound) const {
  return check_finite(values_of(v), bound);
}

void Method::set_peer_down(int peer, std::int64_t) {
  if (peer < 0) return;
  if (down_.size() <= static_cast<std::size_t>(peer)) down_.resize(peer + 1, 0);
  down_[peer] = 1;
}

void Method::set_peer_up(int peer, std::int64_t round) {
  if (peer >= 0 && static_cast<std::size_t>(peer) < down_.size()) down_[peer] = 0;
  if (peer >= 0) up_since_[peer] = round;
}

void Method::use_live_mixing(std::vector<int> initial) {
  initial_degree_ = std::move(initial);
}

void Method::note_degree(int node, std::int64_t from, int degree) {
  degrees_[node][from] = degree;
}

int Method::live_degree() const {
  return static_cast<int>(live(ctx_.topology->peers(ctx_.self)).size());
}

double Method::mixing_weight(int to, int from, std::int64_t round) const {
  if (!live_mixing()) return ctx_.topology->weight(to, from, round);
  const int other = to == ctx_.self ? from : to;
  if (auto it = up_since_.find(other); it != up_since_.end() && it->second >= round) return 0.0;
  auto degree = [&](int node) {
    if (auto it = degrees_.find(node); it != degrees_.end()) {
      auto at = it->second.upper_bound(round);
      if (at != it->second.begin()) return std::prev(at)->second;
    }
    return initial_degree_.at(static_cast<std::size_t>(node));
  };
  return 1.0 / (1.0 + std::max(degree(to), degree(from)));
}

float Method::kept_mixing_weight(std::int64_t round,
                                 const std::vector<net::Message>& received) const {
  double handed_in = 0;
  for (const auto& m : received) handed_in += mixing_weight(m.sender, ctx_.self, round);
  return static_cast<float>(1.0 - handed_in);
}

bool Method::peer_is_down(int peer) const {
  return peer >= 0 && static_cast<std::size_t>(peer) < down_.size() && down_[peer] != 0;
}

std::vector<int> Method::live(std::vector<int> peers) const {
  std::erase_if(peers, [this](int j) { return peer_is_down(j); });
  return peers;
}

std::vector<Outgoing> Method::leave(std::int64_t round) {
  net::Message m;
  m.kind = net::MessageKind::kBye;
  m.round = round;
  std::vector<Outgoing> out;
  for (int j : live(ctx_.topology->peers(ctx_.self))) out.push_back({j, m});
  return out;
}

void Method::accept_leave(const net::Message& bye, std::int64_t round) {
  if (!bye.payload.empty() || !bye.scalars.empty())
    throw ProtocolError("node " + std::to_string(ctx_.self) + ": the goodbye of peer " +
                        std::to_string(bye.sender) + " carries " +
                        std::to_string(bye.payload.size()) + " bytes and " +
                        std::to_string(bye.scalars.size()) + " scalars; method " + name() +
                        " hands over nothing (do all nodes use the same config?)");
  set_peer_down(bye.sender, round);
}

net::Message Method::rejoin_request(int, bool from_checkpoint) {
  net::Message m;
  m.kind = net::MessageKind::kRejoinRequest;
  m.round = -1;
  m.scalars = {from_checkpoint ? 1.0 : 0.0};
  return m;
}

// Default hand-over: the model vector as raw fp32 (nothing when the peer has its own).
net::Message Method::rejoin_offer(const net::Message& request, std::int64_t round) {
  set_peer_up(request.sender, round);
  net::Message m;
  m.kind = net::MessageKind::kRejoinOffer;
  m.round = round;
  if (wants_model(request)) {
    auto copy = std::make_shared<std::vector<float>>(model_.begin(), model_.end());
    m.payload = net::Payload::share(std::shared_ptr<const std::vector<float>>(std::move(copy)));
  }
  return m;
}

void Method::refuse_offer_values(const Refusal& r, const net::Message& offer) const {
  if (r)
    throw ProtocolError("rejoin: node " + std::to_string(ctx_.self) +
                        " refuses the offer of peer " + std::to_string(offer.sender) + ": " +
                        r.reason + " (" + r.detail + ")");
}

// Offers are averaged: a restarted peer between two neighbours starts from their mean.
void Method::rejoin_accept(const net::Message& offer) {
  if (offer.payload.empty()) return;
  const auto v = offer.payload.to_floats();
  if (v.size() != model_.size())
    throw ProtocolError("rejoin: node " + std::to_string(ctx_.self) + " got a model of " +
                        std::to_string(v.size()) + " values from peer " +
                        std::to_string(offer.sender) + ", expected " +
                        std::to_string(model_.size()) + "; do all nodes use the same config?");
  refuse_offer_values(check_values(v), offer);
  const float k = static_cast<float>(offers_accepted_);
  for (std::size_t i = 0; i < v.size(); ++i) model_[i] = (k * model_[i] + v[i]) / (k + 1.0f);
  ++offers_accepted_;
}

// The registry: one line per method, in documentation order. Each entry is the function
// MethodInfo <name>_method() in <name>.cpp (explicit: static self-registration would be
// dropped by the linker from a static library).
// clang-format off
#define RUMOR_METHODS(X) X(dpsgd) X(sgp) X(choco) X(squarm) X(qgm) X(allreduce) X(local) X(qdata) X(gt) X(diloco) X(adpsgd)
// clang-format on
#define RUMOR_DECLARE_METHOD(name) MethodInfo name##_method();
RUMOR_METHODS(RUMOR_DECLARE_METHOD)

const std::vector<MethodInfo>& methods() {
#define RUMOR_METHOD_ENTRY(name) name##_method(),
  static const std::vector<MethodInfo> m = {RUMOR_METHODS(RUMOR_METHOD_ENTRY)};
  return m;
}

const nlohmann::json& option_value(const MethodInfo& method, const nlohmann::json& params,
                                   const std::string& key) {
  if (params.contains(key)) return params.at(key);
  for (const auto& o : method.options)
    if (o.path == "method." + key) return o.default_value;
  throw Error("method " + method.name + " reads option method." + key +
              ", which its registry entry does not declare");
}

const nlohmann::json& Method::option(const std::string& key) const {
  if (!ctx_.info) throw Error("method created without its registry entry (use make_method)");
  return option_value(*ctx_.info, ctx_.params, key);
}

const MethodInfo& method_info(const std::string& name) {
  std::vector<std::string> names;
  for (const auto& info : methods()) {
    if (info.name == name) return info;
    names.push_back(info.name);
  }
  throw ConfigError("unknown method \"" + name + "\"; did you mean \"" + nearest(name, names) +
                    "\"? valid: " + join(names));
}

bool takes_aggregation(const MethodInfo& method) {
  return std::any_of(method.options.begin(), method.options.end(),
                     [](const Option& o) { return o.path == "method.aggregation"; });
}

namespace {
// method.aggregation other than mean on a method that does not declare it: refused with
// the method's own reason.
void check_aggregation(const MethodInfo& info, const nlohmann::json& params) {
  const auto it = params.find("aggregation");
  if (takes_aggregation(info) || it == params.end() || *it == "mean") return;
  const std::string why = info.no_aggregation.empty()
                              ? "it does not average its neighbours' models every round"
                              : info.no_aggregation;
  throw ConfigError("method " + info.name + " cannot use method.aggregation " + it->dump() + ": " +
                    why +
                    "; robust aggregation is an option of dpsgd and qgm (or set "
                    "method.aggregation to mean)");
}

// What the method needs of the graph against the topology. Under peer sampling a method that
// averages what arrived (needs.peer_sampling) has neither need.
void check_graph(const std::string& name, const Requirements& req, const Topology& t) {
  if (t.schedule() == Schedule::kPeerSampling) {
    if (req.peer_sampling || !(req.undirected || req.static_schedule)) return;
    throw ConfigError("method " + name + " cannot run on topology '" + t.name() +
                      "' (schedule peer-sampling: random directed peers each round): it needs " +
                      (req.undirected ? "an undirected graph" : "a static graph") +
                      "; use sgp (push-sum) or dpsgd (uniform average of what arrived)");
  }
  if (req.undirected && t.directed()) {
    throw ConfigError("method " + name +
                      " needs an undirected graph (symmetric mixing), but "
                      "topology '" +
                      t.name() + "' is directed; use sgp for directed graphs");
  }
  if (req.static_schedule && t.time_varying()) {
    throw ConfigError("method " + name + " needs a static schedule, but topology '" + t.name() +
                      "' is time-varying (" + to_string(t.schedule()) +
                      "); use sgp, or a static topology");
  }
}
}  // namespace

std::unique_ptr<Method> make_method(const std::string& name, MethodContext ctx) {
  const MethodInfo& info = method_info(name);
  check_aggregation(info, ctx.params);
  const Topology& t = *ctx.topology;
  const auto& req = info.needs;
  check_graph(name, req, t);
  // method.allow_noncontractive: run anyway (e.g. Count-Sketch with error feedback, whose
  // guarantee is empirical); the experiment then shows whether it works.
  if (req.contractive_codec && !ctx.codec->contractive() &&
      !option_value(info, ctx.params, "allow_noncontractive").get<bool>()) {
    throw ConfigError("method " + name + " needs a contractive codec, but '" + ctx.codec->name() +
                      "' is not; use topk:R, sign, qsgd:B:biased or a chain such as "
                      "topk:0.01|sign (or set method.allow_noncontractive to try it anyway)");
  }
  ctx.info = &info;
  return info.make(std::move(ctx));
}

}  // namespace rumor::gossip
