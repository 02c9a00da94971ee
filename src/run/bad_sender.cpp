#include "bad_sender.hpp"

#include <cstring>
#include <limits>

#include "rumor/common/error.hpp"
#include "rumor/common/rng.hpp"

namespace rumor::run {
namespace {

constexpr struct {
  BadSender::Corruption how;
  const char* name;
} kNames[] = {
    {BadSender::Corruption::kNan, "nan"},           {BadSender::Corruption::kHuge, "huge"},
    {BadSender::Corruption::kTruncate, "truncate"}, {BadSender::Corruption::kExtend, "extend"},
    {BadSender::Corruption::kGarbage, "garbage"},   {BadSender::Corruption::kCodecTag, "codec_tag"},
    {BadSender::Corruption::kWeight, "weight"}};

// Every whole 4-byte word of the payload set to `bits` (fp32 NaN or 1e30; read as fp64,
// two such words are out of range too).
net::Payload fill_words(const net::Payload& p, std::uint32_t bits) {
  std::uint8_t* out = nullptr;
  auto q = net::Payload::allocate(p.size(), out);
  std::memcpy(out, p.data(), p.size());
  for (std::size_t k = 0; k + 4 <= p.size(); k += 4) std::memcpy(out + k, &bits, 4);
  return q;
}

}  // namespace

BadSender::Corruption BadSender::parse(const std::string& name, const std::string& where) {
  std::string valid;
  for (const auto& n : kNames) {
    if (name == n.name) return n.how;
    valid += std::string(valid.empty() ? "" : ", ") + n.name;
  }
  throw ConfigError(where + ": faults.bad_payload \"" + name + "\" is not one of " + valid);
}

BadSender::BadSender(gossip::Exchange& inner, Corruption how, std::int64_t first, std::int64_t last,
                     std::uint64_t seed)
    : inner_(inner), how_(how), first_(first), last_(last), seed_(seed) {}

std::vector<gossip::Outgoing> BadSender::produce(std::int64_t round, int stage) {
  auto out = inner_.produce(round, stage);
  if (round < first_ || (last_ >= 0 && round > last_)) return out;
  for (auto& o : out)
    if (o.message.kind == net::MessageKind::kGossip) corrupt(o.message, round, o.to);
  return out;
}

void BadSender::corrupt(net::Message& m, std::int64_t round, int to) const {
  const auto& p = m.payload;
  switch (how_) {
    case Corruption::kNan:
      m.payload = fill_words(p, 0x7fc00000u);
      break;
    case Corruption::kHuge:
      m.payload = fill_words(p, 0x7149f2cau);  // 1e30f
      break;
    case Corruption::kTruncate:
      m.payload = net::Payload::copy_of(p.bytes().first(p.size() / 2));
      break;
    case Corruption::kExtend: {
      std::vector<std::uint8_t> b(p.bytes().begin(), p.bytes().end());
      b.resize(b.size() + 16, 0xab);
      m.payload = net::Payload::take(std::move(b));
      break;
    }
    case Corruption::kGarbage: {
      Rng rng = Rng::derive(seed_, 0xbad, static_cast<std::uint64_t>(round),
                            static_cast<std::uint64_t>(to));
      std::vector<std::uint8_t> b(p.size());
      for (auto& x : b) x = static_cast<std::uint8_t>(rng.below(256));
      m.payload = net::Payload::take(std::move(b));
      break;
    }
    case Corruption::kCodecTag:
      m.codec ^= 0x5a5a5a5au;
      break;
    case Corruption::kWeight:
      if (m.scalars.empty()) m.scalars.push_back(0);
      m.scalars[0] = std::numeric_limits<double>::quiet_NaN();
      break;
  }
}

}  // namespace rumor::run
