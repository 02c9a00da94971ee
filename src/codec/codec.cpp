// Codec chains (optional sparsifier + value codec), Count-Sketch, and error feedback.
#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstring>

#include "rumor/codec/topk.hpp"
#include "spec.hpp"

static_assert(std::endian::native == std::endian::little, "codec payloads are little-endian");

namespace rumor::codec::detail {

std::size_t Amount::resolve(std::size_t d) const {
  std::size_t k;
  if (ratio > 0.0) {
    k = static_cast<std::size_t>(std::llround(ratio * static_cast<double>(d)));
  } else {
    k = static_cast<std::size_t>(count);
  }
  return std::clamp<std::size_t>(k, 1, std::max<std::size_t>(d, 1));
}

std::string Amount::str() const {
  if (ratio <= 0.0) return std::to_string(count);
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, ratio);
  std::string s(buf, res.ptr);
  if (s.find_first_of(".eE") == std::string::npos) s += ".0";  // keep it a ratio
  return s;
}

namespace {

enum class Kind : std::uint8_t { kDense = 0x11, kTopk = 0x12, kRandk = 0x13, kSketch = 0x14 };

constexpr std::uint64_t kRandkStream = 0x72616e646bULL;  // "randk"
constexpr std::uint64_t kQsgdStream = 0x71736764ULL;     // "qsgd"
constexpr std::size_t kMaxDim = 0xffffffffULL;

std::uint32_t u32_of(std::size_t v) {
  return static_cast<std::uint32_t>(v);
}

void check_dim(const std::string& name, std::size_t d) {
  if (d == 0 || d > kMaxDim) {
    throw CodecError("codec " + name + ": dimension " + std::to_string(d) +
                     " is out of range (1 .. 2^32-1)");
  }
}

void check_size(const std::string& name, const char* what, std::size_t got, std::size_t want) {
  if (got != want) {
    throw CodecError("codec " + name + ": " + what + " has " + std::to_string(got) +
                     " floats, expected " + std::to_string(want));
  }
}

void axpy(std::span<float> acc, std::span<const float> v, float w) {
  if (w == 1.0f) {
    for (std::size_t i = 0; i < acc.size(); ++i) acc[i] += v[i];
  } else {
    for (std::size_t i = 0; i < acc.size(); ++i) acc[i] += w * v[i];
  }
}

// Common parts of both codec families: a decoded payload is either dense (vals_ of size d)
// or sparse (idx_ and vals_ of size k).
class DecoderBase : public Decoder {
 public:
  explicit DecoderBase(std::size_t d) : d_(d) {}
  std::size_t dim() const override { return d_; }
  void decode(ByteView bytes, const CodecContext& ctx, std::span<float> out) override {
    check_size(name(), "decode output", out.size(), d_);
    if (parse(bytes, ctx, out)) return;  // dense, written straight into out
    std::fill(out.begin(), out.end(), 0.0f);
    for (std::size_t j = 0; j < idx_.size(); ++j) out[idx_[j]] = vals_[j];
  }
  void decode_add(ByteView bytes, const CodecContext& ctx, std::span<float> acc,
                  float weight) override {
    check_size(name(), "decode_add accumulator", acc.size(), d_);
    dense_.resize(d_);
    if (parse(bytes, ctx, dense_)) {
      axpy(acc, dense_, weight);
      return;
    }
    for (std::size_t j = 0; j < idx_.size(); ++j) acc[idx_[j]] += weight * vals_[j];
  }

 protected:
  // Validates the payload; returns true when it decoded densely into `dense` (size d),
  // false when it filled idx_/vals_.
  virtual bool parse(ByteView bytes, const CodecContext& ctx, std::span<float> dense) = 0;
  virtual const std::string& name() const = 0;
  std::size_t d_;
  std::vector<std::uint32_t> idx_;
  std::vector<float> vals_;
  std::vector<float> dense_;
};

// ---------------------------------------------------------------------------------------
// Chains: [topk | randk] -> value codec.

class ChainCodec final : public Codec, public std::enable_shared_from_this<ChainCodec> {
 public:
  explicit ChainCodec(ParsedSpec s) : s_(std::move(s)) {
    if (!s_.value) s_.value = std::shared_ptr<const ValueCodec>(make_fp32());
    name_ = std::string(s_.ef ? "ef|" : "");
    const bool fp32 = s_.value->name() == "fp32";
    if (s_.sparsifier == Sparsifier::kTopk) {
      name_ += "topk:" + s_.k.str();
    } else if (s_.sparsifier == Sparsifier::kRandk) {
      name_ += "randk:" + s_.k.str() + (s_.randk_unbiased ? ":unbiased" : "");
    }
    if (s_.sparsifier == Sparsifier::kNone) {
      name_ += s_.value->name();
    } else if (!fp32) {
      name_ += "|" + s_.value->name();
    }
  }
  std::string name() const override { return name_; }
  const std::string& name_ref() const { return name_; }
  bool unbiased() const override {
    const bool sp_ok = s_.sparsifier == Sparsifier::kNone ||
                       (s_.sparsifier == Sparsifier::kRandk && s_.randk_unbiased);
    return sp_ok && s_.value->unbiased();
  }
  bool contractive() const override {
    const bool sp_ok = !(s_.sparsifier == Sparsifier::kRandk && s_.randk_unbiased);
    return sp_ok && s_.value->contractive();
  }
  double delta(std::size_t d) const override {
    if (!contractive() || d == 0) return 0.0;
    const std::size_t k = kept(d);
    double sp = 1.0;
    if (s_.sparsifier == Sparsifier::kTopk) {
      sp = static_cast<double>(k) / static_cast<double>(d);
    } else if (s_.sparsifier == Sparsifier::kRandk) {
      sp = 1.0 / static_cast<double>((d + k - 1) / k);  // widest block keeps 1 of ceil(d/k)
    }
    // A later stage acts on the kept values only, orthogonal to what was dropped:
    // ||C2(T x) - x||^2 <= ||x||^2 - delta2 ||T x||^2 <= (1 - delta2 delta1) ||x||^2.
    return sp * s_.value->delta(k);
  }
  bool sparse() const override { return s_.sparsifier != Sparsifier::kNone; }
  bool error_feedback() const override { return s_.ef; }
  bool fixed_size() const override { return s_.sparsifier != Sparsifier::kTopk; }
  std::size_t kept(std::size_t d) const {
    return s_.sparsifier == Sparsifier::kNone ? d : s_.k.resolve(d);
  }
  std::size_t header_size() const {
    switch (s_.sparsifier) {
      case Sparsifier::kTopk:
        return 13;
      case Sparsifier::kRandk:
        return 9;
      default:
        return 5;
    }
  }
  std::size_t max_encoded_size(std::size_t d) const override {
    const std::size_t k = kept(d);
    const std::size_t idx = s_.sparsifier == Sparsifier::kTopk ? 5 * k : 0;
    return header_size() + idx + s_.value->size(k);
  }
  std::unique_ptr<Encoder> make_encoder(std::size_t d) const override;
  std::unique_ptr<Decoder> make_decoder(std::size_t d) const override;
  bool mergeable() const override {
    return s_.sparsifier == Sparsifier::kNone && s_.value->linear();
  }
  void merge_add(Bytes& acc, ByteView payload) const override {
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

  // Randk block j of k over d: [j d / k, (j+1) d / k); one index drawn uniformly in each.
  static void randk_indices(std::size_t d, std::size_t k, const CodecContext& ctx,
                            std::vector<std::uint32_t>& idx, std::vector<float>* width) {
    Rng rng = Rng::derive(ctx.seed, ctx.round, ctx.sender, kRandkStream);
    idx.resize(k);
    if (width) width->resize(k);
    for (std::size_t j = 0; j < k; ++j) {
      __extension__ using U128 = unsigned __int128;
      const std::uint64_t lo = static_cast<std::uint64_t>(static_cast<U128>(j) * d / k);
      const std::uint64_t hi = static_cast<std::uint64_t>(static_cast<U128>(j + 1) * d / k);
      idx[j] = static_cast<std::uint32_t>(lo + rng.below(hi - lo));
      if (width) (*width)[j] = static_cast<float>(hi - lo);
    }
  }

  const ParsedSpec& spec() const { return s_; }

 private:
  ParsedSpec s_;
  std::string name_;
};

class ChainDecoder final : public DecoderBase {
 public:
  ChainDecoder(std::shared_ptr<const ChainCodec> c, std::size_t d)
      : DecoderBase(d), c_(std::move(c)), k_(c_->kept(d)) {}

 protected:
  const std::string& name() const override { return c_->name_ref(); }
  bool parse(ByteView bytes, const CodecContext& ctx, std::span<float> dense) override {
    const std::string& nm = c_->name_ref();
    const ParsedSpec& s = c_->spec();
    Reader r(bytes.data(), bytes.size(), nm);
    if (s.sparsifier == Sparsifier::kNone) {
      r.expect_u8(static_cast<std::uint8_t>(Kind::kDense), "payload kind");
      r.expect_u32(u32_of(d_), "dimension");
      s.value->decode(r, dense);
      r.expect_end();
      return true;
    }
    if (s.sparsifier == Sparsifier::kTopk) {
      r.expect_u8(static_cast<std::uint8_t>(Kind::kTopk), "payload kind");
      r.expect_u32(u32_of(d_), "dimension");
      r.expect_u32(u32_of(k_), "kept count k");
      const std::uint32_t nbytes = r.u32("index byte count");
      if (nbytes < k_ || nbytes > 5 * k_) {
        malformed(nm, "index byte count " + std::to_string(nbytes) + " outside [k, 5k]");
      }
      const std::uint8_t* p = r.take(nbytes, "indices");
      const std::uint8_t* end = p + nbytes;
      idx_.resize(k_);
      std::int64_t prev = -1;
      for (std::size_t j = 0; j < k_; ++j) {
        std::uint64_t gap = 0;
        for (int shift = 0;; shift += 7) {
          if (p == end) malformed(nm, "index varints end early at index " + std::to_string(j));
          if (shift == 35) malformed(nm, "index varint longer than 5 bytes");
          const std::uint8_t b = *p++;
          gap |= static_cast<std::uint64_t>(b & 0x7fu) << shift;
          if (!(b & 0x80u)) break;
        }
        const std::int64_t i = prev + 1 + static_cast<std::int64_t>(gap);
        if (i >= static_cast<std::int64_t>(d_)) {
          malformed(
              nm, "index " + std::to_string(i) + " out of range (d = " + std::to_string(d_) + ")");
        }
        idx_[j] = static_cast<std::uint32_t>(i);
        prev = i;
      }
      if (p != end) malformed(nm, "index bytes left over after k indices");
      vals_.resize(k_);
      s.value->decode(r, vals_);
      r.expect_end();
      return false;
    }
    r.expect_u8(static_cast<std::uint8_t>(Kind::kRandk), "payload kind");
    r.expect_u32(u32_of(d_), "dimension");
    r.expect_u32(u32_of(k_), "kept count k");
    vals_.resize(k_);
    s.value->decode(r, vals_);
    r.expect_end();
    ChainCodec::randk_indices(d_, k_, ctx, idx_, s.randk_unbiased ? &width_ : nullptr);
    if (s.randk_unbiased) {
      for (std::size_t j = 0; j < k_; ++j) vals_[j] *= width_[j];
    }
    return false;
  }

 private:
  std::shared_ptr<const ChainCodec> c_;
  std::size_t k_;
  std::vector<float> width_;
};

// Error feedback and `sent` are shared by every encoder.
class EncoderBase : public Encoder {
 public:
  EncoderBase(std::size_t d, bool ef, std::unique_ptr<Decoder> dec)
      : d_(d), ef_(ef), dec_(std::move(dec)) {
    if (ef_) memory_.assign(d, 0.0f);
  }
  std::size_t dim() const override { return d_; }
  std::size_t encode(std::span<const float> x, const CodecContext& ctx, Bytes& out,
                     std::span<float> sent) override {
    check_size(codec_name(), "encode input", x.size(), d_);
    if (!sent.empty()) check_size(codec_name(), "encode `sent` output", sent.size(), d_);
    std::span<const float> src = x;
    if (ef_) {
      for (std::size_t i = 0; i < d_; ++i) memory_[i] += x[i];
      src = memory_;
    }
    encode_raw(src, ctx, out);
    if (ef_) dec_->decode_add(out, ctx, memory_, -1.0f);  // e <- (e + x) - C(e + x)
    if (!sent.empty()) dec_->decode(out, ctx, sent);
    return out.size();
  }
  std::span<const float> memory() const override { return memory_; }
  void set_memory(std::span<const float> e) override {
    if (!ef_) throw CodecError("codec " + codec_name() + ": has no error-feedback memory");
    check_size(codec_name(), "error-feedback memory", e.size(), d_);
    std::copy(e.begin(), e.end(), memory_.begin());
  }
  void reset() override { std::fill(memory_.begin(), memory_.end(), 0.0f); }

 protected:
  virtual void encode_raw(std::span<const float> x, const CodecContext& ctx, Bytes& out) = 0;
  virtual const std::string& codec_name() const = 0;
  std::size_t d_;
  bool ef_;
  std::unique_ptr<Decoder> dec_;
  std::vector<float> memory_;
};

class ChainEncoder final : public EncoderBase {
 public:
  ChainEncoder(std::shared_ptr<const ChainCodec> c, std::size_t d)
      : EncoderBase(d, c->spec().ef, c->make_decoder(d)), c_(std::move(c)), k_(c_->kept(d)) {}

 protected:
  const std::string& codec_name() const override { return c_->name_ref(); }
  void encode_raw(std::span<const float> x, const CodecContext& ctx, Bytes& out) override {
    const ParsedSpec& s = c_->spec();
    out.resize(c_->max_encoded_size(d_));
    Writer w(out.data());
    Rng rng = Rng::derive(ctx.seed, ctx.round, ctx.sender, kQsgdStream);
    std::span<const float> values = x;
    if (s.sparsifier == Sparsifier::kNone) {
      w.u8(static_cast<std::uint8_t>(Kind::kDense));
      w.u32(u32_of(d_));
    } else {
      if (s.sparsifier == Sparsifier::kTopk) {
        selector_.select(x, k_, idx_);
      } else {
        ChainCodec::randk_indices(d_, k_, ctx, idx_, nullptr);
      }
      vals_.resize(k_);
      for (std::size_t j = 0; j < k_; ++j) vals_[j] = x[idx_[j]];
      values = vals_;
      if (s.sparsifier == Sparsifier::kTopk) {
        w.u8(static_cast<std::uint8_t>(Kind::kTopk));
        w.u32(u32_of(d_));
        w.u32(u32_of(k_));
        std::uint8_t* count_at = w.pos();
        w.skip(4);
        std::uint8_t* p = w.pos();
        std::uint32_t prev_plus1 = 0;  // previous index + 1, so gaps are >= 0
        for (std::uint32_t i : idx_) {
          p = put_varint(p, i - prev_plus1);
          prev_plus1 = i + 1;
        }
        const std::uint32_t nbytes = static_cast<std::uint32_t>(p - w.pos());
        std::memcpy(count_at, &nbytes, 4);
        w.skip(nbytes);
      } else {
        w.u8(static_cast<std::uint8_t>(Kind::kRandk));
        w.u32(u32_of(d_));
        w.u32(u32_of(k_));
      }
    }
    s.value->encode(values, rng, w.pos());
    const std::size_t used =
        static_cast<std::size_t>(w.pos() - out.data()) + s.value->size(values.size());
    out.resize(used);
  }

 private:
  std::shared_ptr<const ChainCodec> c_;
  std::size_t k_;
  TopkSelector selector_;
  std::vector<std::uint32_t> idx_;
  std::vector<float> vals_;
};

std::unique_ptr<Encoder> ChainCodec::make_encoder(std::size_t d) const {
  check_dim(name_, d);
  return std::make_unique<ChainEncoder>(shared_from_this(), d);
}
std::unique_ptr<Decoder> ChainCodec::make_decoder(std::size_t d) const {
  check_dim(name_, d);
  return std::make_unique<ChainDecoder>(shared_from_this(), d);
}

// ---------------------------------------------------------------------------------------
// Count-Sketch: [kind][d][rows][cols][K] then rows * cols fp32 (row major).

class SketchCodec final : public Codec, public std::enable_shared_from_this<SketchCodec> {
 public:
  explicit SketchCodec(ParsedSpec s) : s_(std::move(s)) {
    name_ = std::string(s_.ef ? "ef|" : "") + "sketch:" + std::to_string(s_.rows) + ":" +
            s_.cols.str() + ":" + s_.heavy.str();
  }
  std::string name() const override { return name_; }
  const std::string& name_ref() const { return name_; }
  bool unbiased() const override { return false; }
  bool contractive() const override { return false; }
  double delta(std::size_t) const override { return 0.0; }
  bool sparse() const override { return true; }
  bool error_feedback() const override { return s_.ef; }
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
    r.expect_u8(static_cast<std::uint8_t>(Kind::kSketch), "payload kind");
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
  ParsedSpec s_;
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
    w.u8(static_cast<std::uint8_t>(Kind::kSketch));
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
  check_dim(name_, d);
  return std::make_unique<SketchEncoder>(shared_from_this(), d);
}
std::unique_ptr<Decoder> SketchCodec::make_decoder(std::size_t d) const {
  check_dim(name_, d);
  return std::make_unique<SketchDecoder>(shared_from_this(), d);
}

}  // namespace

std::shared_ptr<const Codec> build_codec(const ParsedSpec& spec) {
  if (spec.sketch) return std::make_shared<SketchCodec>(spec);
  return std::make_shared<ChainCodec>(spec);
}

}  // namespace rumor::codec::detail
