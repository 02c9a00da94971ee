// The centralized baseline: all training data on one node, the same metrics lines and
// run directory as a decentralized run. No LibTorch here.
#include "rumor/train/centralized.hpp"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>

#include "rumor/common/error.hpp"
#include "rumor/common/log.hpp"
#include "rumor/train/trainer.hpp"
#include "rumor/version.hpp"

namespace rumor::train {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

json options_to_json(const CentralizedOptions& o) {
  const auto& s = o.optimizer.schedule;
  return json{{"name", o.name},
              {"seed", o.seed},
              {"task", "train"},
              {"data",
               {{"dataset", o.dataset},
                {"data_dir", o.data.data_dir.empty() ? json(nullptr) : json(o.data.data_dir)},
                {"normalize", o.data.normalize},
                {"partition", {{"kind", "iid"}}}}},
              {"model",
               {{"name", o.model.name},
                {"hidden", o.model.hidden},
                {"norm", o.model.norm},
                {"channels", o.model.channels},
                {"path", o.model.path}}},
              {"optimizer",
               {{"name", o.optimizer.name},
                {"lr", o.optimizer.lr},
                {"momentum", o.optimizer.momentum},
                {"nesterov", o.optimizer.nesterov},
                {"weight_decay", o.optimizer.weight_decay},
                {"schedule",
                 {{"kind", s.kind},
                  {"step_size", s.step_size},
                  {"gamma", s.gamma},
                  {"total_steps", s.total_steps},
                  {"min_lr", s.min_lr},
                  {"warmup_steps", s.warmup_steps}}}}},
              {"batch_size", o.batch_size},
              {"local_steps", o.local_steps},
              {"centralized", {{"per_round", o.per_round}, {"nodes", o.nodes}}},
              {"rounds", o.rounds},
              {"epochs", o.epochs},
              {"eval", {{"every", o.eval_every}}},
              {"output", {{"dir", o.output_dir}}}};
}

std::string hash8(const std::string& text) {
  std::uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : text) h = (h ^ c) * 1099511628211ULL;
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return std::string(buf, 8);
}

// One round of `steps` steps; its metrics line (round 0-based, as in decentralized runs).
nlohmann::ordered_json train_round(LocalTrainer& trainer, LocalOptimizer& optimizer, Model& model,
                                   std::size_t steps, std::size_t round, std::size_t& step) {
  double loss_sum = 0.0, lr = 0.0;
  std::size_t correct = 0, count = 0;
  for (std::size_t k = 0; k < steps; ++k) {
    const BatchStats st = trainer.compute_gradient();
    lr = optimizer.step(model.params(), model.grads());
    loss_sum += st.loss;
    correct += st.correct;
    count += st.count;
    ++step;
  }
  if (!std::isfinite(loss_sum))
    throw Error("training diverged at round " + std::to_string(round) +
                " (loss is not finite); lower optimizer.lr");
  return {{"node", 0},
          {"round", round},
          {"step", step},
          {"time_s", 0.0},
          {"loss", loss_sum / static_cast<double>(steps)},
          {"train_acc", static_cast<double>(correct) / static_cast<double>(count)},
          {"lr", lr},
          {"bytes_sent", 0},
          {"bytes_recv", 0},
          {"msgs_sent", 0},
          {"msgs_recv", 0},
          {"msgs_skipped", 0},
          {"ctrl_bytes", 0}};
}

// Creates output_dir/run_id with its config.json (the resolved config and provenance).
fs::path make_run_dir(const CentralizedOptions& o, const std::string& run_id) {
  const fs::path run_dir = fs::path(o.output_dir) / run_id;
  std::error_code ec;
  fs::create_directories(run_dir, ec);
  if (ec) throw Error("cannot create run directory " + run_dir.string() + ": " + ec.message());
  json cfg =
      o.resolved_config_json.empty() ? options_to_json(o) : json::parse(o.resolved_config_json);
  cfg["rumor_version"] = kVersion;
  cfg["git_revision"] = kGitRevision;
  std::ofstream out(run_dir / "config.json");
  out << cfg.dump(2) << "\n";
  if (!out) throw Error("cannot write " + (run_dir / "config.json").string());
  return run_dir;
}

// Samples in one step and steps in one round, from per_round (see per_round_names()).
struct RoundShape {
  std::size_t batch = 0, steps = 0;
};
RoundShape round_shape(const CentralizedOptions& o) {
  if (o.nodes == 0) throw ConfigError("centralized baseline: nodes must be >= 1");
  if (o.per_round == "batch") return {o.batch_size, o.local_steps};
  if (o.per_round == "nodes_batch") return {o.batch_size * o.nodes, o.local_steps};
  if (o.per_round == "nodes_steps") return {o.batch_size, o.local_steps * o.nodes};
  std::string valid;
  for (const auto& [name, help] : per_round_names()) valid += (valid.empty() ? "" : ", ") + name;
  throw ConfigError("centralized baseline: unknown per_round \"" + o.per_round +
                    "\"; valid: " + valid);
}

// n times the steps per round: step schedules still count rounds, as in the peers' runs.
void scale_schedule(OptimizerOptions& opt, std::size_t factor) {
  opt.schedule.step_size *= factor;
  opt.schedule.warmup_steps *= factor;
  opt.schedule.total_steps *= factor;
}

void write_summary(const fs::path& run_dir, const CentralizedOptions& o,
                   const CentralizedResult& r) {
  const json s{{"method", "centralized"},
               {"per_round", o.per_round},
               {"nodes_matched", o.nodes},
               {"batch", r.batch},
               {"steps_per_round", r.steps_per_round},
               {"samples_per_round", r.batch * r.steps_per_round},
               {"rounds", r.rounds},
               {"steps", r.steps},
               {"epochs", r.epochs},
               {"final", {{"test_acc_mean", r.test_accuracy}, {"test_loss", r.test_loss}}},
               {"wall_time_s", r.seconds}};
  std::ofstream(run_dir / "summary.json") << s.dump(2) << "\n";
}

}  // namespace

const std::vector<std::pair<std::string, std::string>>& per_round_names() {
  static const std::vector<std::pair<std::string, std::string>> names = {
      {"nodes_batch",
       "local_steps steps on batches of n x batch_size: the samples n peers take in a round"},
      {"nodes_steps", "n x local_steps steps of batch_size: the same samples and steps as n peers"},
      {"batch", "local_steps steps of batch_size: one peer's samples (n times fewer)"}};
  return names;
}

CentralizedResult train_centralized(const CentralizedOptions& options,
                                    const std::function<void(const std::string&)>& on_line) {
  CentralizedOptions o = options;
  if (o.batch_size == 0) throw ConfigError("batch_size must be >= 1");
  if (o.local_steps == 0) throw ConfigError("local_steps must be >= 1");
  const RoundShape shape = round_shape(o);
  if (shape.steps != o.local_steps) scale_schedule(o.optimizer, shape.steps / o.local_steps);
  data::DatasetOptions dopt = o.data;
  dopt.seed = o.seed;
  const data::Dataset ds = data::load_dataset(o.dataset, dopt);
  const std::size_t steps_per_epoch = std::max<std::size_t>(ds.train.size() / shape.batch, 1);
  if (o.rounds == 0) {
    if (!(o.epochs > 0.0)) throw ConfigError("set rounds (>= 1) or epochs (> 0)");
    o.rounds = static_cast<std::size_t>(std::ceil(o.epochs * static_cast<double>(steps_per_epoch) /
                                                  static_cast<double>(shape.steps)));
  }
  const std::size_t total_steps = o.rounds * shape.steps;
  if (o.optimizer.schedule.kind == "cosine" && o.optimizer.schedule.total_steps == 0) {
    o.optimizer.schedule.total_steps = total_steps;  // decay over the whole run
  }
  const std::string run_id = [&] {
    const auto text =
        o.resolved_config_json.empty() ? options_to_json(o).dump(2) : o.resolved_config_json;
    return o.run_id.empty() ? o.name + "-s" + std::to_string(o.seed) + "-" + hash8(text) : o.run_id;
  }();
  const fs::path run_dir = make_run_dir(o, run_id);
  if (o.log_to_run_dir) log::set_file((run_dir / "node-0.log").string());
  struct LogFileReset {
    bool active;
    ~LogFileReset() {
      if (active) log::set_file("");
    }
  } log_reset{o.log_to_run_dir};

  std::ofstream metrics(run_dir / "node-0.jsonl");
  if (!metrics) throw Error("cannot write " + (run_dir / "node-0.jsonl").string());

  auto model = Model::create(o.model, ModelInput{ds.shape, ds.num_classes}, o.seed);
  LocalOptimizer optimizer(model->num_params(), o.optimizer);
  std::vector<std::size_t> all(ds.train.size());
  std::iota(all.begin(), all.end(), std::size_t{0});
  LocalTrainer trainer(*model, ds, std::move(all), optimizer, shape.batch, o.seed, 0);
  log::info("centralized run ", run_id, ": ", ds.name, " (", ds.train.size(), " train, ",
            ds.test.size(), " test), model ", o.model.name, " (", model->num_params(),
            " parameters), ", o.rounds, " rounds x ", shape.steps, " steps, batch ", shape.batch,
            " (per_round ", o.per_round, ", matching ", o.nodes, " peers)");

  CentralizedResult result;
  result.run_dir = run_dir.string();
  const auto t0 = std::chrono::steady_clock::now();
  const std::size_t eval_every = o.eval_every == 0 ? o.rounds : o.eval_every;
  std::size_t step = 0;
  for (std::size_t round = 1; round <= o.rounds; ++round) {
    auto line = train_round(trainer, optimizer, *model, shape.steps, round - 1, step);
    if (round % eval_every == 0 || round == o.rounds) {
      const EvalResult ev = trainer.evaluate_test();
      line["test_acc"] = ev.accuracy;
      line["test_loss"] = ev.loss;
      line["consensus_dist"] = 0.0;
      result.test_accuracy = ev.accuracy;
      result.test_loss = ev.loss;
      log::info("round ", round - 1, " (", round, " of ", o.rounds, " done), step ", step,
                ", epoch ", static_cast<double>(step) / static_cast<double>(steps_per_epoch),
                ": test_acc ", ev.accuracy, " test_loss ", ev.loss);
    }
    line["time_s"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const std::string text = line.dump();
    metrics << text << "\n" << std::flush;
    if (on_line) on_line(text);
  }
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  result.rounds = o.rounds;
  result.steps = step;
  result.epochs = static_cast<double>(step) / static_cast<double>(steps_per_epoch);
  result.batch = shape.batch;
  result.steps_per_round = shape.steps;
  if (o.save_model) model->save((run_dir / "model.pt").string());
  write_summary(run_dir, o, result);
  return result;
}

}  // namespace rumor::train
