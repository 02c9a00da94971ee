#include "average_resume.hpp"

#include "rumor/common/log.hpp"

namespace rumor::run {

using net::MessageKind;
using std::chrono::milliseconds;

namespace {
constexpr std::uint32_t kPropose = 0, kCommit = 1;  // the message's stage

net::MessageFilter control_filter(MessageKind kind) {
  net::MessageFilter f;
  f.kind = kind;
  f.link = net::LinkKind::kControl;
  return f;
}
}  // namespace

bool AverageResume::eval_round(std::int64_t r) const {
  return (r + 1) % o_.eval_every == 0 || r + 1 == o_.rounds;
}

void AverageResume::pass(std::int64_t r, std::int64_t e, std::uint32_t stage) {
  net::Message m;
  m.kind = MessageKind::kAverageResume;
  m.round = r;  // the sender's round (the transport refuses rounds far ahead); E in scalars
  m.scalars = {static_cast<double>(e)};
  m.stage = stage;
  m.link = net::LinkKind::kControl;
  t_.send((o_.self + 1) % o_.nodes, std::move(m));
}

// Bytes from a peer: E is used only when it is an evaluation round ahead of this node.
void AverageResume::take(const net::Message& m, std::int64_t r) {
  if (m.scalars.size() != 1 || !(m.scalars[0] > static_cast<double>(r)) ||
      !(m.scalars[0] < static_cast<double>(o_.rounds)))
    return;
  const auto e = static_cast<std::int64_t>(m.scalars[0]);
  const int next = (o_.self + 1) % o_.nodes;
  if (static_cast<double>(e) != m.scalars[0] || !eval_round(e) || m.stage > kCommit) return;
  if (m.stage == kCommit) {
    resume_at_ = e;
    if (next != 0) pass(r, e, kCommit);
    return;
  }
  if (!t_.link_up(next, net::LinkKind::kControl)) return;  // node 0 asks again later
  if (o_.self != 0) return pass(r, e, kPropose);
  resume_at_ = e;  // round the ring: every node is reachable
  pass(r, e, kCommit);
}

void AverageResume::drop_stale_notices(std::int64_t e) {
  auto f = control_filter(MessageKind::kNoAverage);
  f.max_round = e - 1;
  for (int k = 0; k < 4096 && t_.take(f, milliseconds(0)); ++k) {
  }
}

bool AverageResume::boundary(std::int64_t r) {
  if (o_.nodes < 2) return false;
  for (int k = 0; k < 64; ++k) {
    auto m = t_.take(control_filter(MessageKind::kAverageResume), milliseconds(0));
    if (!m) break;
    take(*m, r);
  }
  if (resume_at_ && *resume_at_ < r) resume_at_.reset();  // passed (a skip ahead)
  if (resume_at_ && *resume_at_ == r) {
    resume_at_.reset();
    drop_stale_notices(r);
    log::info("every node is back on the control ring: exact averages again from round ", r + 1);
    return true;
  }
  const auto now = o_.now();
  if (o_.self != 0 || resume_at_ || now < next_try_) return false;
  if (!t_.link_up(1 % o_.nodes, net::LinkKind::kControl)) return false;
  // Far enough ahead for two turns of the ring, one hop per round boundary at worst.
  std::int64_t e = r + 2 * o_.nodes + 2;
  while (e < o_.rounds && !eval_round(e)) ++e;
  if (e >= o_.rounds) return false;
  next_try_ = now + o_.retry;
  pass(r, e, kPropose);
  return false;
}

}  // namespace rumor::run
