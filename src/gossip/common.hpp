#pragma once
// Helpers shared by the consensus methods (internal).
#include <algorithm>
#include <memory>
#include <span>
#include <vector>

#include "rumor/codec/codec.hpp"
#include "rumor/gossip/method.hpp"

namespace rumor::gossip {

// A per-thread scratch vector of n floats (slot: which of a few), for values that live within
// one call: in-process, thousands of peers share a few threads, so per-peer copies of such
// buffers would cost peers x model floats for nothing. Contents are undefined on entry.
inline std::span<float> scratch(std::size_t slot, std::size_t n) {
  thread_local std::vector<float> buffers[4];
  auto& b = buffers[slot];
  if (b.size() < n) b.resize(n);
  return {b.data(), n};
}

// A checkpoint buffer backed by a vector the method owns.
inline Method::StateBuffer vector_state(const std::string& name, std::vector<float>& v) {
  return {name, v, [&v](std::span<const float> s) { v.assign(s.begin(), s.end()); }};
}

inline codec::CodecContext codec_ctx(const MethodContext& ctx, std::int64_t round, int sender) {
  return {ctx.seed, static_cast<std::uint64_t>(round), static_cast<std::uint64_t>(sender)};
}

// Encodes once per round into a buffer that is recycled when no transport holds it any
// more, so steady-state rounds allocate nothing.
class PayloadEncoder {
 public:
  PayloadEncoder() = default;
  void reset(const codec::Codec& codec, std::size_t d) {
    encoder_ = codec.make_encoder(d);
    buffer_.reset();
  }
  net::Payload encode(std::span<const float> x, const codec::CodecContext& ctx,
                      std::span<float> sent = {}) {
    if (!buffer_ || buffer_.use_count() > 1) buffer_ = std::make_shared<codec::Bytes>();
    encoder_->encode(x, ctx, *buffer_, sent);
    return net::Payload::share(std::shared_ptr<const codec::Bytes>(buffer_));
  }
  codec::Encoder& encoder() { return *encoder_; }
  // Error-feedback memory as checkpoint state (nothing when the codec keeps none).
  void add_state(std::vector<Method::StateBuffer>& out, const std::string& name) {
    if (encoder_ && !encoder_->memory().empty())
      out.push_back({name, encoder_->memory(),
                     [this](std::span<const float> m) { encoder_->set_memory(m); }});
  }

 private:
  std::unique_ptr<codec::Encoder> encoder_;
  std::shared_ptr<codec::Bytes> buffer_;
};

inline net::Message gossip_message(const MethodContext& ctx, std::int64_t round,
                                   net::Payload payload, std::vector<double> scalars = {}) {
  net::Message m;
  m.kind = net::MessageKind::kGossip;
  m.round = round;
  m.codec = ctx.codec_id;
  m.payload = std::move(payload);
  m.scalars = std::move(scalars);
  return m;
}

inline void sort_by_sender(std::vector<net::Message>& msgs) {
  std::stable_sort(msgs.begin(), msgs.end(), [](const net::Message& a, const net::Message& b) {
    return a.sender != b.sender ? a.sender < b.sender : a.round < b.round;
  });
}

// The weight a node keeps of its own vector in `round`: one minus the weights of the
// in-neighbours it heard from (a neighbour that sent nothing leaves its weight here).
inline float kept_weight(const MethodContext& ctx, std::int64_t round,
                         const std::vector<net::Message>& received) {
  double handed_in = 0;
  for (const auto& m : received) handed_in += ctx.topology->weight(m.sender, ctx.self, round);
  return static_cast<float>(1.0 - handed_in);
}

// One Expected per in-neighbour of `round`.
inline std::vector<Expected> expect_from_in_neighbors(const MethodContext& ctx,
                                                      std::int64_t round) {
  std::vector<Expected> out;
  for (int j : ctx.topology->in_neighbors(ctx.self, round))
    out.push_back({j, net::MessageKind::kGossip, net::LinkKind::kData, round});
  return out;
}

inline std::vector<Outgoing> to_each(const std::vector<int>& peers, const net::Message& m) {
  std::vector<Outgoing> out;
  out.reserve(peers.size());
  for (int j : peers) out.push_back({j, m});
  return out;
}

}  // namespace rumor::gossip
