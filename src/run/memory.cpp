#include "rumor/run/memory.hpp"

#include <malloc.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "fault_options.hpp"
#include "rumor/common/error.hpp"
#include "rumor/net/inproc.hpp"
#include "rumor/run/peer.hpp"
#include "rumor/run/setup.hpp"

namespace rumor::run {
namespace {

std::string gb(std::uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f GB", static_cast<double>(bytes) / 1e9);
  return buf;
}

std::string mb(std::uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f MB", static_cast<double>(bytes) / 1e6);
  return buf;
}

// A number from a cgroup file ("max" or unreadable: none).
std::uint64_t read_limit(const std::string& path) {
  std::ifstream in(path);
  std::string v;
  if (!(in >> v) || v == "max") return 0;
  try {
    return std::stoull(v);
  } catch (const std::exception&) {
    return 0;
  }
}

// One round of a peer alone: its local step, its messages (kept: in flight), those messages
// handed back to it as if each in-neighbour had sent them (gate, then absorb), and its
// metrics line. What a running peer holds beyond what building it took (gradients, optimizer
// and batch buffers, encoder and decoder buffers, the method's per-round state) is then
// allocated; the peer is thrown away after, so what it computed does not matter.
void rehearse_round(Peer& peer, std::vector<net::Message>& in_flight) {
  peer.local(0);
  const gossip::PeerIo io = peer.method_io();
  if (!io.exchange) return;
  for (int s = 0; s < io.exchange->stages(0); ++s) {
    auto out = io.exchange->produce(0, s);
    std::vector<net::Message> got;
    for (const auto& e : io.exchange->expect(0, s)) {
      const auto it = std::find_if(out.begin(), out.end(), [&](const gossip::Outgoing& o) {
        return o.message.kind == e.kind;
      });
      if (it == out.end()) continue;
      net::Message m = it->message;
      m.sender = e.sender;
      m.round = e.round;
      if (!io.exchange->check(m)) got.push_back(std::move(m));
    }
    try {
      io.exchange->absorb(0, s, got);
    } catch (const std::exception&) {
      // a method whose state the stand-in messages do not fit: measured as far as it got
    }
    for (auto& o : out) in_flight.push_back(std::move(o.message));
  }
  peer.finish_round(0);
}

}  // namespace

std::string MemoryPlan::describe() const {
  std::ostringstream s;
  s << peers << " peers x " << mb(per_peer) << " + " << gb(shared)
    << " shared (dataset) = " << gb(need());
  if (available) s << " (" << gb(available) << " available)";
  return s.str();
}

std::uint64_t heap_in_use() {
  const struct mallinfo2 m = mallinfo2();
  return m.uordblks + m.hblkhd;
}

std::uint64_t heap_growth(std::uint64_t before) {
  const std::uint64_t now = heap_in_use();
  return now > before ? now - before : 0;
}

std::uint64_t memory_available() {
  std::uint64_t avail = 0;
  std::ifstream in("/proc/meminfo");
  std::string key, unit;
  std::uint64_t kb = 0;
  while (in >> key >> kb) {
    std::getline(in, unit);
    if (key == "MemAvailable:") avail = kb * 1024;
  }
  const std::uint64_t limit = read_limit("/sys/fs/cgroup/memory.max");
  const std::uint64_t used = read_limit("/sys/fs/cgroup/memory.current");
  if (limit > 0) {
    const std::uint64_t left = limit > used ? limit - used : 0;
    avail = avail ? std::min(avail, left) : left;
  }
  return avail;
}

void check_fits(const MemoryPlan& plan) {
  if (plan.available == 0 || plan.need() <= plan.available) return;
  const std::uint64_t room = plan.available > plan.shared ? plan.available - plan.shared : 0;
  const std::uint64_t fit = plan.per_peer ? room / plan.per_peer : 0;
  throw Error("this in-process run will not fit in memory: " + plan.describe() +
              ". At most about " + std::to_string(fit) +
              " peers of this config fit; use fewer peers (topology), a smaller model, or run "
              "the peers as processes on several machines (rumor node)");
}

MemoryPlan plan_inprocess_memory(const config::Config& cfg) {
  MemoryPlan plan;
  plan.available = memory_available();
  const Topology topology = topology_of(cfg);
  plan.peers = topology.size();
  const std::uint64_t before = heap_in_use();
  const auto dataset = load_data(cfg);
  plan.shared = heap_growth(before);
  data::Partition partition;
  if (dataset) partition = partition_of(cfg, *dataset, plan.peers);
  const auto faults = FaultOptions::parse(cfg, topology);
  net::InProcNetwork network;
  // Peer 0 pays one-time costs (libraries' first use); peer 1 (or 0 alone) is measured.
  const int measured = plan.peers > 1 ? 1 : 0;
  for (int id = 0; id <= measured; ++id) {
    const std::uint64_t start = heap_in_use();
    auto transport = network.make_transport(transport_options(cfg));
    transport->start(topology, id);
    PeerSetup s =
        peer_setup(cfg, faults, topology, id, dataset, dataset ? &partition : nullptr, "");
    s.transport = transport.get();
    s.write_files = false;
    s.simulated = true;
    Peer peer(s);
    std::vector<net::Message> in_flight;
    rehearse_round(peer, in_flight);
    plan.per_peer = heap_growth(start);
    transport->stop();
  }
  return plan;
}

}  // namespace rumor::run
