// topk:RATIO|K[:fp16]: the k coordinates of largest magnitude, indices sent as varint gaps.
// Header [kind][d][k][index bytes][varints].
#include "codec_base.hpp"
#include "rumor/codec/topk.hpp"
#include "stage_entry.hpp"

namespace rumor::codec::detail {
namespace {

constexpr std::uint8_t kTopkKind = 0x12;

class Topk final : public Sparsifier {
 public:
  explicit Topk(Amount k) : k_(k) {}
  class TopkWork final : public Work {
   public:
    TopkWork(std::size_t d, std::size_t k) : d_(d), k_(k) {}
    void encode(std::span<const float> x, const CodecContext&, Writer& w,
                std::vector<std::uint32_t>& idx) override {
      selector_.select(x, k_, idx);
      w.u8(kTopkKind);
      w.u32(u32_of(d_));
      w.u32(u32_of(k_));
      std::uint8_t* count_at = w.pos();
      w.skip(4);
      std::uint8_t* p = w.pos();
      std::uint32_t prev_plus1 = 0;  // previous index + 1, so gaps are >= 0
      for (std::uint32_t i : idx) {
        p = put_varint(p, i - prev_plus1);
        prev_plus1 = i + 1;
      }
      const std::uint32_t nbytes = static_cast<std::uint32_t>(p - w.pos());
      std::memcpy(count_at, &nbytes, 4);
      w.skip(nbytes);
    }
    void decode(Reader& r, const CodecContext&, std::vector<std::uint32_t>& idx) override;

   private:
    std::size_t d_, k_;
    TopkSelector selector_;
  };
  std::string name() const override { return "topk:" + k_.str(); }
  std::size_t kept(std::size_t d) const override { return k_.resolve(d); }
  bool unbiased() const override { return false; }
  bool contractive() const override { return true; }
  double delta(std::size_t d) const override {
    return static_cast<double>(kept(d)) / static_cast<double>(d);
  }
  bool fixed_size() const override { return false; }
  std::size_t max_header_size(std::size_t d) const override { return 13 + 5 * kept(d); }
  std::unique_ptr<Work> make_work(std::size_t d) const override {
    return std::make_unique<TopkWork>(d, kept(d));
  }

 private:
  Amount k_;
};

void Topk::TopkWork::decode(Reader& r, const CodecContext&, std::vector<std::uint32_t>& idx) {
  const std::string& nm = r.codec();
  r.expect_u8(kTopkKind, "payload kind");
  r.expect_u32(u32_of(d_), "dimension");
  r.expect_u32(u32_of(k_), "kept count k");
  const std::uint32_t nbytes = r.u32("index byte count");
  if (nbytes < k_ || nbytes > 5 * k_) {
    malformed(nm, "index byte count " + std::to_string(nbytes) + " outside [k, 5k]");
  }
  const std::uint8_t* p = r.take(nbytes, "indices");
  const std::uint8_t* end = p + nbytes;
  idx.resize(k_);
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
      malformed(nm,
                "index " + std::to_string(i) + " out of range (d = " + std::to_string(d_) + ")");
    }
    idx[j] = static_cast<std::uint32_t>(i);
    prev = i;
  }
  if (p != end) malformed(nm, "index bytes left over after k indices");
}

StageBuild build(const StageArgs& a) {
  a.require(1, "a ratio or a count");
  StageBuild b;
  b.sparsifier = std::make_shared<Topk>(a.amount(0, a.name()));
  if (a.flag("fp16")) b.implied_value = "fp16";
  return b;
}

}  // namespace

StageEntry topk_stage() {
  return {"topk",
          StageRole::kSparsifier,
          "topk:RATIO|K[:fp16]",
          "exact top-k by magnitude, varint indices",
          1,
          {"fp16"},
          {},
          {"topk:0.05", "topk:0.05|qsgd:2:biased", "topk:0.05|sign:chunk=16", "topk:3:fp16"},
          build};
}

}  // namespace rumor::codec::detail
