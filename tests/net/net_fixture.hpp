#pragma once
// Helpers for the net tests: a cluster of N nodes over either transport, on loopback.
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <doctest/doctest.h>

#include "rumor/net/inproc.hpp"
#include "rumor/net/tcp.hpp"
#include "rumor/topology/topology.hpp"

namespace rumor::net::testing {

using namespace std::chrono_literals;
inline constexpr auto kWait = std::chrono::milliseconds(20000);  // generous: shared CI cores

// Polls until `done` holds, for at most 3 x kWait: tests check what happens, and the bound
// only keeps a broken build from hanging (a loaded machine can take seconds per handshake).
template <typename F>
bool eventually(F done) {
  const auto end = std::chrono::steady_clock::now() + 3 * kWait;
  while (!done()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

// kShm: TCP transports whose data links move to shared memory (a run secret and a small
// ring, so frames wrap around it and outgrow it); kTcp keeps them on the socket.
enum class Kind { kTcp, kInProc, kShm };
inline std::string name(Kind k) {
  return k == Kind::kTcp ? "tcp" : k == Kind::kShm ? "shm" : "inproc";
}
inline bool over_tcp(Kind k) {
  return k != Kind::kInProc;
}
inline constexpr std::size_t kTestRingBytes = 64 * 1024;

inline TransportOptions for_kind(Kind k, TransportOptions o) {
  o.shm = k == Kind::kShm;
  if (k == Kind::kShm) {
    if (o.secret.empty()) o.secret = "net-test-shm-secret";
    o.shm_ring_bytes = kTestRingBytes;
  }
  return o;
}

// Every data link of `t` is up and goes through shared memory.
inline bool all_data_links_shm(const Transport& t) {
  for (int p : t.peers(LinkKind::kData)) {
    const auto s = t.stats();
    const LinkStats* l = s.find(p, LinkKind::kData);
    if (!l || !l->up || !l->shm) return false;
  }
  return true;
}

inline TransportOptions quick_options() {
  TransportOptions o;
  o.run_id = "test-run";
  o.connect_timeout = kWait;
  o.retry_min = 5ms;
  o.retry_max = 100ms;
  return o;
}

// The same graph with node i at 127.0.0.1:ports[i].
inline Topology with_ports(const Topology& t, const std::vector<int>& ports) {
  std::vector<NodeInfo> nodes = t.nodes();
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    nodes[i].host = "127.0.0.1";
    nodes[i].port = ports[i];
  }
  return Topology(t.name(), t.directed(), t.schedule(), t.mixing_kind(), nodes, t.edges());
}

// Undirected graph from an edge list, ports 0 (rewritten by Cluster for TCP).
inline Topology small_topology(int n, std::vector<std::pair<int, int>> edges,
                               bool directed = false) {
  std::vector<NodeInfo> nodes(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    nodes[static_cast<std::size_t>(i)].id = i;
    nodes[static_cast<std::size_t>(i)].port = 40000 + i;  // rewritten by Cluster for TCP
  }
  std::vector<Edge> e;
  for (auto [a, b] : edges) e.push_back({a, b, std::nullopt});
  return Topology("test" + std::to_string(n), directed, Schedule::kStatic,
                  directed ? MixingKind::kUniform : MixingKind::kMetropolis, nodes, e);
}

inline Topology ring_topology(int n) {
  std::vector<std::pair<int, int>> e;
  for (int i = 0; i < n; ++i) e.emplace_back(i, (i + 1) % n);
  if (n == 2) e.resize(1);
  return small_topology(n, e);
}

// N nodes of one topology. For TCP each node binds 127.0.0.1:0 first and the topology is
// rewritten with the bound ports.
class Cluster {
 public:
  Cluster(Kind kind, const Topology& topology, TransportOptions options = quick_options(),
          bool start_all = true)
      : kind_(kind), topology_(topology), options_(for_kind(kind, options)) {
    const int n = topology.size();
    nodes_.resize(static_cast<std::size_t>(n));
    ports_.assign(static_cast<std::size_t>(n), 0);
    if (kind == Kind::kInProc) network_ = std::make_unique<InProcNetwork>();
    if (over_tcp(kind)) {
      for (int i = 0; i < n; ++i) {
        auto t = std::make_unique<TcpTransport>(options_);
        ports_[static_cast<std::size_t>(i)] = t->bind("127.0.0.1", 0);
        nodes_[static_cast<std::size_t>(i)] = std::move(t);
      }
      topology_ = with_ports(topology, ports_);
    } else {
      for (int i = 0; i < n; ++i) nodes_[static_cast<std::size_t>(i)] = make(options_);
    }
    if (start_all) {
      for (int i = 0; i < n; ++i) node(i).start(topology_, i);
      for (int i = 0; i < n; ++i) node(i).wait_connected(kWait);
      if (kind == Kind::kShm) wait_shm();
    }
  }

  // kShm: every data link of every node went to shared memory (the tests run over it).
  void wait_shm() {
    for (int i = 0; i < size(); ++i)
      REQUIRE_MESSAGE(eventually([&] { return all_data_links_shm(node(i)); }), "node ", i,
                      ": a data link did not move to shared memory");
  }

  // A fresh, unstarted transport for this cluster (TCP: not bound).
  std::unique_ptr<Transport> make(TransportOptions options) {
    if (over_tcp(kind_)) return std::make_unique<TcpTransport>(for_kind(kind_, options));
    return network_->make_transport(options);
  }
  // Stops node i and starts a new transport in its place (same id, same port).
  void restart(int i) {
    nodes_[static_cast<std::size_t>(i)]->stop();
    nodes_[static_cast<std::size_t>(i)].reset();
    auto t = make(options_);
    if (over_tcp(kind_))
      static_cast<TcpTransport&>(*t).bind("127.0.0.1", ports_[static_cast<std::size_t>(i)]);
    t->start(topology_, i);
    nodes_[static_cast<std::size_t>(i)] = std::move(t);
  }
  void replace(int i, std::unique_ptr<Transport> t) {
    nodes_[static_cast<std::size_t>(i)] = std::move(t);
  }

  Transport& node(int i) { return *nodes_.at(static_cast<std::size_t>(i)); }
  const Topology& topology() const { return topology_; }
  int port(int i) const { return ports_.at(static_cast<std::size_t>(i)); }
  int size() const { return topology_.size(); }
  Kind kind() const { return kind_; }
  InProcNetwork* network() { return network_.get(); }

  ~Cluster() {
    for (auto& n : nodes_)
      if (n) n->stop();
  }

 private:
  Kind kind_;
  Topology topology_;
  TransportOptions options_;
  std::unique_ptr<InProcNetwork> network_;
  std::vector<std::unique_ptr<Transport>> nodes_;
  std::vector<int> ports_;
};

// Sends one data message from a to b and checks it arrives.
inline void check_link(Transport& a, Transport& b, std::int64_t round) {
  Message m;
  m.round = round;
  m.payload = Payload::copy_of(std::vector<std::uint8_t>{9, 8, 7});
  REQUIRE(a.send(b.self(), std::move(m)));
  auto got = b.take(a.self(), round, kWait);
  REQUIRE_MESSAGE(got.has_value(), "node ", b.self(), " got nothing from ", a.self());
  CHECK(got->payload.size() == 3);
}

inline void check_ring_works(Cluster& c, std::int64_t round) {
  const int n = c.size();
  for (int i = 0; i < n; ++i) check_link(c.node(i), c.node((i + 1) % n), round);
}

}  // namespace rumor::net::testing
