// sketch[:ROWS[:COLS[:K]]]: Count-Sketch, a standalone stage (optionally under ef|).
// Payload [kind][d][rows][cols][K] then rows * cols fp32 (row major).
#include <cstring>

#include "codec_base.hpp"
#include "rumor/codec/topk.hpp"
#include "stage_entry.hpp"

namespace rumor::codec::detail {
namespace {

constexpr std::uint8_t kSketchKind = 0x14;

struct SketchSpec {
  std::uint32_t rows = 5;
  Amount cols{0.002, 0};  // default: 5 x (d / 500) table, K = d / 1000 (see codec.hpp)
  Amount heavy{0.001, 0};
};

class SketchCodec final : public Codec, public std::enable_shared_from_this<SketchCodec> {
 public:
  SketchCodec(SketchSpec s, bool ef) : s_(s), ef_(ef) {
    name_ = std::string(ef_ ? "ef|" : "") + "sketch:" + std::to_string(s_.rows) + ":" +
            s_.cols.str() + ":" + s_.heavy.str();
  }
  std::string name() const override { return name_; }
  const std::string& name_ref() const { return name_; }
  bool unbiased() const override { return false; }
  bool contractive() const override { return false; }
  double delta(std::size_t) const override { return 0.0; }
  bool sparse() const override { return true; }
  bool error_feedback() const override { return ef_; }
  bool fixed_size() const override { return true; }
  std::size_t cols(std::size_t d) const {
    return s_.cols.ratio > 0 ? s_.cols.resolve(d) : static_cast<std::size_t>(s_.cols.count);
  }
  std::size_t heavy(std::size_t d) const { return s_.heavy.resolve(d); }
  std::uint32_t rows() const { return s_.rows; }
  std::size_t max_encoded_size(std::size_t d) const override {
    return 17 + 4 * static_cast<std::size_t>(s_.rows) * cols(d);
  }
  std::unique_ptr<Encoder> make_encoder(std::size_t d) const override;
  std::unique_ptr<Decoder> make_decoder(std::size_t d) const override;
  bool mergeable() const override { return true; }

  // Checks the header against this codec; returns d. Table follows at offset 17.
  std::size_t check_header(ByteView b, std::size_t d_expected) const {
    Reader r(b.data(), b.size(), name_);
    r.expect_u8(kSketchKind, "payload kind");
    const std::uint32_t d = r.u32("dimension");
    if (d == 0 || (d_expected != 0 && d != d_expected)) {
      malformed(name_, "dimension " + std::to_string(d) + " does not match the receiver's " +
                           std::to_string(d_expected));
    }
    r.expect_u32(s_.rows, "sketch rows");
    r.expect_u32(u32_of(cols(d)), "sketch columns");
    r.expect_u32(u32_of(heavy(d)), "sketch heavy-hitter count K");
    r.take(4 * static_cast<std::size_t>(s_.rows) * cols(d), "sketch table");
    r.expect_end();
    return d;
  }
  void merge_add(Bytes& acc, ByteView payload) const override {
    const std::size_t d = check_header(acc, 0);
    check_header(payload, d);
    const std::size_t n = static_cast<std::size_t>(s_.rows) * cols(d);
    for (std::size_t i = 0; i < n; ++i) {
      float a, b;
      std::memcpy(&a, acc.data() + 17 + 4 * i, 4);
      std::memcpy(&b, payload.data() + 17 + 4 * i, 4);
      a += b;
      std::memcpy(acc.data() + 17 + 4 * i, &a, 4);
    }
  }

 private:
  SketchSpec s_;
  bool ef_;
  std::string name_;
};

class SketchDecoder final : public DecoderBase {
 public:
  SketchDecoder(std::shared_ptr<const SketchCodec> c, std::size_t d)
      : DecoderBase(d), c_(std::move(c)) {}

 protected:
  const std::string& name() const override { return c_->name_ref(); }
  bool parse(ByteView bytes, const CodecContext& ctx, std::span<float>) override {
    c_->check_header(bytes, d_);
    const std::size_t n = static_cast<std::size_t>(c_->rows()) * c_->cols(d_);
    table_.resize(n);
    std::memcpy(table_.data(), bytes.data() + 17, 4 * n);
    SketchHash hash(ctx.seed, c_->rows(), u32_of(c_->cols(d_)));
    est_.resize(d_);
    hash.estimate(table_.data(), est_, block_);
    selector_.select(est_, c_->heavy(d_), idx_);
    vals_.resize(idx_.size());
    for (std::size_t j = 0; j < idx_.size(); ++j) vals_[j] = est_[idx_[j]];
    return false;
  }

 private:
  std::shared_ptr<const SketchCodec> c_;
  std::vector<float> table_;
  std::vector<float> est_;
  std::vector<float> block_;
  TopkSelector selector_;
};

class SketchEncoder final : public EncoderBase {
 public:
  SketchEncoder(std::shared_ptr<const SketchCodec> c, std::size_t d)
      : EncoderBase(d, c->error_feedback(), c->make_decoder(d)), c_(std::move(c)) {}

 protected:
  const std::string& codec_name() const override { return c_->name_ref(); }
  void encode_raw(std::span<const float> x, const CodecContext& ctx, Bytes& out) override {
    const std::size_t cols = c_->cols(d_);
    const std::size_t n = static_cast<std::size_t>(c_->rows()) * cols;
    table_.assign(n, 0.0f);
    SketchHash hash(ctx.seed, c_->rows(), u32_of(cols));
    hash.sketch(x, table_.data());
    out.resize(c_->max_encoded_size(d_));
    Writer w(out.data());
    w.u8(kSketchKind);
    w.u32(u32_of(d_));
    w.u32(c_->rows());
    w.u32(u32_of(cols));
    w.u32(u32_of(c_->heavy(d_)));
    std::memcpy(w.pos(), table_.data(), 4 * n);
  }

 private:
  std::shared_ptr<const SketchCodec> c_;
  std::vector<float> table_;
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
  StageBuild b;
  b.codec = [s](bool ef) { return std::make_shared<SketchCodec>(s, ef); };
  return b;
}

}  // namespace

StageEntry sketch_stage() {
  return {"sketch",
          StageRole::kStandalone,
          "sketch[:ROWS[:COLS[:K]]]",
          "Count-Sketch, default sketch:5:0.002:0.001 (COLS, K: ratio of d or count; ROWS 3..32)",
          3,
          {},
          {},
          {"sketch:5:40:10", "ef|sketch:4:0.1:0.05"},
          build};
}

}  // namespace rumor::codec::detail
