// Writes the seed corpus of every codec fuzz target: a few valid payloads each.
// Usage: fuzz_codec_seeds OUTDIR   (writes OUTDIR/<target>/seed_<n>)
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <vector>

#include "rumor/codec/codec.hpp"
#include "targets.hpp"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: fuzz_codec_seeds OUTDIR\n";
    return 2;
  }
  namespace fs = std::filesystem;
  for (const auto& t : rumor::codec::fuzz::kTargets) {
    const fs::path dir = fs::path(argv[1]) / std::string(t.name);
    fs::create_directories(dir);
    auto codec = rumor::codec::make_codec(t.spec);
    auto enc = codec->make_encoder(t.dim);
    for (int n = 0; n < 4; ++n) {
      std::vector<float> x(t.dim, 0.0f);
      for (std::size_t i = 0; i < t.dim; ++i) {
        switch (n) {
          case 0:
            x[i] = std::sin(0.1f * static_cast<float>(i));
            break;
          case 1:
            x[i] = 1.0f / static_cast<float>(i + 1);
            break;
          case 2:
            x[i] = (i % 7 == 0) ? -3.0f : 0.0f;
            break;
          default:
            x[i] = 0.0f;
            break;
        }
      }
      rumor::codec::Bytes b;
      enc->encode(x, {1, 2, 3}, b);
      std::ofstream(dir / ("seed_" + std::to_string(n)), std::ios::binary)
          .write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
    }
  }
  return 0;
}
