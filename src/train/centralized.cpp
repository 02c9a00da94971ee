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

}  // namespace

CentralizedResult train_centralized(const CentralizedOptions& options,
                                    const std::function<void(const std::string&)>& on_line) {
  CentralizedOptions o = options;
  if (o.batch_size == 0) throw ConfigError("batch_size must be >= 1");
  if (o.local_steps == 0) throw ConfigError("local_steps must be >= 1");
  data::DatasetOptions dopt = o.data;
  dopt.seed = o.seed;
  const data::Dataset ds = data::load_dataset(o.dataset, dopt);
  const std::size_t steps_per_epoch = std::max<std::size_t>(ds.train.size() / o.batch_size, 1);
  if (o.rounds == 0) {
    if (!(o.epochs > 0.0)) throw ConfigError("set rounds (>= 1) or epochs (> 0)");
    o.rounds = static_cast<std::size_t>(std::ceil(o.epochs * static_cast<double>(steps_per_epoch) /
                                                  static_cast<double>(o.local_steps)));
  }
  const std::size_t total_steps = o.rounds * o.local_steps;
  if (o.optimizer.schedule.kind == "cosine" && o.optimizer.schedule.total_steps == 0) {
    o.optimizer.schedule.total_steps = total_steps;  // decay over the whole run
  }
  const json resolved = options_to_json(o);
  const std::string resolved_text =
      o.resolved_config_json.empty() ? resolved.dump(2) : o.resolved_config_json;
  const std::string run_id =
      o.run_id.empty() ? o.name + "-s" + std::to_string(o.seed) + "-" + hash8(resolved_text)
                       : o.run_id;
  const fs::path run_dir = fs::path(o.output_dir) / run_id;
  std::error_code ec;
  fs::create_directories(run_dir, ec);
  if (ec) throw Error("cannot create run directory " + run_dir.string() + ": " + ec.message());
  {
    json cfg = json::parse(resolved_text);
    cfg["rumor_version"] = kVersion;
    cfg["git_revision"] = kGitRevision;
    std::ofstream out(run_dir / "config.json");
    out << cfg.dump(2) << "\n";
    if (!out) throw Error("cannot write " + (run_dir / "config.json").string());
  }
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
  LocalTrainer trainer(*model, ds, std::move(all), optimizer, o.batch_size, o.seed, 0);
  log::info("centralized run ", run_id, ": ", ds.name, " (", ds.train.size(), " train, ",
            ds.test.size(), " test), model ", o.model.name, " (", model->num_params(),
            " parameters), ", o.rounds, " rounds x ", o.local_steps, " steps, batch ",
            o.batch_size);

  CentralizedResult result;
  result.run_dir = run_dir.string();
  const auto t0 = std::chrono::steady_clock::now();
  const std::size_t eval_every = o.eval_every == 0 ? o.rounds : o.eval_every;
  std::size_t step = 0;
  for (std::size_t round = 1; round <= o.rounds; ++round) {
    double loss_sum = 0.0;
    std::size_t correct = 0, count = 0;
    double lr = 0.0;
    for (std::size_t k = 0; k < o.local_steps; ++k) {
      const BatchStats st = trainer.compute_gradient();
      lr = optimizer.step(model->params(), model->grads());
      loss_sum += st.loss;
      correct += st.correct;
      count += st.count;
      ++step;
    }
    if (!std::isfinite(loss_sum)) {
      throw Error("training diverged at round " + std::to_string(round) +
                  " (loss is not finite); lower optimizer.lr");
    }
    nlohmann::ordered_json line{
        {"node", 0},
        {"round", round - 1},  // 0-based, as in decentralized runs' metrics
        {"step", step},
        {"time_s", 0.0},
        {"loss", loss_sum / static_cast<double>(o.local_steps)},
        {"train_acc", static_cast<double>(correct) / static_cast<double>(count)},
        {"lr", lr},
        {"bytes_sent", 0},
        {"bytes_recv", 0},
        {"msgs_sent", 0},
        {"msgs_recv", 0},
        {"msgs_skipped", 0},
        {"ctrl_bytes", 0}};
    if (round % eval_every == 0 || round == o.rounds) {
      const EvalResult ev = trainer.evaluate_test();
      line["test_acc"] = ev.accuracy;
      line["test_loss"] = ev.loss;
      line["consensus_dist"] = 0.0;
      result.test_accuracy = ev.accuracy;
      result.test_loss = ev.loss;
      log::info("round ", round, " step ", step, " epoch ",
                static_cast<double>(step) / static_cast<double>(steps_per_epoch), ": test_acc ",
                ev.accuracy, " test_loss ", ev.loss);
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
  if (o.save_model) model->save((run_dir / "model.pt").string());
  return result;
}

}  // namespace rumor::train
