// libFuzzer target: feeds arbitrary bytes to the decoders of one codec stage's example specs
// (and to merge, when linear). The first byte picks the example, the rest is the payload.
// Anything but success or rumor::CodecError is a bug; ASan/UBSan catch out-of-bounds access.
// Built once per registered stage with RUMOR_FUZZ_TARGET set to its name.
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "rumor/codec/codec.hpp"
#include "targets.hpp"

namespace {

struct Example {
  std::shared_ptr<const rumor::codec::Codec> codec;
  std::unique_ptr<rumor::codec::Decoder> dec;
  rumor::codec::Bytes valid;  // a valid payload, to merge fuzz input into
};

struct State {
  std::size_t dim = 0;
  std::vector<Example> examples;
  std::vector<float> out;
};

State& state() {
  static State s = [] {
    const auto all = rumor::codec::fuzz::targets();
    const auto target = rumor::codec::fuzz::find_target(all, RUMOR_FUZZ_TARGET);
    if (target == all.end() || target->specs.empty()) std::abort();
    State st;
    st.dim = target->dim;
    st.out.resize(st.dim);
    std::vector<float> x(st.dim);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i % 17) - 8.0f;
    for (const auto& spec : target->specs) {
      Example e;
      e.codec = rumor::codec::make_codec(spec);
      e.dec = e.codec->make_decoder(st.dim);
      e.codec->make_encoder(st.dim)->encode(x, {1, 2, 3}, e.valid);
      st.examples.push_back(std::move(e));
    }
    return st;
  }();
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  State& s = state();
  Example& e = s.examples[data[0] % s.examples.size()];
  const rumor::codec::ByteView in(data + 1, size - 1);
  try {
    e.dec->decode(in, {1, 2, 3}, s.out);
  } catch (const rumor::CodecError&) {
  }
  try {
    e.dec->decode_add(in, {1, 2, 3}, s.out, 0.5f);
  } catch (const rumor::CodecError&) {
  }
  if (e.codec->mergeable()) {
    rumor::codec::Bytes acc = e.valid;
    try {
      e.codec->merge_add(acc, in);
    } catch (const rumor::CodecError&) {
    }
  }
  return 0;
}
