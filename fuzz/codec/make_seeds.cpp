// Writes the seed corpus of every codec fuzz target: a few valid payloads of each example
// spec, prefixed with the byte that selects the example (see fuzz_decode.cpp).
// Usage: fuzz_codec_seeds OUTDIR   (writes OUTDIR/<stage>/seed_<example>_<n>)
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <vector>

#include "rumor/codec/codec.hpp"
#include "targets.hpp"

namespace {

namespace fs = std::filesystem;

float seed_value(int n, std::size_t i) {
  switch (n) {
    case 0:
      return std::sin(0.1f * static_cast<float>(i));
    case 1:
      return 1.0f / static_cast<float>(i + 1);
    case 2:
      return (i % 7 == 0) ? -3.0f : 0.0f;
    default:
      return 0.0f;
  }
}

void write_seeds(const fs::path& dir, std::uint8_t example, const rumor::codec::Codec& codec,
                 std::size_t dim) {
  auto enc = codec.make_encoder(dim);
  for (int n = 0; n < 4; ++n) {
    std::vector<float> x(dim);
    for (std::size_t i = 0; i < dim; ++i) x[i] = seed_value(n, i);
    rumor::codec::Bytes b{example};
    rumor::codec::Bytes payload;
    enc->encode(x, {1, 2, 3}, payload);
    b.insert(b.end(), payload.begin(), payload.end());
    const std::string file = "seed_" + std::to_string(example) + "_" + std::to_string(n);
    std::ofstream(dir / file, std::ios::binary)
        .write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: fuzz_codec_seeds OUTDIR\n";
    return 2;
  }
  for (const auto& t : rumor::codec::fuzz::targets()) {
    const fs::path dir = fs::path(argv[1]) / t.name;
    fs::create_directories(dir);
    for (std::size_t ex = 0; ex < t.specs.size(); ++ex) {
      write_seeds(dir, static_cast<std::uint8_t>(ex), *rumor::codec::make_codec(t.specs[ex]),
                  t.dim);
    }
  }
  return 0;
}
