#pragma once
// Consensus methods on flat float vectors. A peer's round is a sequence of steps that a
// driver calls; nothing here blocks on the network, so one driver can run hundreds of
// peers on a small thread pool (phase by phase) and another one peer per process over TCP:
//
//   method.local(round, work)                 local SGD steps (work computes gradients)
//   for stage in 0 .. method.stages(round)-1:
//     for (to, msg) in method.produce(round, stage): transport.send(to, msg)
//     wait for method.expect(round, stage), then method.absorb(round, stage, messages)
//
// Threads: a Method belongs to one peer and is called from one thread at a time.
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "rumor/codec/codec.hpp"
#include "rumor/common/option.hpp"
#include "rumor/net/transport.hpp"
#include "rumor/topology/topology.hpp"

namespace rumor::gossip {

class SampleWork;   // rumor/gossip/qdata.hpp: sample access for data-sharing methods
class Pairwise;     // rumor/gossip/pairwise.hpp: asynchronous pairwise exchanges
struct MethodInfo;  // the registry entry (below)

// Local training seen from a method: gradients at the model vector, optimizer steps on any
// vector. Implemented with LibTorch by the runtime, and with simple objectives in tests.
class LocalWork {
 public:
  virtual ~LocalWork() = default;
  struct Stats {
    double loss = 0.0;
    double accuracy = 0.0;
  };
  // Minibatch gradient at the current model vector (the span the method was given).
  virtual Stats gradient() = 0;
  virtual std::span<const float> grads() const = 0;
  // Local optimizer step on `x` with the last gradient (momentum, weight decay, schedule).
  virtual void step(std::span<float> x) = 0;
  // Optimizer step on `x` along `direction` instead of the gradient (methods with their
  // own momentum, e.g. QGM, with the optimizer's momentum at 0).
  virtual void step(std::span<float> x, std::span<const float> direction) = 0;
  // Learning rate of the next step; local steps taken so far; epochs of the local shard.
  virtual double lr() const = 0;
  virtual std::int64_t steps() const = 0;
  virtual double epochs() const = 0;
  // False for task average: no gradients, methods only gossip.
  virtual bool trains() const { return true; }
  // Samples, per-sample losses and gradients on given samples (qdata); null if unavailable.
  virtual SampleWork* sample_work() { return nullptr; }
};

// Task average: nothing to train, methods only gossip.
class NoLocalWork : public LocalWork {
 public:
  Stats gradient() override { return {}; }
  std::span<const float> grads() const override { return {}; }
  void step(std::span<float>) override {}
  void step(std::span<float>, std::span<const float>) override {}
  double lr() const override { return 0; }
  std::int64_t steps() const override { return 0; }
  double epochs() const override { return 0; }
  bool trains() const override { return false; }
};

// Everything a method is told about its node.
struct MethodContext {
  int self = 0;
  const Topology* topology = nullptr;  // outlives the method
  // Largest magnitude accepted in a received value (network.max_abs_value); larger ones
  // (and non-finite ones) make the message refused.
  double max_abs_value = 1e6;
  std::uint64_t seed = 1;
  int local_steps = 1;
  std::shared_ptr<const codec::Codec> codec;  // payload codec
  // True when every node starts from the same model (task train): public copies can start
  // from it instead of zero.
  bool identical_init = true;
  // True when a message may be lost on a live link (the in-process loss model): methods that
  // keep per-edge sums then put them in every message, not only after a known loss.
  bool lossy_links = false;
  // True when no message can be lost at all (in-process, no loss model, no node that stops):
  // state kept only to repair losses (push-sum's per-edge running sums) can be left out.
  bool reliable_links = false;
  std::uint32_t codec_id = 0;                        // tag sent in message headers
  nlohmann::json params = nlohmann::json::object();  // the config's "method" object
  const MethodInfo* info = nullptr;                  // set by make_method: the declared options
};

struct Outgoing {
  int to = 0;
  net::Message message;
};

// A message the method waits for in a stage.
struct Expected {
  int sender = 0;
  net::MessageKind kind = net::MessageKind::kGossip;
  net::LinkKind link = net::LinkKind::kData;
  std::int64_t round = 0;
  std::uint32_t stage = 0;  // checked for multi-stage exchanges only (see RingAllreduce)
  bool any_stage = true;
};

// Why a received message is refused (empty reason: accepted). `reason` is a short category
// counted per sender ("non-finite values", "codec error", ...); `detail` says more, once.
struct Refusal {
  std::string reason;
  std::string detail;
  explicit operator bool() const { return !reason.empty(); }
};

// A multi-stage message exchange driven by a driver (see the top of this file). Methods
// are exchanges; so is the ring all-reduce used for exact averages.
class Exchange {
 public:
  virtual ~Exchange() = default;
  // The gate: every message a driver takes passes check() before absorb() sees it, and a
  // refused one is dropped (counted per sender, see Traffic). check() changes no state the
  // results depend on; absorb() may then trust sizes, tags and values.
  virtual Refusal check(const net::Message& m) = 0;
  // Communication stages of a round (0: no communication).
  virtual int stages(std::int64_t round) const = 0;
  virtual std::vector<Outgoing> produce(std::int64_t round, int stage) = 0;
  virtual std::vector<Expected> expect(std::int64_t round, int stage) const = 0;
  // `received` holds the expected messages (any order); implementations sort by sender so
  // results do not depend on arrival order.
  virtual void absorb(std::int64_t round, int stage, std::vector<net::Message>& received) = 0;
  // True: before waiting, the driver also hands over every gossip message that has already
  // arrived with a round up to early_round_limit(round) (push-sum: late and, with overlap,
  // early messages); expect() then leaves out what was absorbed.
  virtual bool absorbs_early() const { return false; }
  virtual std::int64_t early_round_limit(std::int64_t /*round*/) const {
    return std::numeric_limits<std::int64_t>::max();
  }
};

struct MethodStats {
  std::uint64_t skipped = 0;    // sends suppressed by an event trigger (cumulative)
  std::uint64_t triggered = 0;  // sends that went out under a trigger (cumulative)
};

class Method : public Exchange {
 public:
  virtual std::string name() const = 0;

  // `model` is the vector gradients are taken at and that is evaluated (x, or z = x / w
  // for push-sum). It stays owned by the caller and must outlive the method. init()
  // captures the initial state from it (public copies start there, too).
  virtual void init(std::span<float> model) = 0;

  // The local part of a round: `local_steps` steps on the node's own data.
  virtual LocalWork::Stats local(std::int64_t round, LocalWork& work);

  int stages(std::int64_t round) const override { return 1; }
  // Default gate of a gossip method: kind, codec tag, finite scalars, and a payload that the
  // codec decodes into finite values within max_abs_value.
  Refusal check(const net::Message& m) override;

  // Push-sum weight (NaN for methods without one).
  virtual double weight() const { return std::numeric_limits<double>::quiet_NaN(); }
  virtual MethodStats stats() const { return {}; }
  // Method-specific fields merged into each round's metrics line (e.g. qdata's byte split).
  virtual nlohmann::json round_metrics() const { return nlohmann::json::object(); }
  // Asynchronous methods (MethodInfo::asynchronous): their pairwise protocol; null otherwise.
  virtual Pairwise* pairwise() { return nullptr; }

  // Checkpoint: the method's own state (beyond the model vector and the optimizer): small
  // values as JSON, and float buffers (numerators, public copies, error-feedback memory).
  virtual nlohmann::json save_state() const { return nlohmann::json::object(); }
  virtual void load_state(const nlohmann::json& state) {}
  struct StateBuffer {
    std::string name;
    std::span<const float> data;                          // saved from here
    std::function<void(std::span<const float>)> restore;  // loaded through this
  };
  virtual std::vector<StateBuffer> state_buffers() { return {}; }

  // Faults (on_peer_failure: continue). A neighbour marked down is left out of
  // the mixing from `round` on until it is marked up again: expect() stops waiting for it,
  // its mixing weight goes to this node, and push-sum keeps the share it would have sent.
  // Called by the runtime between rounds (TCP: from link events and missed deadlines;
  // in-process: from the fault schedule). allreduce cannot leave a node out (it throws).
  virtual void set_peer_down(int peer, std::int64_t round);
  virtual void set_peer_up(int peer, std::int64_t round);
  bool peer_is_down(int peer) const;
  // Something sent to `peer` may not have arrived (a send dropped, or its link broke and came
  // back). Called by the runtime between rounds; push-sum then sends its running sums on
  // that edge once, which restores whatever was lost.
  virtual void delivery_failed(int /*peer*/) {}
  // Rejoin of a restarted peer (see src/run/node.cpp for the round agreement):
  //  1. the restarted peer sends each live neighbour rejoin_request(neighbour, ...);
  //     from_checkpoint: it has loaded its own state and only needs to be let back in;
  //  2. the neighbour answers rejoin_offer(request, round): it mixes with the peer again
  //     from `round` on (set_peer_up) and, unless the peer has a checkpoint, hands it its
  //     model (push-sum: half of its numerator and weight, so the total mass is unchanged);
  //  3. the restarted peer calls rejoin_accept(offer) for every offer it got: models are
  //     averaged, push-sum mass is added, per-link state (running sums, public copies) is
  //     taken over so both ends agree again.
  // Graceful leave (elastic membership): after its last round a leaving node hands what it
  // holds to its live neighbours, one goodbye (net::MessageKind::kBye, round: its first round
  // out) each, so nothing is lost: push-sum splits its numerator and weight equally among
  // them and settles the running sums of each edge. The default hands over nothing.
  virtual std::vector<Outgoing> leave(std::int64_t round);
  // A leaving neighbour's goodbye: its share is added and it is out of the mixing from
  // `round` on. Throws ProtocolError naming the sender when the message is malformed.
  virtual void accept_leave(const net::Message& bye, std::int64_t round);
  virtual net::Message rejoin_request(int peer, bool from_checkpoint);
  // Live mixing (elastic membership; methods that mix with Metropolis weights, dpsgd):
  // Metropolis-Hastings weights over the live graph, W(i, k) = 1 / (1 + max(d_i, d_k)), from
  // the live degrees the nodes announce (note_degree: node, first round it holds, degree;
  // before any announcement a node's degree is `initial[node]`). An edge weighs nothing in the
  // round it comes up (set_peer_up: both ends agree on that round), so a node never gives its
  // neighbours more than d / (1 + d) and the mixing stays symmetric and stochastic. Off
  // (topology weights) unless a driver calls use_live_mixing.
  void use_live_mixing(std::vector<int> initial);
  void note_degree(int node, std::int64_t from, int degree);
  bool live_mixing() const { return !initial_degree_.empty(); }
  // Neighbours not marked down (over one schedule period).
  int live_degree() const;
  virtual net::Message rejoin_offer(const net::Message& request, std::int64_t round);
  virtual void rejoin_accept(const net::Message& offer);
  // An offer this node made (as rejoin_offer returned it) that the peer declined: what it
  // handed over comes back (push-sum: the half of x and weight), so no mass is lost.
  virtual void rejoin_declined(const net::Message& /*offer*/) {}

 protected:
  // `peers` without the ones marked down.
  std::vector<int> live(std::vector<int> peers) const;
  // W(to, from) of `round` (to != from): the topology's, or the live mixing's.
  double mixing_weight(int to, int from, std::int64_t round) const;
  // What a node keeps of its own vector in `round`: one minus the weights of the
  // in-neighbours it heard from.
  float kept_mixing_weight(std::int64_t round, const std::vector<net::Message>& received) const;
  // Rejoin helpers: whether an offer should carry a model, and how many were accepted.
  static bool wants_model(const net::Message& request) {
    return request.scalars.empty() || request.scalars[0] == 0.0;
  }
  int offers_accepted_ = 0;
  // True for methods whose senders skip rounds with a "not triggered" notice (an empty
  // payload flagged Message::not_triggered: choco, squarm); the others refuse such notices.
  virtual bool sends_not_triggered() const { return false; }
  // check() in two parts: kind, codec tag and finite scalars; then the payload decoded by
  // the codec (model-sized) into finite values within max_abs_value.
  Refusal check_header(const net::Message& m) const;
  // `dim`: floats the payload decodes to (0: the model's size).
  Refusal check_payload(const net::Message& m, std::size_t dim = 0);
  // check() helpers for methods with payloads of their own.
  Refusal check_values(std::span<const float> v) const;
  // The same for raw fp32 payload values (codec::Decoder::raw_values), read in place.
  Refusal check_raw_values(codec::ByteView raw) const;
  Refusal check_values(std::span<const double> v, double bound) const;
  // Rejoin: throws ProtocolError naming the offer's sender when `r` refuses its values.
  void refuse_offer_values(const Refusal& r, const net::Message& offer) const;

  explicit Method(MethodContext ctx) : ctx_(std::move(ctx)) {}
  // The method's option `key` (method.<key> in a config): the config's value, else the
  // default its registry entry declares.
  template <typename T>
  T param(const std::string& key) const {
    return option(key).get<T>();
  }
  const nlohmann::json& option(const std::string& key) const;
  MethodContext ctx_;
  std::span<float> model_;
  std::vector<char> down_;                              // per node id: 1 while marked down
  std::vector<int> initial_degree_;                     // live mixing: per node id
  std::map<int, std::map<std::int64_t, int>> degrees_;  // node -> first round -> degree
  std::map<int, std::int64_t> up_since_;                // neighbour -> round it came up
  std::unique_ptr<codec::Decoder> check_decoder_;
  std::size_t check_dim_ = 0;        // what check_decoder_ was made for
  std::vector<float> check_buffer_;  // qdata's checks
};

// What a method needs from the run; checked before a run starts.
struct Requirements {
  bool undirected = false;         // symmetric mixing (dpsgd, choco, squarm, qgm)
  bool static_schedule = false;    // one graph for every round
  bool contractive_codec = false;  // choco, squarm
  // Under peer sampling (random directed peers each round) it averages uniformly over the
  // models that arrived instead (dpsgd); methods without the two needs above take it as is.
  bool peer_sampling = false;
};

// How a method's local steps use the optimizer's momentum.
enum class LocalMomentum {
  kOptimizer,  // optimizer.momentum as configured
  kNesterov,   // with optimizer.momentum 0: Nesterov steps with the method's beta (SQuARM)
  kOwn,        // the method keeps its own momentum: optimizer.momentum must be 0 (QGM)
};

// A method's registry entry is its whole integration: everything the runtime needs to know
// about it is here, defined in the method's own file (MethodInfo <name>_method()) and
// listed on one line in method.cpp.
struct MethodInfo {
  std::string name;
  std::string description;
  Requirements needs;
  std::function<std::unique_ptr<Method>(MethodContext)> make;
  LocalMomentum momentum = LocalMomentum::kOptimizer;
  std::vector<Option> options;  // its keys (method.<key>): type, default, range, help
  // Why method.aggregation (Byzantine-robust mixing) does not fit this method, for methods
  // that do not declare it; a run asking for it is refused with this reason.
  std::string no_aggregation;
  // No global rounds: the drivers of run/async_*.cpp run it through pairwise(); `rounds`
  // counts each node's own local steps.
  bool asynchronous = false;
  // Run keys whose default differs for this method (diloco: optimizer.name adamw): the
  // value a run gets when its config leaves the key unset. `rumor config keys` shows them.
  std::vector<std::pair<std::string, nlohmann::json>> run_defaults{};
};
// The registry entry of method class M, built from its MethodContext.
template <typename M>
MethodInfo method_entry(std::string name, std::string description, Requirements needs,
                        LocalMomentum momentum, std::vector<Option> options,
                        std::string no_aggregation = {}) {
  return {std::move(name),
          std::move(description),
          needs,
          [](MethodContext ctx) -> std::unique_ptr<Method> {
            return std::make_unique<M>(std::move(ctx));
          },
          momentum,
          std::move(options),
          std::move(no_aggregation)};
}

// The value of option `key` of `method`: params[key], else the declared default. Throws
// Error for a key the method does not declare.
const nlohmann::json& option_value(const MethodInfo& method, const nlohmann::json& params,
                                   const std::string& key);

const std::vector<MethodInfo>& methods();
// The registry entry of `name`; throws ConfigError naming the nearest valid method.
const MethodInfo& method_info(const std::string& name);
// Whether the method declares method.aggregation (its messages are models it averages).
bool takes_aggregation(const MethodInfo& method);
// Creates a method after checking its requirements against the topology and codec (and
// that method.aggregation other than mean is one of its options); throws ConfigError
// saying which requirement failed and what to change.
std::unique_ptr<Method> make_method(const std::string& name, MethodContext ctx);

}  // namespace rumor::gossip
