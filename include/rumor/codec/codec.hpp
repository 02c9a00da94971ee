#pragma once
// Payload codecs: turn a flat float vector into bytes and back.
//
// Usage (one node, one round):
//   auto codec = rumor::codec::make_codec("topk:0.01|qsgd:4:biased");   // immutable, shareable
//   auto enc = codec->make_encoder(d);        // per node: scratch buffers + error-feedback memory
//   auto dec = codec->make_decoder(d);        // per receiving thread: scratch buffers
//   CodecContext ctx{seed, round, self_id};   // receivers use the SENDER's id
//   enc->encode(x, ctx, bytes, sent);         // bytes resized to the exact size; sent =
//   decode(bytes) dec->decode(bytes, ctx, out);             // dense out (sparse codecs: zeros
//   except kept values) dec->decode_add(bytes, ctx, acc, w);      // acc += w * decode(bytes), O(k)
//   for sparse codecs
//
// Threads: a Codec is immutable and may be used from any thread. An Encoder or a Decoder
// belongs to one thread at a time (it owns scratch buffers; an Encoder also owns the
// error-feedback memory of one sender).
//
// Wire format: every payload starts with a small header (codec tag, dimension, parameters);
// decoding checks it against the receiver's own codec and dimension, checks every length,
// count, index and scale, and throws rumor::CodecError on anything malformed. It never reads
// or writes out of bounds. Values themselves (fp32/fp16/bf16 elements) are passed through as
// the IEEE formats do, so a non-finite input stays non-finite; scales and norms must be finite.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "rumor/common/error.hpp"

namespace rumor::codec {

using Bytes = std::vector<std::uint8_t>;
using ByteView = std::span<const std::uint8_t>;

// Where the shared randomness comes from. Everything random that sender and receivers must
// agree on (random-k indices) is derived from (seed, round, sender) and never sent; sketch
// hashes come from seed alone so that sketches from different senders add. Stochastic
// rounding (qsgd) uses the same stream on the sender only; its result is sent.
struct CodecContext {
  std::uint64_t seed = 0;    // the run's shared seed
  std::uint64_t round = 0;   // the round the payload belongs to
  std::uint64_t sender = 0;  // id of the node that encoded the payload
};

class Encoder;
class Decoder;

// A codec: the immutable description of one spec string (e.g. "ef|topk:0.01|sign").
class Codec {
 public:
  virtual ~Codec() = default;

  // Canonical spec string (parse(name()) gives an equal codec); used in logs and benchmarks.
  virtual std::string name() const = 0;

  // Statistical properties of one transmission C(x) (for `ef|...`: of the inner chain,
  // applied to e + x). Methods use them to refuse unsuitable codecs.
  //   unbiased():    E[C(x)] = x over the codec's randomness.
  //   contractive(): E||C(x) - x||^2 <= (1 - delta(d)) ||x||^2 for every x of dimension d,
  //                  with 0 < delta(d) <= 1. delta(d) is 0 when not contractive.
  // fp16/bf16 are declared contractive with delta close to 1: valid while |x_i| stays inside
  // the format's normal range (fp16 overflows to inf above 65504).
  virtual bool unbiased() const = 0;
  virtual bool contractive() const = 0;
  virtual double delta(std::size_t d) const = 0;
  // Keeps only some coordinates (topk, randk, sketch): decode_add then costs O(kept).
  virtual bool sparse() const = 0;
  virtual bool error_feedback() const = 0;

  // Size of a payload for a vector of d floats. fixed_size(): every payload for this d has
  // exactly max_encoded_size(d) bytes; otherwise (topk: varint indices) that is an upper
  // bound and encode() reports the exact size. Headers, norms and indices are included.
  virtual bool fixed_size() const = 0;
  virtual std::size_t max_encoded_size(std::size_t d) const = 0;

  // Stateful per-sender encoder for vectors of exactly d floats (d >= 1).
  virtual std::unique_ptr<Encoder> make_encoder(std::size_t d) const = 0;
  // Decoder for vectors of exactly d floats (only scratch buffers, no state between calls).
  virtual std::unique_ptr<Decoder> make_decoder(std::size_t d) const = 0;

  // Linear codecs (fp32, sketch:...:linear) can add payloads of several senders:
  // decode(merge(a, b)) == decode(a) + decode(b) for fp32, and for a sketch the recovery
  // from the summed sketch equals the recovery from the sketch of the summed vectors.
  virtual bool mergeable() const = 0;
  // acc += payload. acc must be a valid payload of the same codec and dimension (for
  // example a copy of the first one received). Throws CodecError when not mergeable or
  // when either payload is malformed or they do not match.
  virtual void merge_add(Bytes& acc, ByteView payload) const = 0;
};

class Encoder {
 public:
  virtual ~Encoder() = default;
  virtual std::size_t dim() const = 0;

  // Encodes x (x.size() == dim()) into out (resized to the exact payload size, capacity is
  // reused: no allocation in steady state) and returns that size. If `sent` is non-empty
  // (size dim()), it receives exactly what every receiver will decode, bit for bit; with
  // error feedback the memory is updated to (e + x) - sent.
  virtual std::size_t encode(std::span<const float> x, const CodecContext& ctx, Bytes& out,
                             std::span<float> sent = {}) = 0;

  // Error-feedback memory (empty span when the codec has none); for checkpoints.
  virtual std::span<const float> memory() const = 0;
  virtual void set_memory(std::span<const float> e) = 0;  // throws CodecError on size mismatch
  virtual void reset() = 0;                               // memory <- 0
};

class Decoder {
 public:
  virtual ~Decoder() = default;
  virtual std::size_t dim() const = 0;
  // out (size dim()) <- decode(bytes). Throws CodecError on malformed input; out is then
  // unspecified.
  virtual void decode(ByteView bytes, const CodecContext& ctx, std::span<float> out) = 0;
  // acc (size dim()) += weight * decode(bytes). Validates the whole payload before touching
  // acc, so acc is unchanged when it throws.
  virtual void decode_add(ByteView bytes, const CodecContext& ctx, std::span<float> acc,
                          float weight = 1.0f) = 0;
  // Dense fp32 payloads (codecs fp32 and ef|fp32): checks `bytes` as decode() does (throws
  // CodecError alike) and returns where its dim() values lie in them, little-endian floats at
  // any alignment (raw_values.hpp reads them), so a receiver reads them in place instead of
  // copying them out. Empty for every other codec: its values must be decoded.
  virtual ByteView raw_values(ByteView bytes, const CodecContext& ctx) { return {}; }
};

// Registry. Spec grammar (formats.md): stage ('|' stage)*, stage = name(':' arg)*; an arg
// with '.' or an exponent is a ratio in (0, 1], an integer is a count, a word is a flag and
// key=value sets an option. `ef|` as first stage wraps the rest in error feedback.
//   fp32 | fp16 | bf16
//   qsgd:BITS[:biased][:chunk=N]      BITS in 1..8, s = 2^BITS - 1 levels, chunk default 512
//   sign[:chunk=N]                    1 bit per value + one fp32 scale per chunk (default 1024)
//   topk:RATIO|K[:fp16]               exact top-k by magnitude (ties to the lower index)
//   randk:RATIO|K[:unbiased]          indices from (seed, round, sender), not sent: one index
//                                     drawn uniformly in each of k equal blocks of [0, d)
//                                     (each coordinate kept with probability 1/block width;
//                                     `unbiased` scales by that width)
//   sketch[:ROWS[:COLS[:K]]][:exact|:linear]
//                                     Count-Sketch; COLS and K ratio of d or count; decoding
//                                     recovers the K largest median-of-rows estimates, times a
//                                     scale the sender fits (default) or replaced by the exact
//                                     values sent along (exact); when those would remove less
//                                     than K/d of ||x||^2, K exact values at indices from
//                                     (seed, round, sender) go instead: contractive, delta K/d.
//                                     linear: the table alone (mergeable, not contractive).
//                                     Default sketch:5:0.003:0.01: a 5 x 0.003 d fp32 table
//                                     (0.48 bits per parameter), K = d/100 (the fallback:
//                                     0.32 bits per parameter). ROWS 3..32
// A chain is at most one sparsifier (topk, randk) followed by at most one value codec (fp32,
// fp16, bf16, qsgd, sign; default fp32); sketch stands alone (optionally under ef).
// Throws ConfigError naming the bad part and listing what is valid. Each stage is one entry
// of a registry (src/codec/stage_entry.hpp); codec_stages() below lists them.
std::shared_ptr<const Codec> make_codec(std::string_view spec);
// JSON form: a spec string, or {"chain": ["topk:0.01", "sign"], "error_feedback": false}.
std::shared_ptr<const Codec> make_codec(const nlohmann::json& spec);
// (String arguments would be ambiguous between the two overloads above.)
inline std::shared_ptr<const Codec> make_codec(const char* spec) {
  return make_codec(std::string_view(spec));
}
inline std::shared_ptr<const Codec> make_codec(const std::string& spec) {
  return make_codec(std::string_view(spec));
}

// One line per codec name with its arguments, for help texts and error messages.
std::string codec_help();

// The registered codec stages (one registry entry each), for help texts, the tests and the
// fuzz targets: every example spec is a whole codec that uses the stage.
struct CodecStageInfo {
  std::string name;
  std::string usage;
  std::string help;
  bool value_codec = false;  // encodes dense values (else a sparsifier or a standalone codec)
  std::vector<std::string> examples;
};
std::vector<CodecStageInfo> codec_stages();

// 8 * bytes / d.
inline double bits_per_param(std::size_t bytes, std::size_t d) {
  return d == 0 ? 0.0 : 8.0 * static_cast<double>(bytes) / static_cast<double>(d);
}

}  // namespace rumor::codec
