#include "rumor/gossip/ring_allreduce.hpp"

#include <cmath>
#include <cstring>
#include <map>

#include "rumor/common/error.hpp"
#include "rumor/gossip/driver.hpp"

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

namespace {

std::size_t chunk_begin(std::size_t d, int n, int c) {
  return d * static_cast<std::size_t>(c) / static_cast<std::size_t>(n);
}

// Protobuf varint fields: the header's size depends on a stage only through its byte count
// (0 is left out).
int varint_class(std::uint32_t v) {
  int bytes = 0;
  for (; v != 0; v >>= 7) ++bytes;
  return bytes;
}

}  // namespace

void RingAllreduce::sum_in_place(const std::vector<std::span<float>>& data, ThreadPool& pool) {
  const int n = static_cast<int>(data.size());
  if (n < 2) return;
  const std::size_t d = data[0].size();
  for (const auto& v : data)
    if (v.size() != d) throw Error("all-reduce: vectors of different sizes");
  pool.parallel_for(static_cast<std::size_t>(n), [&](std::size_t ci) {
    const int c = static_cast<int>(ci);
    const std::size_t lo = chunk_begin(d, n, c), hi = chunk_begin(d, n, c + 1);
    if (lo == hi) return;
    // Reduce-scatter: node c + t adds what node c + t - 1 holds to its own part.
    for (int t = 1; t < n; ++t) {
      float* to = data[static_cast<std::size_t>((c + t) % n)].data();
      const float* from = data[static_cast<std::size_t>((c + t - 1) % n)].data();
      for (std::size_t k = lo; k < hi; ++k) to[k] += from[k];
    }
    // All-gather: node c - 1 holds the sum; every other node gets a copy.
    const int last = (c + n - 1) % n;
    const float* sum = data[static_cast<std::size_t>(last)].data();
    for (int j = 0; j < n; ++j)
      if (j != last)
        std::memcpy(data[static_cast<std::size_t>(j)].data() + lo, sum + lo,
                    (hi - lo) * sizeof(float));
  });
}

void RingAllreduce::count_traffic(int self, int n, std::size_t d, std::int64_t round,
                                  net::MessageKind kind, net::LinkKind link, Traffic& traffic) {
  if (n < 2) return;
  net::Message m;
  m.kind = kind;
  m.round = round;
  m.link = link;
  // Wire sizes by (stage varint bytes, payload bytes): a handful of distinct values.
  std::map<std::pair<int, std::size_t>, std::uint64_t> sizes;
  auto size_of = [&](int stage, int c) {
    const std::size_t bytes = (chunk_begin(d, n, c + 1) - chunk_begin(d, n, c)) * sizeof(float);
    auto [it, fresh] = sizes.try_emplace({varint_class(static_cast<std::uint32_t>(stage)), bytes});
    if (fresh) {
      m.stage = static_cast<std::uint32_t>(stage);
      m.payload = net::Payload(nullptr, nullptr, bytes);  // only its size is read
      it->second = net::wire_size(m);
    }
    return it->second;
  };
  const int stages = 2 * (n - 1);
  auto mod = [n](int v) { return ((v % n) + n) % n; };
  for (int stage = 0; stage < stages; ++stage) {
    const int s = stage < n - 1 ? stage : stage - (n - 1);
    const int sent = stage < n - 1 ? mod(self - s) : mod(self + 1 - s);
    const int recv = stage < n - 1 ? mod(self - s - 1) : mod(self - s);
    traffic.bytes_sent += size_of(stage, sent);
    traffic.bytes_recv += size_of(stage, recv);
  }
  traffic.msgs_sent += static_cast<std::uint64_t>(stages);
  traffic.msgs_recv += static_cast<std::uint64_t>(stages);
}

}  // namespace rumor::gossip
