// randk:RATIO|K[:unbiased]: one index drawn uniformly in each of k equal blocks of [0, d),
// from (seed, round, sender): receivers draw the same ones, so none is sent.
// Header [kind][d][k].
#include "codec_base.hpp"
#include "stage_entry.hpp"

namespace rumor::codec::detail {
namespace {

constexpr std::uint8_t kRandkKind = 0x13;

class Randk final : public Sparsifier {
 public:
  Randk(Amount k, bool unbiased) : k_(k), unbiased_(unbiased) {}
  class RandkWork final : public Work {
   public:
    RandkWork(std::size_t d, std::size_t k, bool unbiased) : d_(d), k_(k), unbiased_(unbiased) {}
    void encode(std::span<const float>, const CodecContext& ctx, Writer& w,
                std::vector<std::uint32_t>& idx) override {
      block_random_indices(d_, k_, ctx, idx, nullptr);
      w.u8(kRandkKind);
      w.u32(u32_of(d_));
      w.u32(u32_of(k_));
    }
    void decode(Reader& r, const CodecContext& ctx, std::vector<std::uint32_t>& idx) override {
      r.expect_u8(kRandkKind, "payload kind");
      r.expect_u32(u32_of(d_), "dimension");
      r.expect_u32(u32_of(k_), "kept count k");
      block_random_indices(d_, k_, ctx, idx, unbiased_ ? &width_ : nullptr);
    }
    void rescale(std::span<float> vals) override {
      if (!unbiased_) return;
      for (std::size_t j = 0; j < k_; ++j) vals[j] *= width_[j];
    }

   private:
    std::size_t d_, k_;
    bool unbiased_;
    std::vector<float> width_;
  };
  std::string name() const override { return "randk:" + k_.str() + (unbiased_ ? ":unbiased" : ""); }
  std::size_t kept(std::size_t d) const override { return k_.resolve(d); }
  bool unbiased() const override { return unbiased_; }
  bool contractive() const override { return !unbiased_; }
  double delta(std::size_t d) const override {
    const std::size_t k = kept(d);
    return 1.0 / static_cast<double>((d + k - 1) / k);  // widest block keeps 1 of ceil(d/k)
  }
  bool fixed_size() const override { return true; }
  std::size_t max_header_size(std::size_t) const override { return 9; }
  std::unique_ptr<Work> make_work(std::size_t d) const override {
    return std::make_unique<RandkWork>(d, kept(d), unbiased_);
  }

 private:
  Amount k_;
  bool unbiased_;
};

StageBuild build(const StageArgs& a) {
  a.require(1, "a ratio or a count");
  StageBuild b;
  b.sparsifier = std::make_shared<Randk>(a.amount(0, a.name()), a.flag("unbiased"));
  return b;
}

}  // namespace

StageEntry randk_stage() {
  return {"randk",
          StageRole::kSparsifier,
          "randk:RATIO|K[:unbiased]",
          "random-k, indices from (seed, round, sender)",
          1,
          {"unbiased"},
          {},
          {"randk:0.1:unbiased|fp16", "randk:7|qsgd:4"},
          build};
}

}  // namespace rumor::codec::detail
