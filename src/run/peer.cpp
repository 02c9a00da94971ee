#include "rumor/run/peer.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <thread>
#include <tuple>

#include "bad_sender.hpp"
#include "fault_options.hpp"
#include "fault_policy.hpp"
#include "node_files.hpp"
#include "rumor/codec/codec.hpp"
#include "rumor/common/error.hpp"
#include "rumor/common/log.hpp"
#include "rumor/common/rng.hpp"
#include "rumor/gossip/qdata.hpp"
#include "rumor/run/setup.hpp"
#include "rumor/train/model.hpp"
#include "rumor/train/optimizer.hpp"
#include "rumor/train/trainer.hpp"

namespace rumor::run {
namespace {

// Local training through LibTorch, as the methods see it.
class TorchWork : public gossip::LocalWork, public gossip::SampleWork {
 public:
  TorchWork(train::Model& model, train::LocalOptimizer& opt, train::LocalTrainer& trainer)
      : model_(model), opt_(opt), trainer_(trainer) {}
  static Stats to_stats(const train::BatchStats& s) {
    return {s.loss, s.count ? static_cast<double>(s.correct) / static_cast<double>(s.count) : 0.0};
  }
  Stats gradient() override { return to_stats(trainer_.compute_gradient()); }
  std::span<const float> grads() const override { return model_.grads(); }
  void step(std::span<float> x) override { opt_.step(x, model_.grads()); }
  void step(std::span<float> x, std::span<const float> dir) override { opt_.step(x, dir); }
  double lr() const override { return opt_.lr(); }
  std::int64_t steps() const override { return static_cast<std::int64_t>(opt_.steps()); }
  double epochs() const override {
    const auto per_epoch = trainer_.sampler().batches_per_epoch();
    return per_epoch ? static_cast<double>(opt_.steps()) / static_cast<double>(per_epoch) : 0.0;
  }
  // Sample access for data-sharing methods (qdata).
  gossip::SampleWork* sample_work() override { return this; }
  std::size_t sample_dim() const override { return trainer_.sample_dim(); }
  int num_classes() const override { return trainer_.num_classes(); }
  void draw(std::size_t n, std::int64_t round, std::vector<float>& f,
            std::vector<std::int32_t>& l) override {
    trainer_.draw_samples(n, static_cast<std::uint64_t>(round), f, l);
  }
  std::vector<float> losses(std::span<const float> f, std::span<const std::int32_t> l) override {
    return trainer_.sample_losses(f, l);
  }
  Stats gradient_on(std::span<const float> f, std::span<const std::int32_t> l) override {
    return to_stats(trainer_.gradient_on(f, l));
  }

 private:
  train::Model& model_;
  train::LocalOptimizer& opt_;
  train::LocalTrainer& trainer_;
};

namespace fs = std::filesystem;

// Refused messages by sender and reason, method and control traffic together.
nlohmann::json rejected_by_peer(const gossip::Traffic& a, const gossip::Traffic& b) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto* t : {&a, &b})
    for (const auto& [peer, reasons] : t->rejected)
      for (const auto& [reason, n] : reasons) {
        auto& slot = out[std::to_string(peer)][reason];
        slot = slot.is_null() ? n : slot.get<std::uint64_t>() + n;
      }
  return out;
}

std::uint32_t codec_tag(const std::string& name) {
  std::uint32_t h = 2166136261u;  // FNV-1a: a stable tag both sides derive from the spec
  for (unsigned char ch : name) h = (h ^ ch) * 16777619u;
  return h;
}

}  // namespace

struct Peer::Impl {
  const config::Config& cfg;
  const Topology& topology;
  int id;
  net::Transport* transport;
  std::shared_ptr<const data::Dataset> dataset;
  std::int64_t rounds = 0;
  std::int64_t eval_every = 1;
  bool train = true;

  std::unique_ptr<train::Model> model;
  std::unique_ptr<train::LocalOptimizer> optimizer;
  std::unique_ptr<train::LocalTrainer> trainer;
  std::vector<float> vector;  // task average
  std::unique_ptr<gossip::LocalWork> work;
  std::span<float> model_span;
  std::unique_ptr<gossip::Method> method;
  std::unique_ptr<BadSender> bad;              // faults.bad_node: wraps the method
  std::unique_ptr<ByzantineSender> byzantine;  // faults.byzantine: wraps the method
  const FaultOptions& faults;
  std::int64_t local_steps = 1, checkpoint_every = 0;

  gossip::Traffic method_traffic, ctrl_traffic;
  // Replays the transport refused, already added to the traffic: (peer, plane) -> count.
  std::map<std::pair<int, int>, std::uint64_t> link_rejects_seen;
  // Per data link: drops + reconnects as last told to the method (delivery_failed).
  std::map<int, std::uint64_t> losses_seen;
  net::TransportStats link_stats;  // as of the last finish_round
  gossip::RingAllreduce eval_ring;
  std::vector<float> average;
  bool have_average = false;
  bool average_is_mean = false;  // set_average() gave the mean, not the sum
  bool average_skipped = false;  // skip_average(): no exact average this eval round

  bool simulated = false;
  gossip::SimClock sim;
  double slowdown = 1.0;  // faults.slow_nodes
  double step_s = 0.0;    // simulated cost of one local step (times slowdown)

  double round_loss = 0, round_acc = 0;
  std::int64_t steps = 0;
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
  NodeFiles files;
  std::string run_dir;
  double time_offset = 0;  // seconds already run before a resume
  nlohmann::json last;

  Impl(const PeerSetup& s)
      : cfg(*s.config),
        topology(*s.topology),
        id(s.id),
        transport(s.transport),
        dataset(s.dataset),
        faults(*s.faults),
        eval_ring(s.id, s.topology->size(), net::MessageKind::kEvalAverage,
                  net::LinkKind::kControl),
        simulated(s.simulated) {}
};

namespace {

// The model, optimizer and trainer of task train (the optimizer's momentum as the method's
// registry entry says), or the vector of task average.
void make_local_work(Peer::Impl& p, const PeerSetup& s, const gossip::MethodInfo& info,
                     std::uint64_t seed) {
  const auto& c = p.cfg;
  if (!p.train) {
    // Task average: node i starts from a vector drawn from (seed, i).
    p.vector.resize(c.get<std::size_t>("average.dim"));
    Rng rng = Rng::derive(seed, 0xa7e, static_cast<std::uint64_t>(p.id));
    for (auto& v : p.vector) v = static_cast<float>(rng.uniform() * 2.0 - 1.0);
    p.work = std::make_unique<gossip::NoLocalWork>();
    p.model_span = p.vector;
    return;
  }
  if (!p.dataset) throw Error("node " + std::to_string(p.id) + ": no dataset for task train");
  const auto opt = local_optimizer_options(c, info);
  p.model = train::Model::create(model_spec(c), {p.dataset->shape, p.dataset->num_classes}, seed);
  p.optimizer = std::make_unique<train::LocalOptimizer>(p.model->num_params(), opt);
  p.trainer = std::make_unique<train::LocalTrainer>(*p.model, *p.dataset, s.shard, *p.optimizer,
                                                    c.get<std::size_t>("batch_size"), seed,
                                                    static_cast<std::uint64_t>(p.id));
  p.work = std::make_unique<TorchWork>(*p.model, *p.optimizer, *p.trainer);
  p.model_span = p.model->params();
}

// True when the in-process link model may lose a message on a live link.
bool links_may_lose(const config::Config& c) {
  bool lossy = c.get<double>("links.loss") > 0;
  for (const auto& o : c.at("links.overrides")) lossy = lossy || o.value("loss", 0.0) > 0;
  return lossy;
}

// The method from its registry entry, wrapped by the bad sender on faults.bad_node and by
// the attacker on a node of faults.byzantine.
// Returns the codec's name.
std::string make_method(Peer::Impl& p, const gossip::MethodInfo& info, std::uint64_t seed) {
  const auto& c = p.cfg;
  gossip::MethodContext ctx;
  ctx.self = p.id;
  ctx.topology = &p.topology;
  ctx.seed = seed;
  ctx.local_steps = static_cast<int>(p.local_steps);
  ctx.codec = codec::make_codec(c.at("codec"));
  ctx.codec_id = codec_tag(ctx.codec->name());
  ctx.identical_init = p.train;
  ctx.max_abs_value = p.faults.max_abs_value;
  ctx.lossy_links = links_may_lose(c);
  // Rejoins and goodbyes settle edges with the running sums: kept where membership moves.
  ctx.reliable_links =
      p.simulated && !ctx.lossy_links && !p.faults.kill_node && !p.faults.membership_changes();
  ctx.params = c.at("method");
  p.method = gossip::make_method(info.name, ctx);
  p.method->init(p.model_span);
  if (p.faults.bad_node == p.id)
    p.bad = std::make_unique<BadSender>(*p.method, p.faults.bad_payload, p.faults.bad_first,
                                        p.faults.bad_last, seed);
  if (p.faults.byzantine && p.faults.byzantine->contains(p.id))
    p.byzantine = std::make_unique<ByzantineSender>(*p.method, *p.faults.byzantine, p.id, ctx.codec,
                                                    p.model_span.size(), seed);
  return ctx.codec->name();
}

}  // namespace

PeerSetup peer_setup(const config::Config& c, const FaultOptions& faults, const Topology& topology,
                     int id, std::shared_ptr<const data::Dataset> dataset,
                     const data::Partition* partition, const std::string& run_dir) {
  PeerSetup s;
  s.config = &c;
  s.faults = &faults;
  s.topology = &topology;
  s.id = id;
  if (dataset && partition) s.shard = partition->nodes[static_cast<std::size_t>(id)];
  s.dataset = std::move(dataset);
  s.run_dir = run_dir;
  return s;
}

Peer::Peer(const PeerSetup& s) : impl_(std::make_unique<Impl>(s)) {
  Impl& p = *impl_;
  const auto& c = p.cfg;
  p.rounds = c.get<std::int64_t>("rounds");
  p.eval_every = c.get<std::int64_t>("eval.every");
  p.local_steps = c.get<std::int64_t>("local_steps");
  p.checkpoint_every = c.get<std::int64_t>("checkpoint.every");
  p.slowdown = p.faults.slowdown_of(p.id);
  p.step_s = c.get<double>("sim.step_s");
  p.sim.deadline_s = c.get<double>("network.round_timeout_s");
  p.train = c.get<std::string>("task") == "train";
  if (s.write_files) p.files = NodeFiles(s.run_dir, p.id, s.resume_round, s.rejoin);
  const auto& info = gossip::method_info(c.get<std::string>("method.name"));
  const std::uint64_t seed = c.get<std::uint64_t>("seed");
  make_local_work(p, s, info, seed);
  const std::string codec = make_method(p, info, seed);
  p.average.assign(p.model_span.size(), 0.0f);
  p.run_dir = s.run_dir;
  if (s.resume_round >= 0) load_checkpoint(s.resume_round);
  log("node " + std::to_string(p.id) + " ready: method " + info.name + ", codec " + codec + ", " +
      std::to_string(p.model_span.size()) + " parameters" +
      (p.train ? ", " + std::to_string(s.shard.size()) + " training samples" : std::string()));
  if (p.byzantine)
    log("node " + std::to_string(p.id) + " is Byzantine (faults.byzantine): it sends " +
        to_string(p.faults.byzantine->attack) + " to its neighbours and trains honestly");
}

Peer::~Peer() = default;

int Peer::id() const {
  return impl_->id;
}
const Topology& Peer::topology() const {
  return impl_->topology;
}
std::int64_t Peer::rounds() const {
  return impl_->rounds;
}

void Peer::local(std::int64_t round) {
  Impl& p = *impl_;
  const auto t0 = std::chrono::steady_clock::now();
  const auto s = p.method->local(round, *p.work);
  if (p.simulated) {
    if (p.train) p.sim.now_s += p.step_s * p.slowdown * static_cast<double>(p.local_steps);
  } else if (p.slowdown > 1.0) {
    // A straggler over TCP: its steps take `slowdown` times as long as they did.
    std::this_thread::sleep_for((std::chrono::steady_clock::now() - t0) * (p.slowdown - 1.0));
  }
  if (p.train && !std::isfinite(s.loss))
    throw Error("node " + std::to_string(p.id) + ": training diverged at round " +
                std::to_string(round + 1) +
                " (the loss is not finite); lower optimizer.lr, or method.gamma for "
                "compressed methods");
  p.round_loss = s.loss;
  p.round_acc = s.accuracy;
  if (p.train) p.steps += p.local_steps;
}

gossip::PeerIo Peer::method_io() {
  gossip::Exchange* x = impl_->method.get();
  if (impl_->byzantine) x = impl_->byzantine.get();
  if (impl_->bad) x = impl_->bad.get();
  return {x, impl_->transport, &impl_->method_traffic, impl_->simulated ? &impl_->sim : nullptr};
}

bool Peer::eval_round(std::int64_t round) const {
  return (round + 1) % impl_->eval_every == 0 || round + 1 == impl_->rounds;
}

void Peer::prepare_eval(std::int64_t) {
  Impl& p = *impl_;
  std::copy(p.model_span.begin(), p.model_span.end(), p.average.begin());
  p.eval_ring.begin(p.average);
  p.average_is_mean = false;
}

void Peer::skip_average() {
  impl_->average_skipped = true;
}

void Peer::set_average(std::span<const float> mean) {
  Impl& p = *impl_;
  std::copy(mean.begin(), mean.end(), p.average.begin());
  p.average_is_mean = true;
}

gossip::PeerIo Peer::eval_io() {
  return {&impl_->eval_ring, impl_->transport, &impl_->ctrl_traffic};
}

namespace {

// Messages the transport refused unread, by reason. A replayed sequence number is a fault of
// the sender: it joins the gate's refusals (network.max_rejects counts it). Rounds too far
// ahead and a full mailbox only shed load (an honest neighbour may run ahead of a slow node):
// reported beside them, never held against the peer.
using LinkCounter = std::uint64_t net::LinkStats::*;
constexpr std::pair<LinkCounter, const char*> kShedReasons[] = {
    {&net::LinkStats::rejected_ahead, "round too far ahead"},
    {&net::LinkStats::rejected_mailbox, "mailbox full"}};

// A data link that dropped a message or came up again since the last round: what was sent
// on it may be lost, which the method hears of.
void notice_lost_deliveries(Peer::Impl& p) {
  for (const auto& l : p.link_stats.links) {
    if (l.link != net::LinkKind::kData) continue;
    const std::uint64_t n = l.drops + l.reconnects;
    auto& seen = p.losses_seen[l.peer];
    if (n == seen) continue;
    seen = n;
    p.method->delivery_failed(l.peer);
  }
}

void fold_transport_refusals(Peer::Impl& p) {
  if (!p.transport) return;
  p.link_stats = p.transport->stats();
  notice_lost_deliveries(p);
  for (const auto& l : p.link_stats.links) {
    if (l.rejected_seq == 0) continue;
    gossip::Traffic& t = l.link == net::LinkKind::kData ? p.method_traffic : p.ctrl_traffic;
    auto& seen = p.link_rejects_seen[{l.peer, static_cast<int>(l.link)}];
    if (l.rejected_seq <= seen) continue;
    t.msgs_rejected += l.rejected_seq - seen;
    t.rejected[l.peer]["sequence number not increasing"] += l.rejected_seq - seen;
    seen = l.rejected_seq;
  }
}

// The refusals of a metrics line: the gate's (and replays), plus what the transport shed.
void add_refusals(Peer::Impl& p, nlohmann::json& line) {
  std::uint64_t total = p.method_traffic.msgs_rejected + p.ctrl_traffic.msgs_rejected;
  nlohmann::json by_peer = rejected_by_peer(p.method_traffic, p.ctrl_traffic);
  for (const auto& l : p.link_stats.links)
    for (const auto& [counter, reason] : kShedReasons)
      if (const std::uint64_t n = l.*counter; n > 0) {
        auto& slot = by_peer[std::to_string(l.peer)][reason];
        slot = slot.is_null() ? n : slot.get<std::uint64_t>() + n;
        total += n;
      }
  line["msgs_rejected"] = total;
  if (total != 0) line["rejected"] = by_peer;
  // Connections refused in the handshake and closed for bytes that did not parse.
  line["handshakes_refused"] = p.link_stats.refused_handshakes;
  line["frames_malformed"] = p.link_stats.malformed;
}

}  // namespace

std::vector<int> Peer::finish_round(std::int64_t round) {
  Impl& p = *impl_;
  fold_transport_refusals(p);
  auto left_out = leave_out_refused(*p.method, p.method_traffic, p.topology.peers(p.id), round,
                                    p.faults.max_rejects);
  const auto elapsed =
      p.time_offset +
      std::chrono::duration<double>(std::chrono::steady_clock::now() - p.start).count();
  nlohmann::json line = {{"node", p.id}, {"round", round}, {"step", p.steps}, {"time_s", elapsed}};
  if (p.simulated) line["sim_time_s"] = p.sim.now_s;
  if (p.train) {
    line["loss"] = p.round_loss;
    line["train_acc"] = p.round_acc;
  }
  const bool eval = eval_round(round);
  if (eval) {
    const bool averaged = !p.average_skipped;
    p.average_skipped = false;
    if (averaged && !p.average_is_mean) {
      const float inv = 1.0f / static_cast<float>(p.topology.size());
      for (float& v : p.average) v *= inv;
    }
    if (averaged) p.have_average = true;
    if (p.train) {
      const auto r = train::evaluate(*p.model, p.dataset->test);
      line["test_acc"] = r.accuracy;
      line["test_loss"] = r.loss;
    }
    // Consensus distance and the averaged model need the exact average of every node: left
    // out when a peer is gone (skip_average).
    if (averaged) {
      double dist = 0;
      for (std::size_t k = 0; k < p.average.size(); ++k) {
        const double diff = static_cast<double>(p.model_span[k]) - p.average[k];
        dist += diff * diff;
      }
      line["consensus_dist"] = dist;
    }
    if (averaged && p.train && p.id == 0 && round + 1 == p.rounds) {
      // The exact average of all final models: what model.pt holds.
      auto avg = train::Model::create(model_spec(p.cfg), {p.dataset->shape, p.dataset->num_classes},
                                      p.cfg.get<std::uint64_t>("seed"));
      std::copy(p.average.begin(), p.average.end(), avg->params().begin());
      line["avg_model_acc"] = train::evaluate(*avg, p.dataset->test).accuracy;
    }
  }
  const auto ms = p.method->stats();
  line["bytes_sent"] = p.method_traffic.bytes_sent;
  line["bytes_recv"] = p.method_traffic.bytes_recv;
  line["msgs_sent"] = p.method_traffic.msgs_sent;
  line["msgs_recv"] = p.method_traffic.msgs_recv;
  line["msgs_skipped"] = ms.skipped;
  line["msgs_late"] = p.method_traffic.msgs_late;
  line["msgs_missed"] = p.method_traffic.msgs_missed;
  line["ctrl_bytes"] = p.ctrl_traffic.bytes_sent;
  add_refusals(p, line);
  if (const double w = p.method->weight(); !std::isnan(w)) line["ps_weight"] = w;
  line.update(p.method->round_metrics());
  if (p.train) line["lr"] = p.work->lr();
  p.last = line;
  p.files.write_metrics(line);
  if (eval) {
    // The round's index as in the metrics file, then how many of the run's rounds are done.
    std::string msg = "round " + std::to_string(round) + " (" + std::to_string(round + 1) + " of " +
                      std::to_string(p.rounds) + " done)";
    if (p.train)
      msg += ": loss " + std::to_string(p.round_loss) + ", test_acc " +
             std::to_string(line["test_acc"].get<double>());
    if (line.contains("consensus_dist"))
      msg += ", consensus_dist " + std::to_string(line["consensus_dist"].get<double>());
    log(msg);
  }
  return left_out;
}

void Peer::follow_schedule(std::int64_t round) {
  Impl& p = *impl_;
  if (p.optimizer && round > 0)
    p.optimizer->follow_schedule_from(static_cast<std::size_t>(round * p.local_steps));
}

void Peer::save_average_model(const std::string& path) const {
  const Impl& p = *impl_;
  if (!p.train || !p.have_average) return;
  auto m = train::Model::create(model_spec(p.cfg), {p.dataset->shape, p.dataset->num_classes},
                                p.cfg.get<std::uint64_t>("seed"));
  std::copy(p.average.begin(), p.average.end(), m->params().begin());
  m->save(path);
}

bool Peer::checkpoint_due(std::int64_t round) const {
  const auto every = impl_->checkpoint_every;
  return every > 0 && (round + 1) % every == 0 && impl_->files.writing();
}

namespace {
struct NamedSpan {
  std::string name;
  std::span<const float> data;
  std::function<void(std::span<const float>)> restore;
};

// Everything a checkpoint holds besides its JSON header, in file order.
std::vector<NamedSpan> checkpoint_buffers(Peer::Impl& p) {
  std::vector<NamedSpan> out;
  out.push_back({"model", p.model_span, [&p](std::span<const float> v) {
                   std::copy(v.begin(), v.end(), p.model_span.begin());
                 }});
  if (p.optimizer) {
    for (auto& s : p.optimizer->state()) {
      out.push_back({s.name, s.data, [dst = s.data](std::span<const float> v) {
                       std::copy(v.begin(), v.end(), dst.begin());
                     }});
    }
  }
  for (auto& b : p.method->state_buffers()) out.push_back({b.name, b.data, b.restore});
  return out;
}
}  // namespace

namespace {
nlohmann::json traffic_fields(const gossip::Traffic& t) {
  return {{"bytes_sent", t.bytes_sent},       {"bytes_recv", t.bytes_recv},
          {"msgs_sent", t.msgs_sent},         {"msgs_recv", t.msgs_recv},
          {"msgs_late", t.msgs_late},         {"msgs_missed", t.msgs_missed},
          {"msgs_rejected", t.msgs_rejected}, {"rejected", nlohmann::json(t.rejected)}};
}
gossip::Traffic traffic_from(const nlohmann::json& j) {
  gossip::Traffic t;
  t.bytes_sent = j.at("bytes_sent").get<std::uint64_t>();
  t.bytes_recv = j.at("bytes_recv").get<std::uint64_t>();
  t.msgs_sent = j.at("msgs_sent").get<std::uint64_t>();
  t.msgs_recv = j.at("msgs_recv").get<std::uint64_t>();
  t.msgs_late = j.at("msgs_late").get<std::uint64_t>();
  t.msgs_missed = j.at("msgs_missed").get<std::uint64_t>();
  t.msgs_rejected = j.at("msgs_rejected").get<std::uint64_t>();
  t.rejected = j.at("rejected").get<decltype(t.rejected)>();
  return t;
}

// The checkpoint's buffers must be this run's, by name and size, in order.
void check_buffers(const Checkpoint& ck, const std::vector<NamedSpan>& mine,
                   const std::string& where) {
  if (ck.buffers.size() != mine.size())
    throw CheckpointError(where + " holds " + std::to_string(ck.buffers.size()) +
                          " buffers, this run needs " + std::to_string(mine.size()) +
                          "; was the config changed?");
  for (std::size_t i = 0; i < mine.size(); ++i)
    if (ck.buffers[i].name != mine[i].name || ck.buffers[i].data.size() != mine[i].data.size())
      throw CheckpointError(where + ": buffer " + ck.buffers[i].name + " (" +
                            std::to_string(ck.buffers[i].data.size()) +
                            " floats) does not match this run's " + mine[i].name + " (" +
                            std::to_string(mine[i].data.size()) + "); was the config changed?");
}
}  // namespace

void Peer::save_checkpoint(std::int64_t round) {
  Impl& p = *impl_;
  const nlohmann::json fields = {
      {"node", p.id},
      {"round", round},
      {"steps", p.steps},
      {"optimizer_steps", p.optimizer ? p.optimizer->steps() : 0},
      {"time_s", p.last.value("time_s", 0.0)},
      {"sim_time_s", p.sim.now_s},
      {"method", p.method->name()},
      {"method_state", p.method->save_state()},
      {"traffic",
       {{"method", traffic_fields(p.method_traffic)}, {"ctrl", traffic_fields(p.ctrl_traffic)}}}};
  std::vector<CheckpointBufferView> views;
  for (const auto& b : checkpoint_buffers(p)) views.push_back({b.name, b.data});
  write_checkpoint(checkpoint_path(p.run_dir, p.id, round), fields, views);
  const auto rounds = checkpoint_rounds(p.run_dir, p.id);
  for (std::size_t i = 0; i + 2 < rounds.size(); ++i)
    std::filesystem::remove(checkpoint_path(p.run_dir, p.id, rounds[i]));
}

void Peer::load_checkpoint(std::int64_t round) {
  Impl& p = *impl_;
  const auto path = checkpoint_path(p.run_dir, p.id, round);
  const Checkpoint ck = read_checkpoint(path);
  const std::string where = "node " + std::to_string(p.id) + ": checkpoint " + path;
  try {
    const auto& f = ck.fields;
    if (f.at("node") != p.id || f.at("round") != round)
      throw CheckpointError(where + " holds round " + f.at("round").dump() + " of node " +
                            f.at("node").dump() + "; was it renamed or copied?");
    if (f.at("method") != p.method->name())
      throw CheckpointError(where + " was written by method " + f.at("method").get<std::string>() +
                            ", not " + p.method->name());
    auto buffers = checkpoint_buffers(p);
    check_buffers(ck, buffers, where);
    for (std::size_t i = 0; i < buffers.size(); ++i) buffers[i].restore(ck.buffers[i].data);
    p.method->load_state(f.at("method_state"));
    p.steps = f.at("steps").get<std::int64_t>();
    if (p.optimizer) {
      p.optimizer->restore_steps(f.at("optimizer_steps").get<std::size_t>());
      p.trainer->skip_batches(f.at("optimizer_steps").get<std::size_t>());
    }
    p.method_traffic = traffic_from(f.at("traffic").at("method"));
    p.ctrl_traffic = traffic_from(f.at("traffic").at("ctrl"));
    p.time_offset = f.at("time_s").get<double>();
    p.sim.now_s = f.at("sim_time_s").get<double>();
  } catch (const nlohmann::json::exception& e) {
    throw CheckpointError(where + ": a field is missing or has the wrong type (" +
                          std::string(e.what()) + ")");
  }
  log("resumed from the checkpoint of round " + std::to_string(round + 1));
}

std::span<const float> Peer::model() const {
  return impl_->model_span;
}
const nlohmann::json& Peer::last_metrics() const {
  return impl_->last;
}
const gossip::Method& Peer::method() const {
  return *impl_->method;
}
gossip::Method& Peer::method() {
  return *impl_->method;
}
gossip::Traffic& Peer::traffic() {
  return impl_->method_traffic;
}
std::span<float> Peer::eval_buffer() {
  return impl_->average;
}
gossip::Traffic& Peer::ctrl_traffic() {
  return impl_->ctrl_traffic;
}
gossip::SimClock& Peer::sim_clock() {
  return impl_->sim;
}

void Peer::log(const std::string& line) {
  impl_->files.log(line);
  log::debug("node ", impl_->id, ": ", line);
}

}  // namespace rumor::run
