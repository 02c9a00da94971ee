// libFuzzer target: feeds arbitrary bytes to one codec's decoder (and merge, when linear).
// Anything but success or rumor::CodecError is a bug; ASan/UBSan catch out-of-bounds access.
// Built once per entry of targets.hpp with RUMOR_FUZZ_TARGET set to its name.
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "rumor/codec/codec.hpp"
#include "targets.hpp"

namespace {

struct State {
  const rumor::codec::fuzz::Target* target;
  std::shared_ptr<const rumor::codec::Codec> codec;
  std::unique_ptr<rumor::codec::Decoder> dec;
  rumor::codec::Bytes valid;  // a valid payload, to merge fuzz input into
  std::vector<float> out;
};

State& state() {
  static State s = [] {
    State st;
    st.target = rumor::codec::fuzz::find_target(RUMOR_FUZZ_TARGET);
    if (!st.target) std::abort();
    st.codec = rumor::codec::make_codec(st.target->spec);
    st.dec = st.codec->make_decoder(st.target->dim);
    st.out.resize(st.target->dim);
    std::vector<float> x(st.target->dim);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i % 17) - 8.0f;
    st.codec->make_encoder(st.target->dim)->encode(x, {1, 2, 3}, st.valid);
    return st;
  }();
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  State& s = state();
  const rumor::codec::ByteView in(data, size);
  try {
    s.dec->decode(in, {1, 2, 3}, s.out);
  } catch (const rumor::CodecError&) {
  }
  try {
    s.dec->decode_add(in, {1, 2, 3}, s.out, 0.5f);
  } catch (const rumor::CodecError&) {
  }
  if (s.codec->mergeable()) {
    rumor::codec::Bytes acc = s.valid;
    try {
      s.codec->merge_add(acc, in);
    } catch (const rumor::CodecError&) {
    }
  }
  return 0;
}
