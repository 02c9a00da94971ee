#pragma once
// Exact sum over all nodes with a ring all-reduce (reduce-scatter, then all-gather) on the
// control ring (i-1 -> i -> i+1). 2 (n - 1) stages; each node sends about 2 d (n-1)/n floats.
// Used by the `allreduce` method and for exact averages (consensus distance, final model).
#include <cstdint>
#include <span>
#include <vector>

#include "rumor/common/thread_pool.hpp"
#include "rumor/gossip/method.hpp"

namespace rumor::gossip {

struct Traffic;

class RingAllreduce : public Exchange {
 public:
  RingAllreduce(int self, int n, net::MessageKind kind = net::MessageKind::kAllreduce,
                net::LinkKind link = net::LinkKind::kControl);
  // Starts a sum over `data` (in place; the span must stay valid until done()).
  void begin(std::span<float> data);
  bool done() const { return stage_done_ >= stages(0); }

  int stages(std::int64_t) const override { return n_ > 1 ? 2 * (n_ - 1) : 0; }
  std::vector<Outgoing> produce(std::int64_t round, int stage) override;
  std::vector<Expected> expect(std::int64_t round, int stage) const override;
  // The chunk a message brings must have the size the stage expects, in finite floats.
  Refusal check(const net::Message& m) override;
  void absorb(std::int64_t round, int stage, std::vector<net::Message>& received) override;

  // The same sum for many nodes in one process, without messages: leaves in every data[i]
  // (node i's vector, all of one size) what the ring leaves there, bit for bit (chunk c is
  // added up along the ring from node c, in the ring's order). O(n d), parallel by chunk.
  static void sum_in_place(const std::vector<std::span<float>>& data, ThreadPool& pool);
  // Adds to `traffic` what node `self`'s messages of that ring over d floats count (wire
  // bytes and messages, sent and received). O(n).
  static void count_traffic(int self, int n, std::size_t d, std::int64_t round,
                            net::MessageKind kind, net::LinkKind link, Traffic& traffic);

 private:
  std::span<float> chunk(int c) const;
  int self_, n_;
  net::MessageKind kind_;
  net::LinkKind link_;
  std::span<float> data_;
  int stage_done_ = 0;
};

}  // namespace rumor::gossip
