#include "rejoin.hpp"

#include <algorithm>
#include <cmath>
#include <random>

#include "rumor/common/error.hpp"
#include "rumor/common/log.hpp"

namespace rumor::run {

using net::MessageKind;
using std::chrono::milliseconds;

namespace {

net::MessageFilter data_filter(int sender, MessageKind kind) {
  net::MessageFilter f;
  f.sender = sender;
  f.kind = kind;
  f.link = net::LinkKind::kData;
  return f;
}

constexpr double kMaxNonce = 9007199254740991.0;  // 2^53 - 1: exact as a double

// The hand-over's own scalar, after the method's (bytes from a peer: checked).
std::optional<std::uint64_t> pop_scalar(net::Message& m) {
  if (m.scalars.empty()) return std::nullopt;
  const double v = m.scalars.back();
  if (!std::isfinite(v) || v < 0 || v > kMaxNonce || v != std::floor(v)) return std::nullopt;
  m.scalars.pop_back();
  return static_cast<std::uint64_t>(v);
}

constexpr double kDeclined = 0, kAccepted = 1, kRefused = 2;  // a confirm's status

}  // namespace

std::optional<net::Message> take_data(net::Transport& t, int sender, MessageKind kind,
                                      milliseconds timeout) {
  return gossip::take_or_give_up(t, data_filter(sender, kind), timeout, std::chrono::seconds(1));
}

Rejoin::Rejoin(const Endpoint& e, Options o) : e_(e), o_(std::move(o)) {
  nonce_ = o_.nonce_seed;
  if (nonce_ == 0) nonce_ = (static_cast<std::uint64_t>(std::random_device{}()) << 20) + 1;
}

Rejoin::Rejoin(Peer& peer, net::Transport& transport, milliseconds timeout,
               std::int64_t left_behind)
    : Rejoin(Endpoint{&peer.method(), &transport, &peer.traffic(), &peer.topology(), peer.id(),
                      peer.rounds()},
             [&] {
               Options o{2 * timeout, 3 * timeout, 4 * timeout};
               o.left_behind = left_behind;
               return o;
             }()) {}

std::uint64_t Rejoin::next_nonce() {
  nonce_ = (nonce_ + 1) & static_cast<std::uint64_t>(kMaxNonce);
  return nonce_ == 0 ? ++nonce_ : nonce_;
}

bool Rejoin::pending(int peer) const {
  if (asks_.count(peer) || up_at_.count(peer)) return true;
  const auto now = o_.now();
  return std::any_of(offers_.begin(), offers_.end(),
                     [&](const auto& o) { return o.second.peer == peer && o.second.until > now; });
}

// Gossip of the round skipped to may come before the skip: the transport takes it.
void Rejoin::skip_to(std::int64_t u) {
  jump_ = u;
  e_.transport->set_round(u);
}

void Rejoin::maybe_skip(std::int64_t u, std::int64_t r) {
  if (!jump_ && u > r && isolated()) skip_to(u);
  maybe_skip_behind(u, r);
}

void Rejoin::maybe_skip_behind(std::int64_t u, std::int64_t r) {
  if (!jump_ && o_.left_behind > 0 && u - r > o_.left_behind) skip_to(u);
}

bool Rejoin::isolated() const {
  for (int j : e_.topology->peers(e_.self))
    if (!e_.method->peer_is_down(j)) return false;
  return true;
}

void Rejoin::ask(int peer, std::int64_t r) {
  const bool fresh = (fresh_life_ && !synced_.count(peer)) || take_models_;
  auto req = e_.method->rejoin_request(peer, !fresh);
  req.round = r;  // a readmission says where the asker is (see on_request)
  const std::uint64_t nonce = next_nonce();
  req.scalars.push_back(starting_ ? 1.0 : 0.0);
  req.scalars.push_back(static_cast<double>(nonce));
  e_.traffic->add_sent(req);
  e_.transport->send(peer, std::move(req));
  asks_[peer] = {nonce, starting_, o_.now() + o_.retry};
  moved_.insert(peer);
}

void Rejoin::confirm(int peer, std::uint64_t nonce, std::int64_t u, double status) {
  net::Message m;
  m.kind = MessageKind::kRejoinConfirm;
  m.round = u;
  m.scalars = {static_cast<double>(nonce), status};
  e_.transport->send(peer, std::move(m));
}

// Down notices that came before a hand-over message were meant for the edge as it was: one
// connection delivers in order, so they are here by now.
void Rejoin::drop_old_notices(int peer) {
  for (int k = 0; k < 1024; ++k)  // bounded: a neighbour sends one per reconnect
    if (!e_.transport->take(data_filter(peer, MessageKind::kPeerDown), milliseconds(0))) break;
}

void Rejoin::come_up(int peer, std::int64_t u, std::int64_t r) {
  up_at_.erase(peer);
  retry_at_.erase(peer);
  if (u <= r) {
    e_.method->set_peer_up(peer, r);
  } else {
    e_.method->set_peer_down(peer, r);
    up_at_[peer] = u;
  }
}

void Rejoin::answer(const net::Message& req, std::uint64_t nonce, std::int64_t r) {
  const int j = req.sender;
  auto offer = gossip::answer_rejoin(*e_.method, req, r, *e_.traffic);
  e_.method->set_peer_down(j, r);  // out of the mixing until the round j confirms
  up_at_.erase(j);
  moved_.insert(j);
  if (!offer) return;  // refused (counted): j goes on without this node
  // One older offer to j is kept for its late confirm or decline; older ones are dropped.
  auto oldest = offers_.end();
  int kept = 0;
  for (auto it = offers_.begin(); it != offers_.end(); ++it) {
    if (it->second.peer != j) continue;
    ++kept;
    if (oldest == offers_.end() || it->second.round < oldest->second.round) oldest = it;
  }
  if (kept >= 2) {
    log::warn("peer ", j, " never answered the rejoin offer of round ", oldest->second.round + 1,
              "; forgetting it");
    offers_.erase(oldest);
  }
  offers_[{j, nonce}] = {j, r, *offer, o_.now() + o_.confirm_wait};
  ++counts_.offers;
  offer->scalars.push_back(static_cast<double>(nonce));
  e_.traffic->add_sent(*offer);
  e_.transport->send(j, std::move(*offer));
}

void Rejoin::on_request(net::Message req, std::int64_t r) {
  const int j = req.sender;
  const auto nonce = pop_scalar(req);
  const auto starting = pop_scalar(req);
  e_.traffic->add_recv(req);
  if (!nonce || !starting || *starting > 1) {
    e_.traffic->add_rejected(req, {"malformed rejoin request", "no hand-over nonce"});
    return;
  }
  if (barred_.count(j)) {
    log::warn("peer ", j, " asked to rejoin; it was left out for refused messages: ignored");
    return;
  }
  if (auto a = asks_.find(j); a != asks_.end()) {
    // Both ends asked: a starting peer's request stands, else the lower id's.
    const bool theirs_stands =
        *starting != static_cast<double>(a->second.starting) ? *starting == 1.0 : j < e_.self;
    if (!theirs_stands) return;
    asks_.erase(a);
  }
  // Asked back in by a neighbour far ahead: this node was left behind, and the neighbour's
  // gossip from its round on would be refused as too far ahead before the confirm moves
  // this node there (a lost push-sum share). So it moves now; the confirm settles where.
  if (!starting_ && req.round < e_.rounds) maybe_skip_behind(req.round, r);
  if (starting_) {
    req.scalars.push_back(*starting);
    req.scalars.push_back(static_cast<double>(*nonce));
    deferred_.push_back(std::move(req));  // answered once this peer has a round
    return;
  }
  answer(req, *nonce, r);
}

void Rejoin::on_offer(net::Message offer, std::int64_t r) {
  const int i = offer.sender;
  const auto nonce = pop_scalar(offer);
  e_.traffic->add_recv(offer);
  if (!nonce) {
    e_.traffic->add_rejected(offer, {"malformed rejoin offer", "no hand-over nonce"});
    return;
  }
  auto a = asks_.find(i);
  if (a == asks_.end() || a->second.nonce != *nonce) {
    // Not for a request of this life, or asked again since: the mass goes back.
    ++counts_.declined_offers;
    log::info("declining a rejoin offer of peer ", i, " that answers no current request");
    return confirm(i, *nonce, -1, kDeclined);
  }
  asks_.erase(a);
  moved_.insert(i);
  if (!gossip::accept_rejoin(*e_.method, offer, e_.rounds, *e_.traffic))
    return confirm(i, *nonce, -1, kDeclined);
  synced_.insert(i);
  drop_old_notices(i);
  if (starting_) {
    offer.scalars.push_back(static_cast<double>(*nonce));
    collected_.push_back(std::move(offer));
    return;
  }
  // A late offer, or a readmission: the edge comes up at the later of the two rounds. A
  // peer cut off from everyone continues at the first such round (later offers of this
  // boundary then come up at their own rounds, never before it).
  ++counts_.late_offers;
  const std::int64_t u = std::max({offer.round, r, jump_.value_or(r)});
  maybe_skip(u, r);
  confirm(i, *nonce, u, kAccepted);
  confirmed_[i] = *nonce;
  come_up(i, u, r);
  log::info("peer ", i, " let this node back in: in the mixing from round ", u + 1);
}

void Rejoin::on_refused(int peer, std::uint64_t nonce, std::int64_t r) {
  auto c = confirmed_.find(peer);
  if (c == confirmed_.end() || c->second != nonce) {
    ++counts_.stale_confirms;
    return;
  }
  confirmed_.erase(c);
  log::warn("peer ", peer, " ran past the agreed round before the confirm came; asking again");
  up_at_.erase(peer);
  e_.method->set_peer_down(peer, r);
  retry_at_.erase(peer);
  moved_.insert(peer);
}

void Rejoin::on_confirm(const net::Message& c, std::int64_t r) {
  const int j = c.sender;
  const bool shaped =
      c.scalars.size() == 2 && std::isfinite(c.scalars[0]) && c.scalars[0] >= 0 &&
      c.scalars[0] <= kMaxNonce &&
      (c.scalars[1] == kDeclined || c.scalars[1] == kAccepted || c.scalars[1] == kRefused);
  if (!shaped) {
    e_.traffic->add_rejected(c, {"malformed rejoin confirm", "scalars are not (nonce, status)"});
    return;
  }
  const auto nonce = static_cast<std::uint64_t>(c.scalars[0]);
  if (c.scalars[1] == kRefused) return on_refused(j, nonce, r);
  auto it = offers_.find({j, nonce});
  if (it == offers_.end()) {
    ++counts_.stale_confirms;  // of an offer settled or forgotten: nothing to do
    return;
  }
  const Offered o = std::move(it->second);
  offers_.erase(it);
  moved_.insert(j);
  if (c.scalars[1] == kDeclined) {
    ++counts_.declined_offers;
    e_.method->rejoin_declined(o.offer);
    log::info("peer ", j, " declined the rejoin offer of round ", o.round + 1,
              "; its share is back here");
    return;
  }
  if (c.round < r || c.round >= e_.rounds) {
    // Confirmed too late: this node ran rounds from c.round on without j. Refused; j leaves
    // this node out again and the edge is asked for again.
    ++counts_.refused_confirms;
    log::warn("peer ", j, " confirmed round ", c.round + 1, " after this node had passed it");
    return confirm(j, nonce, r, kRefused);
  }
  drop_old_notices(j);
  confirmed_.erase(j);     // a refusal of an older hand-over on this edge is stale now
  maybe_skip(c.round, r);  // alone, or left behind, until then
  come_up(j, c.round, r);
  log::info("peer ", j, " rejoins: back in the mixing from round ", c.round + 1);
}

void Rejoin::handle(net::Message m, std::int64_t r) {
  if (m.kind == MessageKind::kRejoinRequest) return on_request(std::move(m), r);
  if (m.kind == MessageKind::kRejoinOffer) return on_offer(std::move(m), r);
  on_confirm(m, r);
}

// One hand-over message, waiting up to `wait` for the kind this side waits for.
bool Rejoin::take_next(std::int64_t r, milliseconds wait) {
  const auto any = net::MessageFilter::kAnySender;
  const MessageKind waited = starting_ ? MessageKind::kRejoinOffer : MessageKind::kRejoinConfirm;
  for (MessageKind k :
       {MessageKind::kRejoinRequest, MessageKind::kRejoinOffer, MessageKind::kRejoinConfirm}) {
    if (k == waited) continue;
    if (auto m = e_.transport->take(data_filter(any, k), milliseconds(0))) {
      handle(std::move(*m), r);
      return true;
    }
  }
  auto m = e_.transport->take(data_filter(any, waited), wait);
  if (m) handle(std::move(*m), r);
  return m.has_value();
}

// Edges down on a live link are asked for again, once per retry interval.
void Rejoin::readmit(std::int64_t r) {
  const auto now = o_.now();
  for (auto a = asks_.begin(); a != asks_.end();)
    a = a->second.until <= now ? asks_.erase(a) : std::next(a);  // its offer is declined
  for (int k : e_.topology->peers(e_.self)) {
    if (!e_.method->peer_is_down(k) || pending(k) || barred_.count(k)) continue;
    // An offer to k not settled yet (its confirm or decline may still come): not asked.
    if (std::any_of(offers_.begin(), offers_.end(),
                    [k](const auto& o) { return o.second.peer == k; }))
      continue;
    if (!e_.transport->link_up(k, net::LinkKind::kData)) continue;
    if (auto t = retry_at_.find(k); t != retry_at_.end() && now < t->second) continue;
    retry_at_[k] = now + o_.retry;
    ++counts_.readmit_requests;
    ask(k, r);
  }
}

bool Rejoin::waiting(std::int64_t r) const {
  const auto now = o_.now();
  return std::any_of(offers_.begin(), offers_.end(),
                     [&](const auto& o) { return o.second.round == r && o.second.until > now; });
}

// The node pauses here while an offer it made waits for its confirm (bounded).
void Rejoin::wait_confirms(std::int64_t r) {
  for (int k = 0; o_.pause && k < 1 << 20 && waiting(r); ++k)  // each pass waits up to poll
    take_next(r, o_.poll);
}

std::vector<int> Rejoin::serve(std::int64_t r, std::optional<std::pair<int, milliseconds>> hold,
                               bool readmit_edges) {
  moved_.clear();
  if (hold) {
    auto req =
        e_.transport->take(data_filter(hold->first, MessageKind::kRejoinRequest), hold->second);
    if (req)
      handle(std::move(*req), r);
    else
      log::warn("peer ", hold->first, " did not ask to rejoin before round ", r + 1, " within ",
                hold->second.count() / 1000.0, " s; going on without it");
  }
  for (auto& req : std::exchange(deferred_, {})) on_request(std::move(req), r);
  for (int k = 0; k < 4096 && take_next(r, milliseconds(0)); ++k) {
  }
  if (readmit_edges) readmit(r);
  wait_confirms(r);
  for (auto it = up_at_.begin(); it != up_at_.end();) {
    if (it->second <= r) {
      e_.method->set_peer_up(it->first, r);
      moved_.insert(it->first);
      it = up_at_.erase(it);
    } else {
      ++it;
    }
  }
  return {moved_.begin(), moved_.end()};
}

void Rejoin::start_rejoin(bool from_checkpoint) {
  starting_ = true;
  fresh_life_ = !from_checkpoint;
  for (int j : e_.topology->peers(e_.self))
    if (e_.transport->link_up(j, net::LinkKind::kData)) ask(j);
}

std::int64_t Rejoin::rejoin(bool from_checkpoint) {
  start_rejoin(from_checkpoint);
  // Collect for at most offer_wait; offers that come later are settled at a boundary.
  const auto until = o_.now() + o_.offer_wait;
  for (int k = 0; k < 1 << 20 && !asks_.empty() && o_.now() < until; ++k) take_next(-1, o_.poll);
  return finish_rejoin(from_checkpoint);
}

std::int64_t Rejoin::finish_rejoin(bool from_checkpoint) {
  for (int k = 0; k < 4096 && take_next(-1, milliseconds(0)); ++k) {
  }
  starting_ = false;
  if (collected_.empty())
    throw ProtocolError("node " + std::to_string(e_.self) +
                        ": cannot rejoin, no neighbour answered with a usable offer (are the "
                        "others still running, with on_peer_failure continue and the same "
                        "config?)");
  std::int64_t start = 0;
  for (const auto& o : collected_) start = std::max(start, o.round);
  std::set<int> offered;
  for (auto& o : std::exchange(collected_, {})) {
    const auto nonce = pop_scalar(o);
    offered.insert(o.sender);
    confirm(o.sender, nonce.value_or(0), start, kAccepted);
    confirmed_[o.sender] = nonce.value_or(0);
  }
  for (int j : e_.topology->peers(e_.self))
    if (!offered.count(j)) e_.method->set_peer_down(j, start);
  log::info("rejoined with ", offered.size(), " offer(s)",
            from_checkpoint ? " (own checkpoint)" : "", "; starting at round ", start + 1);
  return start;
}

}  // namespace rumor::run
