#include "rumor/run/byzantine.hpp"

#include <algorithm>
#include <cmath>

#include "rumor/common/error.hpp"
#include "rumor/common/rng.hpp"

namespace rumor::run {
namespace {

constexpr struct {
  Attack attack;
  const char* name;
} kAttacks[] = {{Attack::kSignFlip, "sign-flip"},
                {Attack::kGaussian, "gaussian"},
                {Attack::kAlie, "alie"},
                {Attack::kZero, "zero"}};

Attack parse_attack(const nlohmann::json& v, const std::string& where) {
  std::string valid;
  for (const auto& a : kAttacks) {
    if (v.is_string() && v.get<std::string>() == a.name) return a.attack;
    valid += std::string(valid.empty() ? "" : ", ") + a.name;
  }
  throw ConfigError(where + ": faults.byzantine.attack " + v.dump() + " is not one of " + valid);
}

std::vector<int> parse_nodes(const nlohmann::json& v, int nodes, const std::string& where) {
  if (!v.is_array() || v.empty())
    throw ConfigError(where + ": faults.byzantine.nodes must be a non-empty list of node ids");
  std::vector<int> out;
  for (const auto& x : v) {
    if (!x.is_number_integer() || x.get<std::int64_t>() < 0 || x.get<std::int64_t>() >= nodes)
      throw ConfigError(where + ": faults.byzantine.nodes holds " + x.dump() +
                        ", not a node id (0.." + std::to_string(nodes - 1) + ")");
    if (std::find(out.begin(), out.end(), x.get<int>()) != out.end())
      throw ConfigError(where + ": faults.byzantine.nodes lists node " + x.dump() + " twice");
    out.push_back(x.get<int>());
  }
  if (static_cast<int>(out.size()) >= nodes)
    throw ConfigError(where + ": faults.byzantine.nodes leaves no honest node");
  return out;
}

double finite_number(const nlohmann::json& v, const std::string& key, double min,
                     const std::string& where) {
  if (!v.is_number() || !std::isfinite(v.get<double>()) || v.get<double>() < min)
    throw ConfigError(where + ": faults.byzantine." + key +
                      " must be a finite number >= " + std::to_string(min) + ", got " + v.dump());
  return v.get<double>();
}

// Standard normal draws (Box-Muller on the stream's uniforms: the same on every platform).
double normal(Rng& rng) {
  const double u1 = 1.0 - rng.uniform();  // (0, 1]
  const double u2 = rng.uniform();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}

void alie(double z, std::span<const float> honest, const std::vector<std::vector<float>>& observed,
          std::span<float> out) {
  if (observed.empty()) {
    std::copy(honest.begin(), honest.end(), out.begin());
    return;
  }
  const double n = static_cast<double>(observed.size());
  for (std::size_t k = 0; k < out.size(); ++k) {
    double s = 0, s2 = 0;
    for (const auto& v : observed) {
      s += v[k];
      s2 += static_cast<double>(v[k]) * v[k];
    }
    const double mean = s / n;
    const double sd = std::sqrt(std::max(0.0, s2 / n - mean * mean));
    out[k] = static_cast<float>(mean + z * sd);
  }
}

}  // namespace

bool ByzantineOptions::contains(int id) const {
  return std::find(nodes.begin(), nodes.end(), id) != nodes.end();
}

std::optional<ByzantineOptions> ByzantineOptions::parse(const nlohmann::json& v, int nodes,
                                                        const gossip::MethodInfo& method,
                                                        const std::string& where) {
  if (v.is_null()) return std::nullopt;
  if (!v.is_object())
    throw ConfigError(where +
                      ": faults.byzantine must be an object such as {\"nodes\": [3, 9], "
                      "\"attack\": \"sign-flip\"}");
  for (const auto& [k, x] : v.items())
    if (k != "nodes" && k != "attack" && k != "sigma" && k != "z")
      throw ConfigError(where + ": unknown key faults.byzantine." + k +
                        "; valid: nodes, attack, sigma, z");
  if (!gossip::takes_aggregation(method))
    throw ConfigError(where + ": faults.byzantine attacks are defined on models, but method " +
                      method.name + " does not send its model to be averaged; use dpsgd or qgm");
  ByzantineOptions o;
  o.nodes = parse_nodes(v.value("nodes", nlohmann::json()), nodes, where);
  if (!v.contains("attack"))
    throw ConfigError(where +
                      ": faults.byzantine needs \"attack\" (sign-flip, gaussian, alie, "
                      "zero)");
  o.attack = parse_attack(v["attack"], where);
  if (v.contains("sigma")) o.sigma = finite_number(v["sigma"], "sigma", 0, where);
  if (v.contains("z")) o.z = finite_number(v["z"], "z", -1e6, where);
  return o;
}

std::string to_string(Attack a) {
  for (const auto& x : kAttacks)
    if (x.attack == a) return x.name;
  return "?";
}

void craft_attack(const ByzantineOptions& o, std::span<const float> honest,
                  const std::vector<std::vector<float>>& observed, std::uint64_t noise_seed,
                  std::span<float> out) {
  switch (o.attack) {
    case Attack::kSignFlip:
      for (std::size_t k = 0; k < out.size(); ++k) out[k] = -honest[k];
      break;
    case Attack::kGaussian: {
      Rng rng(noise_seed);
      for (std::size_t k = 0; k < out.size(); ++k)
        out[k] = static_cast<float>(honest[k] + o.sigma * normal(rng));
      break;
    }
    case Attack::kAlie:
      alie(o.z, honest, observed, out);
      break;
    case Attack::kZero:
      std::fill(out.begin(), out.end(), 0.0f);
      break;
  }
}

ByzantineSender::ByzantineSender(gossip::Exchange& inner, ByzantineOptions options, int self,
                                 std::shared_ptr<const codec::Codec> codec, std::size_t dim,
                                 std::uint64_t seed)
    : inner_(inner),
      options_(std::move(options)),
      self_(self),
      codec_(std::move(codec)),
      seed_(seed),
      encoder_(codec_->make_encoder(dim)),
      decoder_(codec_->make_decoder(dim)),
      honest_(dim),
      attack_(dim) {}

std::vector<gossip::Outgoing> ByzantineSender::produce(std::int64_t round, int stage) {
  auto out = inner_.produce(round, stage);
  const codec::CodecContext ctx{seed_, static_cast<std::uint64_t>(round),
                                static_cast<std::uint64_t>(self_)};
  net::Payload attack;
  for (auto& o : out) {
    auto& m = o.message;
    if (m.kind != net::MessageKind::kGossip || m.payload.empty()) continue;
    if (attack.empty()) {  // one attack vector per round, sent to every neighbour
      decoder_->decode(m.payload.bytes(), ctx, honest_);
      const auto noise = Rng::derive(seed_, 0xb12, static_cast<std::uint64_t>(self_),
                                     static_cast<std::uint64_t>(round))();
      craft_attack(options_, honest_, observed_, noise, attack_);
      auto bytes = std::make_shared<codec::Bytes>();
      encoder_->encode(attack_, ctx, *bytes);
      attack = net::Payload::share(std::shared_ptr<const codec::Bytes>(std::move(bytes)));
    }
    m.payload = attack;
  }
  return out;
}

void ByzantineSender::absorb(std::int64_t round, int stage, std::vector<net::Message>& received) {
  if (options_.attack == Attack::kAlie) {
    // In sender order, so that the mean and spread do not depend on arrival order.
    std::stable_sort(
        received.begin(), received.end(),
        [](const net::Message& a, const net::Message& b) { return a.sender < b.sender; });
    std::size_t n = 0;
    for (const auto& m : received) {
      if (m.kind != net::MessageKind::kGossip || m.payload.empty() || options_.contains(m.sender))
        continue;
      if (observed_.size() <= n) observed_.emplace_back(honest_.size());
      decoder_->decode(
          m.payload.bytes(),
          {seed_, static_cast<std::uint64_t>(m.round), static_cast<std::uint64_t>(m.sender)},
          observed_[n++]);
    }
    if (n > 0) observed_.resize(n);  // keep the last round that brought anything
  }
  inner_.absorb(round, stage, received);
}

}  // namespace rumor::run
