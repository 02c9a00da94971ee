// libFuzzer target for one consensus method (linked once per RUMOR_METHODS entry with
// kFuzzMethod naming it): node kSelf of a 4-node ring (fuzz_nodes.hpp) takes
// every message a neighbour can send it, through the gate the driver uses (check(), then
// absorb() of what check() accepted), plus rejoin requests and offers. Each message is a
// neighbour's real one, damaged (bytes flipped, side values replaced, length changed) or made
// up, as the input says. What the transport guarantees (sender, kind, plane, round, stage of
// what was expected) holds; everything else is the peer's. absorb() may throw nothing once
// check() accepted, the model stays finite, and rejoin messages pass their gate
// (gossip::answer_rejoin, accept_rejoin) without any other exception.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>

#include "fuzz_input.hpp"
#include "fuzz_nodes.hpp"
#include "rumor/common/error.hpp"
#include "rumor/common/log.hpp"
#include "rumor/gossip/driver.hpp"

namespace gossip = rumor::gossip;
namespace net = rumor::net;
using rumor::fuzz::Input;
using rumor::fuzz::Nodes;
using rumor::fuzz::Variant;

namespace rumor::fuzz {
extern const char* const kFuzzMethod;  // the method under test (one small file per target)
}

namespace {

[[noreturn]] void bug(const std::string& what) {
  std::fprintf(stderr, "fuzz_gossip_%s: %s\n", rumor::fuzz::kFuzzMethod, what.c_str());
  std::abort();
}

// Configurations that reach other parsing paths (codecs, plain push-sum, refinement, ...).
std::vector<Variant> variants(const gossip::MethodInfo& info) {
  std::vector<Variant> v{{info.needs.contractive_codec ? "topk:0.5" : "fp32"}};
  const std::string& n = info.name;
  if (n == "sgp") {
    v.push_back({"qsgd:4", {{"robust", false}}});
    v.push_back({"fp32", {{"overlap", true}, {"tau", 1}}});
  } else if (n == "dpsgd" || n == "qgm") {
    v.push_back({"qsgd:4"});
    v.push_back({"fp32", {{"aggregation", "clip"}}});
    v.push_back({"fp32", {{"aggregation", "median"}}});
  } else if (n == "choco" || n == "squarm") {
    v.push_back({"sign"});
  } else if (n == "qdata") {
    v.push_back({"fp32", {{"gossip_every", 1}, {"refine", "sign"}}});
  } else if (n == "diloco") {
    v.push_back({"fp32", {{"outer_mix", "allreduce"}}});
    v.push_back({"fp32", {{"outer_mix", "one-peer"}}});
  }
  return v;
}

// The input's damage to a real message: up to three patches.
void damage(Input& in, net::Message& m) {
  std::vector<std::uint8_t> p(m.payload.data(), m.payload.data() + m.payload.size());
  for (int k = in.byte() % 4; k > 0; --k) {
    switch (in.byte() % 5) {
      case 0:
        if (!p.empty()) p[in.pick(p.size())] ^= in.byte() | 1;
        break;
      case 1:
        if (!m.scalars.empty()) m.scalars[in.pick(m.scalars.size())] = in.take<double>();
        break;
      case 2:
        p.resize(in.take<std::uint16_t>() % (p.size() + 64));
        break;
      case 3:
        m.scalars.push_back(in.take<double>());
        break;
      default:
        m.not_triggered = !m.not_triggered;
        m.codec = in.flag() ? m.codec : in.take<std::uint32_t>();
    }
  }
  m.payload = net::Payload::take(std::move(p));
}

// A made-up message: side values and a payload whose length is a multiple of the model's
// (the sizes the methods use) or any.
net::Message invent(Input& in) {
  net::Message m;
  m.codec = in.flag() ? 7 : in.take<std::uint32_t>();
  m.not_triggered = in.flag();
  for (int k = in.byte() % 5; k > 0; --k) m.scalars.push_back(in.take<double>());
  const std::uint8_t len = in.byte();
  const std::size_t n = len < 8 ? len * rumor::fuzz::kDim * 4 : in.take<std::uint16_t>() % 4096;
  m.payload = net::Payload::take(in.padded(n));
  return m;
}

// The message from `real` (if any) as the input makes it: kept, damaged or invented.
net::Message shape(Input& in, const net::Message* real) {
  const std::uint8_t how = in.byte() % 3;
  if (!real || how == 2) return invent(in);
  net::Message m = *real;
  if (how == 1) damage(in, m);
  return m;
}

// The driver's gate (admit in src/gossip/driver.cpp): true when check() accepts; a refusal
// is counted (and logged) as the driver does.
bool admit(Nodes& nodes, const net::Message& m) {
  gossip::Refusal why;
  try {
    why = nodes.self().check(m);
  } catch (const std::exception& e) {
    why = {"check failed", e.what()};  // the driver counts a throwing check() as a refusal
  }
  if (why) nodes.traffic.add_rejected(m, why);
  return !why;
}

// `complete`: every expected message passed the gate. An exchange that cannot go on without
// one (the all-reduce) may then stop with a ProtocolError, as when it never comes.
void absorb(Nodes& nodes, std::int64_t round, int stage, std::vector<net::Message>& got,
            bool complete) {
  try {
    nodes.self().absorb(round, stage, got);
  } catch (const rumor::ProtocolError& e) {
    if (complete) bug(std::string("absorb threw after check() accepted: ") + e.what());
  } catch (const std::exception& e) {
    bug(std::string("absorb threw after check() accepted: ") + e.what());
  }
  for (float x : nodes.models[rumor::fuzz::kSelf])
    if (!std::isfinite(x)) bug("the model is not finite after absorb()");
}

net::MessageFilter filter_of(const gossip::Expected& e) {
  net::MessageFilter f;
  f.sender = e.sender;
  f.round = e.round;
  f.kind = e.kind;
  f.link = e.link;
  if (!e.any_stage) f.stage = e.stage;
  return f;
}

const net::Message* find(const std::vector<net::Message>& box, const net::MessageFilter& f) {
  for (const auto& m : box)
    if (f.matches(m)) return &m;
  return nullptr;
}

// Honest nodes absorb what they expect of the real messages.
void honest_absorb(Nodes& nodes, int i, std::int64_t round, int stage,
                   const std::vector<net::Message>& box) {
  std::vector<net::Message> got;
  for (const auto& e : nodes.methods[i]->expect(round, stage))
    if (const auto* m = find(box, filter_of(e))) got.push_back(*m);
  try {
    nodes.methods[i]->absorb(round, stage, got);
  } catch (const std::exception&) {
    // an honest node's trouble with the fuzzed node's messages is not under test here
  }
}

// Push-sum's early path: gossip of any round up to early_round_limit from any neighbour.
void take_early(Input& in, Nodes& nodes, std::int64_t round, int stage,
                const std::vector<net::Message>& box) {
  gossip::Method& self = nodes.self();
  if (!self.absorbs_early()) return;
  const auto peers = nodes.topology.peers(rumor::fuzz::kSelf);
  std::vector<net::Message> early;
  for (int k = in.byte() % 3; k > 0; --k) {
    const int j = peers[in.pick(peers.size())];
    // Within a few rounds of this node's (network.max_rounds_ahead), or any (0: no limit).
    const std::int64_t near = in.flag() ? round + 1 - in.byte() % 4 : in.take<std::int64_t>();
    const std::int64_t r = std::min<std::int64_t>(near, self.early_round_limit(round));
    net::MessageFilter f;
    f.sender = j;
    net::Message m = shape(in, find(box, f));
    m.sender = j;
    m.round = r;
    m.kind = net::MessageKind::kGossip;
    m.link = net::LinkKind::kData;
    if (admit(nodes, m)) early.push_back(std::move(m));
  }
  if (!early.empty()) absorb(nodes, round, stage, early, true);
}

// What the fuzzed node waits for: one message per expected sender, as the input shapes it.
void take_expected(Input& in, Nodes& nodes, std::int64_t round, int stage,
                   const std::vector<net::Message>& box) {
  gossip::Method& self = nodes.self();
  std::vector<net::Message> got;
  const auto expected = self.expect(round, stage);
  for (const auto& e : expected) {
    net::Message m = shape(in, find(box, filter_of(e)));
    m.sender = e.sender;
    m.round = e.round;
    m.kind = e.kind;
    m.link = e.link;
    if (!e.any_stage) m.stage = e.stage;
    if (admit(nodes, m)) got.push_back(std::move(m));
  }
  absorb(nodes, round, stage, got, got.size() == expected.size());
}

void round_step(Input& in, Nodes& nodes, std::int64_t round) {
  for (int i = 0; i < rumor::fuzz::kNodes; ++i) nodes.methods[i]->local(round, *nodes.work[i]);
  for (int stage = 0; stage < nodes.self().stages(round); ++stage) {
    std::vector<std::vector<net::Message>> inbox(rumor::fuzz::kNodes);
    for (int i = 0; i < rumor::fuzz::kNodes; ++i) {
      for (auto& o : nodes.methods[i]->produce(round, stage)) {
        o.message.sender = i;
        inbox.at(o.to).push_back(std::move(o.message));
      }
    }
    for (int i = 0; i < rumor::fuzz::kNodes; ++i)
      if (i != rumor::fuzz::kSelf) honest_absorb(nodes, i, round, stage, inbox[i]);
    take_early(in, nodes, round, stage, inbox[rumor::fuzz::kSelf]);
    take_expected(in, nodes, round, stage, inbox[rumor::fuzz::kSelf]);
  }
}

// Faults are not the peer's choice, but they change which paths a message takes.
void set_peer(gossip::Method& m, int j, bool down, std::int64_t round) {
  try {
    down ? m.set_peer_down(j, round) : m.set_peer_up(j, round);
  } catch (const rumor::Error&) {
    // allreduce cannot leave a node out
  }
}

constexpr std::int64_t kLastRound = 1000;  // the run's rounds, for rejoin offers

// A neighbour's rejoin request (src/run/rejoin.cpp: Rejoin::answer, through the gate).
void rejoin_request(Input& in, Nodes& nodes, std::int64_t round) {
  const auto peers = nodes.topology.peers(rumor::fuzz::kSelf);
  const int j = peers[in.pick(peers.size())];
  net::Message real = nodes.methods[j]->rejoin_request(rumor::fuzz::kSelf, in.flag());
  net::Message m = shape(in, &real);
  m.sender = j;
  m.kind = net::MessageKind::kRejoinRequest;
  m.link = net::LinkKind::kData;
  (void)gossip::answer_rejoin(nodes.self(), m, round, nodes.traffic);
  set_peer(nodes.self(), j, true, round);
  for (float x : nodes.models[rumor::fuzz::kSelf])
    if (!std::isfinite(x)) bug("the model is not finite after rejoin_offer()");
}

// A neighbour's offer to the fuzzed node as it rejoins (Rejoin::rejoin, through the gate).
void rejoin_offer(Input& in, Nodes& nodes, std::int64_t round) {
  const auto peers = nodes.topology.peers(rumor::fuzz::kSelf);
  const int j = peers[in.pick(peers.size())];
  net::Message req = nodes.self().rejoin_request(j, in.flag());
  req.sender = rumor::fuzz::kSelf;
  std::optional<net::Message> real;
  try {
    real = nodes.methods[j]->rejoin_offer(req, round);
  } catch (const rumor::ProtocolError&) {
  }
  net::Message m = shape(in, real ? &*real : nullptr);
  m.sender = j;
  m.kind = net::MessageKind::kRejoinOffer;
  m.link = net::LinkKind::kData;
  m.round = real && in.flag() ? real->round : (in.flag() ? in.byte() : in.take<std::int64_t>());
  (void)gossip::accept_rejoin(nodes.self(), m, kLastRound, nodes.traffic);
  for (float x : nodes.models[rumor::fuzz::kSelf])
    if (!std::isfinite(x)) bug("the model is not finite after rejoin_accept()");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const bool quiet = (rumor::log::set_level(rumor::log::Level::kOff), true);
  (void)quiet;
  static const gossip::MethodInfo& info = gossip::method_info(rumor::fuzz::kFuzzMethod);
  static const std::vector<Variant> all = variants(info);
  Input in(data, size);
  Nodes nodes(info.name, all[in.byte() % all.size()]);
  std::int64_t round = 0;
  for (int ops = 0; ops < 12 && !in.empty(); ++ops) {
    switch (in.byte() % 8) {
      case 5:
        rejoin_request(in, nodes, round);
        break;
      case 6:
        rejoin_offer(in, nodes, round);
        break;
      case 7: {
        const auto peers = nodes.topology.peers(rumor::fuzz::kSelf);
        set_peer(nodes.self(), peers[in.pick(peers.size())], in.flag(), round);
        break;
      }
      default:
        round_step(in, nodes, round++);
    }
  }
  return 0;
}
