#include "demand_links.hpp"

namespace rumor::run {

bool DemandLinks::apply(const Topology& topology, bool keep_going) {
  return topology.schedule() == Schedule::kPeerSampling && !keep_going;
}

DemandLinks::DemandLinks(net::TcpTransport& t, const Topology& topology, int self)
    : t_(t), topology_(topology), self_(self), open_(topology.size(), 0) {
  t_.open_links_on_demand();
}

void DemandLinks::open(std::int64_t round) {
  for (int j : topology_.out_neighbors(self_, round)) open_one(j);
  for (int j : topology_.in_neighbors(self_, round)) open_one(j);
}

void DemandLinks::open_one(int peer) {
  if (open_[peer]) return;
  open_[peer] = 1;
  ++opened_;
  t_.open_link(peer);
}

}  // namespace rumor::run
