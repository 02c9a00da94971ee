#include "rumor/gossip/ring_allreduce.hpp"

#include <cmath>
#include <cstring>

#include "rumor/common/error.hpp"

namespace rumor::gossip {

RingAllreduce::RingAllreduce(int self, int n, net::MessageKind kind, net::LinkKind link)
    : self_(self), n_(n), kind_(kind), link_(link) {}

void RingAllreduce::begin(std::span<float> data) {
  data_ = data;
  stage_done_ = 0;
}

std::span<float> RingAllreduce::chunk(int c) const {
  const std::size_t d = data_.size();
  const std::size_t lo = d * static_cast<std::size_t>(c) / n_;
  const std::size_t hi = d * static_cast<std::size_t>(c + 1) / n_;
  return data_.subspan(lo, hi - lo);
}

// Reduce-scatter stage s: send chunk (self - s) to the right, add chunk (self - s - 1) from
// the left. All-gather stage s: send chunk (self + 1 - s), overwrite chunk (self - s).
std::vector<Outgoing> RingAllreduce::produce(std::int64_t round, int stage) {
  const int s = stage < n_ - 1 ? stage : stage - (n_ - 1);
  const int c = stage < n_ - 1 ? ((self_ - s) % n_ + n_) % n_ : ((self_ + 1 - s) % n_ + n_) % n_;
  const auto part = chunk(c);
  net::Message m;
  m.kind = kind_;
  m.stage = static_cast<std::uint32_t>(stage);
  m.round = round;
  m.link = link_;
  m.payload = net::Payload::copy_of(
      {reinterpret_cast<const std::uint8_t*>(part.data()), part.size_bytes()});
  return {{(self_ + 1) % n_, std::move(m)}};
}

std::vector<Expected> RingAllreduce::expect(std::int64_t round, int stage) const {
  return {{(self_ + n_ - 1) % n_, kind_, link_, round, static_cast<std::uint32_t>(stage), false}};
}

Refusal RingAllreduce::check(const net::Message& m) {
  if (m.kind != kind_ || m.link != link_ || m.stage >= static_cast<std::uint32_t>(stages(0)))
    return {"unexpected kind", net::to_string(m.kind) + " stage " + std::to_string(m.stage) +
                                   " where " + net::to_string(kind_) + " was expected"};
  const int stage = static_cast<int>(m.stage);
  const int s = stage < n_ - 1 ? stage : stage - (n_ - 1);
  const int c = stage < n_ - 1 ? ((self_ - s - 1) % n_ + n_) % n_ : ((self_ - s) % n_ + n_) % n_;
  const auto part = chunk(c);
  if (m.payload.size() != part.size_bytes())
    return {"wrong size", std::to_string(m.payload.size()) + " bytes for a chunk of " +
                              std::to_string(part.size_bytes())};
  const float* in = reinterpret_cast<const float*>(m.payload.data());
  for (std::size_t k = 0; k < part.size(); ++k)
    if (!std::isfinite(in[k])) return {"non-finite values", "a chunk holds non-finite values"};
  return {};
}

void RingAllreduce::absorb(std::int64_t round, int stage, std::vector<net::Message>& received) {
  if (received.size() != 1) throw ProtocolError("all-reduce: expected one message per stage");
  const int s = stage < n_ - 1 ? stage : stage - (n_ - 1);
  const int c = stage < n_ - 1 ? ((self_ - s - 1) % n_ + n_) % n_ : ((self_ - s) % n_ + n_) % n_;
  const auto part = chunk(c);
  const auto& p = received[0].payload;
  if (p.size() != part.size_bytes()) {
    throw ProtocolError(
        "all-reduce: node " + std::to_string(self_) + " got " + std::to_string(p.size()) +
        " bytes from peer " + std::to_string(received[0].sender) + " for a chunk of " +
        std::to_string(part.size_bytes()) + " bytes; do all nodes use the same config?");
  }
  if (stage < n_ - 1) {
    const float* in = reinterpret_cast<const float*>(p.data());
    for (std::size_t k = 0; k < part.size(); ++k) part[k] += in[k];
  } else if (!part.empty()) {
    std::memcpy(part.data(), p.data(), part.size_bytes());
  }
  stage_done_ = stage + 1;
}

}  // namespace rumor::gossip
