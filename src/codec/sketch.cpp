// sketch[:ROWS[:COLS[:K]]][:exact|:linear]: Count-Sketch, a standalone stage (optionally
// under ef|). The sender sketches x into a rows x cols table; a receiver recovers the K
// heavy hitters from it, the K largest median-of-rows estimates. The sender runs the same
// recovery on the same table bits, so it knows exactly what every receiver will decode (as a
// method whose public copies must agree needs). Every payload starts [kind][d][rows][cols][K];
// the table is rows * cols fp32, row major. Then, by mode:
//   default (kind 0x15): [source u8 = 0][scale f32][table]. Values are the estimates times
//     the sender's least-squares scale in [0, 1].
//   exact (0x16): [source u8 = 0][table][K fp32]: x at the recovered indices (FetchSGD's
//     second round trip folded into one message: the sender knows what receivers would ask).
//   Both: when the decoded values would remove less than K/d of ||x||^2, the payload is
//     [source u8 = 1][K fp32] instead: x at K indices drawn from (seed, round, sender), which
//     remove K/d of it on average. So E||C(x) - x||^2 <= (1 - K/d) ||x||^2: contractive.
//   linear (0x14): [table] alone, values are the plain estimates: not contractive, but
//     payloads of several senders add (merge_add).
#include <algorithm>
#include <cstring>
#include <mutex>

#include "codec_base.hpp"
#include "rumor/codec/topk.hpp"
#include "simd.hpp"
#include "stage_entry.hpp"

namespace rumor::codec::detail {
namespace {

enum class Mode : std::uint8_t { kLinear = 0x14, kEstimates = 0x15, kExact = 0x16 };
constexpr std::size_t kHeader = 17;

struct SketchSpec {
  std::uint32_t rows = 5;
  // Default: a 5 x 0.003 d table (1.5% of fp32's bytes), K = d / 100 (see codec.hpp).
  Amount cols{0.003, 0};
  Amount heavy{0.01, 0};
  Mode mode = Mode::kEstimates;
};

// The heavy hitters a table names: the K largest median-of-rows estimates, and those
// estimates. Sender and receivers run this same code on the same table bits, so they pick
// the same indices.
struct Recovered {
  std::vector<std::uint32_t> idx;
  std::vector<float> est;  // the estimate at each of idx
};

// Recent recoveries, shared by every encoder and decoder of one codec: a node recovers each
// payload up to three times (its own `sent`, the gate's check, the method's absorb), and
// in-process runs share the codec between nodes. Keyed by the seed and the whole table, so
// a hit is exactly what recovering that table gives. Bounded: about 16 MB of entries.
class RecoveryCache {
 public:
  bool find(std::uint64_t seed, std::size_t d, std::span<const float> table, Recovered& out) {
    std::lock_guard lock(m_);
    for (const auto& e : ring_) {
      if (e.seed == seed && e.d == d && e.table.size() == table.size() &&
          std::memcmp(e.table.data(), table.data(), 4 * table.size()) == 0) {
        out.idx = e.rec.idx;
        out.est = e.rec.est;
        return true;
      }
    }
    return false;
  }
  void put(std::uint64_t seed, std::size_t d, std::span<const float> table, const Recovered& rec) {
    std::lock_guard lock(m_);
    if (ring_.empty()) {
      // All entries at once, sized for this table: later puts reuse them (no allocation).
      const std::size_t bytes = 4 * (table.size() + 2 * rec.idx.size()) + 64;
      ring_.resize(std::clamp<std::size_t>((16u << 20) / bytes, 4, 64));
      for (auto& e : ring_) {
        e.table.reserve(table.size());
        e.rec.idx.reserve(rec.idx.size());
        e.rec.est.reserve(rec.est.size());
      }
    }
    Entry& e = ring_[next_];
    next_ = (next_ + 1) % ring_.size();
    e.seed = seed;
    e.d = d;
    e.table.assign(table.begin(), table.end());
    e.rec = rec;
  }

 private:
  struct Entry {
    std::uint64_t seed = 0;
    std::size_t d = 0;
    std::vector<float> table;
    Recovered rec;
  };
  std::mutex m_;
  std::vector<Entry> ring_;
  std::size_t next_ = 0;
};

class SketchCodec final : public Codec, public std::enable_shared_from_this<SketchCodec> {
 public:
  SketchCodec(SketchSpec s, bool ef) : s_(s), ef_(ef) {
    name_ = std::string(ef_ ? "ef|" : "") + "sketch:" + std::to_string(s_.rows) + ":" +
            s_.cols.str() + ":" + s_.heavy.str() +
            (s_.mode == Mode::kLinear  ? ":linear"
             : s_.mode == Mode::kExact ? ":exact"
                                       : "");
  }
  std::string name() const override { return name_; }
  const std::string& name_ref() const { return name_; }
  Mode mode() const { return s_.mode; }
  bool unbiased() const override { return false; }
  bool contractive() const override { return s_.mode != Mode::kLinear; }
  double delta(std::size_t d) const override {
    if (!contractive() || d == 0) return 0.0;
    return static_cast<double>(heavy(d)) / static_cast<double>(d);
  }
  bool sparse() const override { return true; }
  bool error_feedback() const override { return ef_; }
  bool fixed_size() const override { return s_.mode == Mode::kLinear; }
  std::size_t cols(std::size_t d) const {
    return s_.cols.ratio > 0 ? s_.cols.resolve(d) : static_cast<std::size_t>(s_.cols.count);
  }
  std::size_t heavy(std::size_t d) const { return s_.heavy.resolve(d); }
  std::uint32_t rows() const { return s_.rows; }
  std::size_t table_size(std::size_t d) const {
    return static_cast<std::size_t>(s_.rows) * cols(d);
  }
  // The linear table; or the source flag, then the table with the scale (estimates) or with
  // K values (exact), or K values alone (the fallback).
  std::size_t max_encoded_size(std::size_t d) const override {
    const std::size_t table = 4 * table_size(d);
    const std::size_t k = 4 * heavy(d);
    if (s_.mode == Mode::kLinear) return kHeader + table;
    const std::size_t main = s_.mode == Mode::kExact ? table + k : 4 + table;
    return kHeader + 1 + std::max(main, k);
  }
  std::unique_ptr<Encoder> make_encoder(std::size_t d) const override;
  std::unique_ptr<Decoder> make_decoder(std::size_t d) const override;
  bool mergeable() const override { return s_.mode == Mode::kLinear; }

  // Reads and checks the common header against this codec; returns d.
  std::size_t read_header(Reader& r, std::size_t d_expected) const {
    r.expect_u8(static_cast<std::uint8_t>(s_.mode), "payload kind");
    const std::uint32_t d = r.u32("dimension");
    if (d == 0 || (d_expected != 0 && d != d_expected)) {
      malformed(name_, "dimension " + std::to_string(d) + " does not match the receiver's " +
                           std::to_string(d_expected));
    }
    r.expect_u32(s_.rows, "sketch rows");
    r.expect_u32(u32_of(cols(d)), "sketch columns");
    r.expect_u32(u32_of(heavy(d)), "sketch heavy-hitter count K");
    return d;
  }
  void merge_add(Bytes& acc, ByteView payload) const override;
  RecoveryCache& cache() const { return cache_; }

 private:
  mutable RecoveryCache cache_;  // not part of the codec's value: a const codec fills it
  SketchSpec s_;
  bool ef_;
  std::string name_;
};

class Recovery {
 public:
  const Recovered& run(const SketchCodec& c, std::size_t d, std::span<const float> table,
                       std::uint64_t seed) {
    if (c.cache().find(seed, d, table, out_)) return out_;
    SketchHash hash(seed, c.rows(), u32_of(c.cols(d)));
    est_.resize(d);
    hash.estimate(table.data(), est_, block_);
    selector_.select(est_, c.heavy(d), out_.idx);
    out_.est.resize(out_.idx.size());
    for (std::size_t j = 0; j < out_.idx.size(); ++j) out_.est[j] = est_[out_.idx[j]];
    c.cache().put(seed, d, table, out_);
    return out_;
  }

 private:
  Recovered out_;
  std::vector<float> est_;
  std::vector<float> block_;
  TopkSelector selector_;
};

void SketchCodec::merge_add(Bytes& acc, ByteView payload) const {
  if (!mergeable()) {
    throw CodecError("codec " + name_ + ": payloads cannot be merged (only sketch:...:linear " +
                     "payloads add; this mode carries per-sender values)");
  }
  Reader ra(acc.data(), acc.size(), name_);
  const std::size_t d = read_header(ra, 0);
  const std::size_t n = table_size(d);
  ra.take(4 * n, "sketch table");
  ra.expect_end();
  Reader rb(payload.data(), payload.size(), name_);
  read_header(rb, d);
  rb.take(4 * n, "sketch table");
  rb.expect_end();
  for (std::size_t i = 0; i < n; ++i) {
    float a, b;
    std::memcpy(&a, acc.data() + kHeader + 4 * i, 4);
    std::memcpy(&b, payload.data() + kHeader + 4 * i, 4);
    a += b;
    std::memcpy(acc.data() + kHeader + 4 * i, &a, 4);
  }
}

class SketchDecoder final : public DecoderBase {
 public:
  SketchDecoder(std::shared_ptr<const SketchCodec> c, std::size_t d)
      : DecoderBase(d), c_(std::move(c)) {}

 protected:
  const std::string& name() const override { return c_->name_ref(); }
  bool parse(ByteView bytes, const CodecContext& ctx, std::span<float>) override {
    Reader r(bytes.data(), bytes.size(), c_->name_ref());
    c_->read_header(r, d_);
    const std::size_t k = c_->heavy(d_);
    if (c_->mode() != Mode::kLinear) {
      const std::uint8_t source = r.u8("heavy-hitter source");
      if (source > 1) malformed(c_->name_ref(), "heavy-hitter source " + std::to_string(source));
      if (source == 1) {  // the fallback: K values at the shared random indices
        const std::uint8_t* values = r.take(4 * k, "fallback values");
        r.expect_end();
        block_random_indices(d_, k, ctx, idx_, nullptr);
        vals_.resize(k);
        std::memcpy(vals_.data(), values, 4 * k);
        return false;
      }
    }
    float scale = 1.0f;
    if (c_->mode() == Mode::kEstimates) {
      scale = read_scale(r, "estimate scale");
      if (scale > 1.0f) malformed(c_->name_ref(), "estimate scale above 1");
    }
    const std::size_t n = c_->table_size(d_);
    table_.resize(n);
    std::memcpy(table_.data(), r.take(4 * n, "sketch table"), 4 * n);
    const std::uint8_t* values = nullptr;
    if (c_->mode() == Mode::kExact) values = r.take(4 * k, "heavy-hitter values");
    r.expect_end();
    const Recovered& rec = rec_.run(*c_, d_, table_, ctx.seed);
    idx_ = rec.idx;
    vals_.resize(idx_.size());
    if (values) {
      std::memcpy(vals_.data(), values, 4 * k);
    } else {
      for (std::size_t j = 0; j < idx_.size(); ++j) vals_[j] = scale * rec.est[j];
    }
    return false;
  }

 private:
  std::shared_ptr<const SketchCodec> c_;
  std::vector<float> table_;
  Recovery rec_;
};

class SketchEncoder final : public EncoderBase {
 public:
  SketchEncoder(std::shared_ptr<const SketchCodec> c, std::size_t d)
      : EncoderBase(d, c->error_feedback(), c->make_decoder(d)), c_(std::move(c)) {}

 protected:
  const std::string& codec_name() const override { return c_->name_ref(); }
  void encode_raw(std::span<const float> x, const CodecContext& ctx, Bytes& out) override {
    const std::size_t n = c_->table_size(d_);
    table_.assign(n, 0.0f);
    SketchHash(ctx.seed, c_->rows(), u32_of(c_->cols(d_))).sketch(x, table_.data());
    out.resize(c_->max_encoded_size(d_));
    Writer w(out.data());
    w.u8(static_cast<std::uint8_t>(c_->mode()));
    w.u32(u32_of(d_));
    w.u32(c_->rows());
    w.u32(u32_of(c_->cols(d_)));
    w.u32(u32_of(c_->heavy(d_)));
    if (c_->mode() == Mode::kLinear) {
      std::memcpy(w.pos(), table_.data(), 4 * n);
      return;
    }
    const Recovered& rec = rec_.run(*c_, d_, table_, ctx.seed);
    float scale = 1.0f;
    if (c_->mode() == Mode::kEstimates) scale = least_squares_scale(x, rec);
    if (!beats_random(x, rec, scale)) {
      w.u8(1);
      block_random_indices(d_, c_->heavy(d_), ctx, idx_, nullptr);
      for (const std::uint32_t i : idx_) w.f32(x[i]);
      out.resize(static_cast<std::size_t>(w.pos() - out.data()));
      return;
    }
    w.u8(0);
    if (c_->mode() == Mode::kEstimates) w.f32(scale);
    std::memcpy(w.pos(), table_.data(), 4 * n);
    w.skip(4 * n);
    if (c_->mode() == Mode::kExact) {
      for (const std::uint32_t i : rec.idx) w.f32(x[i]);
    }
    out.resize(static_cast<std::size_t>(w.pos() - out.data()));
  }

 private:
  // Whether what the table gives (estimates times scale, or exact values) removes at least
  // K/d of ||x||^2, as K values at random indices would on average.
  bool beats_random(std::span<const float> x, const Recovered& rec, float scale) const {
    double removed = 0, total = 0;
    for (std::size_t j = 0; j < rec.idx.size(); ++j) {
      const double v = x[rec.idx[j]];
      // ||x||^2 - ||x - y||^2 over the kept coordinates, y the decoded value.
      const double y = c_->mode() == Mode::kExact ? v : static_cast<double>(scale) * rec.est[j];
      removed += v * v - (v - y) * (v - y);
    }
    total = simd::sum_squares(x.data(), x.size());
    return removed * static_cast<double>(d_) >= total * static_cast<double>(c_->heavy(d_));
  }
  // argmin over s in [0, 1] of ||x - s r||, r the estimates at the heavy hitters.
  static float least_squares_scale(std::span<const float> x, const Recovered& rec) {
    double dot = 0, rr = 0;
    for (std::size_t j = 0; j < rec.idx.size(); ++j) {
      dot += static_cast<double>(x[rec.idx[j]]) * rec.est[j];
      rr += static_cast<double>(rec.est[j]) * rec.est[j];
    }
    if (!(rr > 0) || !(dot > 0)) return 0.0f;
    return static_cast<float>(std::min(1.0, dot / rr));
  }

  std::shared_ptr<const SketchCodec> c_;
  std::vector<float> table_;
  std::vector<std::uint32_t> idx_;
  Recovery rec_;
};

std::unique_ptr<Encoder> SketchCodec::make_encoder(std::size_t d) const {
  return make_checked<SketchEncoder>(name_, shared_from_this(), d);
}
std::unique_ptr<Decoder> SketchCodec::make_decoder(std::size_t d) const {
  return make_checked<SketchDecoder>(name_, shared_from_this(), d);
}

StageBuild build(const StageArgs& a) {
  SketchSpec s;
  if (a.numbers() > 0) s.rows = static_cast<std::uint32_t>(a.count(0, "sketch ROWS", 3, 32));
  if (a.numbers() > 1) s.cols = a.amount(1, "sketch COLS");
  if (a.numbers() > 2) s.heavy = a.amount(2, "sketch K");
  if (s.cols.ratio <= 0 && s.cols.count > (1u << 26)) {
    a.bad("sketch COLS " + std::to_string(s.cols.count) + " is too large (max 2^26)");
  }
  if (a.flag("linear") && a.flag("exact")) a.bad("sketch takes one of exact, linear");
  if (a.flag("linear")) s.mode = Mode::kLinear;
  if (a.flag("exact")) s.mode = Mode::kExact;
  StageBuild b;
  b.codec = [s](bool ef) { return std::make_shared<SketchCodec>(s, ef); };
  return b;
}

}  // namespace

StageEntry sketch_stage() {
  return {"sketch",
          StageRole::kStandalone,
          "sketch[:ROWS[:COLS[:K]]][:exact|:linear]",
          "Count-Sketch, default sketch:5:0.003:0.01 (COLS, K: ratio of d or count; ROWS "
          "3..32): the table and a scale for the K heavy hitters' estimates; exact: their exact "
          "values instead; both contractive (delta K/d); linear: the table alone (addable)",
          3,
          {"exact", "linear"},
          {},
          {"sketch:5:40:10", "ef|sketch:4:0.1:0.05:exact", "sketch:3:64:8:linear", "sketch:3:2:2",
           "sketch:3:2:2:exact"},
          build};
}

}  // namespace rumor::codec::detail
