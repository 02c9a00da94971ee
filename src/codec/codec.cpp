// Codec chains: an optional sparsifier, then a value codec, optionally under error feedback.
// What each stage does is asked of its object (stages.hpp); no stage is named here.
#include <bit>
#include <cstring>

#include "codec_base.hpp"
#include "spec.hpp"

static_assert(std::endian::native == std::endian::little, "codec payloads are little-endian");

namespace rumor::codec::detail {
namespace {

constexpr std::uint8_t kDenseKind = 0x11;
constexpr std::uint64_t kQsgdStream = 0x71736764ULL;  // "qsgd": the value codecs' randomness

// No sparsifier: every coordinate, header [kind][d].
class Dense final : public Sparsifier {
 public:
  class DenseWork final : public Work {
   public:
    explicit DenseWork(std::size_t d) : d_(d) {}
    void encode(std::span<const float>, const CodecContext&, Writer& w,
                std::vector<std::uint32_t>&) override {
      w.u8(kDenseKind);
      w.u32(u32_of(d_));
    }
    void decode(Reader& r, const CodecContext&, std::vector<std::uint32_t>&) override {
      r.expect_u8(kDenseKind, "payload kind");
      r.expect_u32(u32_of(d_), "dimension");
    }

   private:
    std::size_t d_;
  };
  std::string name() const override { return ""; }
  std::size_t kept(std::size_t d) const override { return d; }
  bool unbiased() const override { return true; }
  bool contractive() const override { return true; }
  double delta(std::size_t) const override { return 1.0; }
  bool fixed_size() const override { return true; }
  std::size_t max_header_size(std::size_t) const override { return 5; }
  std::unique_ptr<Work> make_work(std::size_t d) const override {
    return std::make_unique<DenseWork>(d);
  }
};

class ChainCodec final : public Codec, public std::enable_shared_from_this<ChainCodec> {
 public:
  explicit ChainCodec(const ParsedSpec& s)
      : ef_(s.ef), dense_(!s.sparsifier), sp_(s.sparsifier), value_(s.value) {
    if (!value_) value_ = std::shared_ptr<const ValueCodec>(make_fp32());
    const bool default_value = value_->name() == make_fp32()->name();
    name_ = std::string(ef_ ? "ef|" : "");
    if (!sp_) {
      name_ += value_->name();
      sp_ = std::make_shared<Dense>();
    } else {
      name_ += sp_->name() + (default_value ? "" : "|" + value_->name());
    }
  }
  std::string name() const override { return name_; }
  const std::string& name_ref() const { return name_; }
  bool dense() const { return dense_; }
  bool unbiased() const override { return sp_->unbiased() && value_->unbiased(); }
  bool contractive() const override { return sp_->contractive() && value_->contractive(); }
  double delta(std::size_t d) const override {
    if (!contractive() || d == 0) return 0.0;
    // A later stage acts on the kept values only, orthogonal to what was dropped:
    // ||C2(T x) - x||^2 <= ||x||^2 - delta2 ||T x||^2 <= (1 - delta2 delta1) ||x||^2.
    return sp_->delta(d) * value_->delta(kept(d));
  }
  bool sparse() const override { return !dense_; }
  bool error_feedback() const override { return ef_; }
  bool fixed_size() const override { return sp_->fixed_size(); }
  std::size_t kept(std::size_t d) const { return sp_->kept(d); }
  std::size_t max_encoded_size(std::size_t d) const override {
    return sp_->max_header_size(d) + value_->size(kept(d));
  }
  std::unique_ptr<Encoder> make_encoder(std::size_t d) const override;
  std::unique_ptr<Decoder> make_decoder(std::size_t d) const override;
  bool mergeable() const override { return dense() && value_->linear(); }
  void merge_add(Bytes& acc, ByteView payload) const override;
  const Sparsifier& sparsifier() const { return *sp_; }
  const ValueCodec& value() const { return *value_; }

 private:
  bool ef_;
  bool dense_;
  std::shared_ptr<const Sparsifier> sp_;
  std::shared_ptr<const ValueCodec> value_;
  std::string name_;
};

void ChainCodec::merge_add(Bytes& acc, ByteView payload) const {
  if (!mergeable()) {
    throw CodecError("codec " + name_ +
                     ": payloads cannot be merged (only fp32 and sketch are linear)");
  }
  // fp32: [kind][d][fp32 header (5)][d floats]
  if (acc.size() < 5 || payload.size() != acc.size()) {
    throw CodecError("codec " + name_ + ": merge of payloads of different sizes (" +
                     std::to_string(acc.size()) + " and " + std::to_string(payload.size()) +
                     " bytes)");
  }
  std::uint32_t d;
  std::memcpy(&d, acc.data() + 1, 4);
  auto dec = make_decoder(d);
  std::vector<float> a(d), b(d);
  dec->decode(acc, {}, a);
  dec->decode(payload, {}, b);
  for (std::size_t i = 0; i < d; ++i) a[i] += b[i];
  std::memcpy(acc.data() + 10, a.data(), 4 * static_cast<std::size_t>(d));
}

class ChainDecoder final : public DecoderBase {
 public:
  ChainDecoder(std::shared_ptr<const ChainCodec> c, std::size_t d)
      : DecoderBase(d), c_(std::move(c)), k_(c_->kept(d)), work_(c_->sparsifier().make_work(d)) {}
  ByteView raw_values(ByteView bytes, const CodecContext& ctx) override {
    if (!c_->dense()) return {};
    Reader r(bytes.data(), bytes.size(), c_->name_ref());
    work_->decode(r, ctx, idx_);
    const std::uint8_t* p = c_->value().view(r, d_);
    if (!p) return {};
    r.expect_end();
    return {p, 4 * d_};
  }

 protected:
  const std::string& name() const override { return c_->name_ref(); }
  bool parse(ByteView bytes, const CodecContext& ctx, std::span<float> dense) override {
    Reader r(bytes.data(), bytes.size(), c_->name_ref());
    work_->decode(r, ctx, idx_);
    if (c_->dense()) {
      c_->value().decode(r, dense);
      r.expect_end();
      return true;
    }
    vals_.resize(k_);
    c_->value().decode(r, vals_);
    r.expect_end();
    work_->rescale(vals_);
    return false;
  }

 private:
  std::shared_ptr<const ChainCodec> c_;
  std::size_t k_;
  std::unique_ptr<Sparsifier::Work> work_;
};

class ChainEncoder final : public EncoderBase {
 public:
  ChainEncoder(std::shared_ptr<const ChainCodec> c, std::size_t d)
      : EncoderBase(d, c->error_feedback(), c->make_decoder(d)),
        c_(std::move(c)),
        work_(c_->sparsifier().make_work(d)) {}

 protected:
  const std::string& codec_name() const override { return c_->name_ref(); }
  void encode_raw(std::span<const float> x, const CodecContext& ctx, Bytes& out) override {
    out.resize(c_->max_encoded_size(d_));
    Writer w(out.data());
    Rng rng = Rng::derive(ctx.seed, ctx.round, ctx.sender, kQsgdStream);
    work_->encode(x, ctx, w, idx_);
    std::span<const float> values = x;
    if (!c_->dense()) {
      vals_.resize(idx_.size());
      for (std::size_t j = 0; j < idx_.size(); ++j) vals_[j] = x[idx_[j]];
      values = vals_;
    }
    c_->value().encode(values, rng, w.pos());
    const std::size_t used =
        static_cast<std::size_t>(w.pos() - out.data()) + c_->value().size(values.size());
    out.resize(used);
  }

 private:
  std::shared_ptr<const ChainCodec> c_;
  std::unique_ptr<Sparsifier::Work> work_;
  std::vector<std::uint32_t> idx_;
  std::vector<float> vals_;
};

std::unique_ptr<Encoder> ChainCodec::make_encoder(std::size_t d) const {
  return make_checked<ChainEncoder>(name_, shared_from_this(), d);
}
std::unique_ptr<Decoder> ChainCodec::make_decoder(std::size_t d) const {
  return make_checked<ChainDecoder>(name_, shared_from_this(), d);
}

}  // namespace

std::shared_ptr<const Codec> build_chain(const ParsedSpec& spec) {
  return std::make_shared<ChainCodec>(spec);
}

}  // namespace rumor::codec::detail
