// libFuzzer target: the checkpoint reader (src/run/checkpoint.cpp) on a file the input makes.
// A checksum guards every checkpoint, so random bytes rarely get past it; the first byte
// picks how the file is made: as given (mode 0), as given with its CRC-32 trailer recomputed
// (1), or assembled from a JSON header and a body with a correct preamble and checksum (2, 3:
// the rest of the input is a u16 header length, the header, then the body). A bad file must
// be refused with a CheckpointError, and checkpoint_problem() must agree with the reader.
#include <unistd.h>
#include <zlib.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "fuzz_input.hpp"
#include "rumor/run/checkpoint.hpp"

namespace {

void put_le(std::string& out, std::uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

std::uint32_t crc_of(const std::string& s, std::size_t n) {
  return static_cast<std::uint32_t>(
      crc32(crc32(0, nullptr, 0), reinterpret_cast<const Bytef*>(s.data()), static_cast<uInt>(n)));
}

std::string make_file(rumor::fuzz::Input& in, int mode) {
  if (mode >= 2) {
    const auto header = in.bytes(in.take<std::uint16_t>());
    const auto body = in.bytes(in.left());
    std::string f("RUMORCKP");
    put_le(f, rumor::run::kCheckpointFormat, 4);
    put_le(f, header.size(), 4);
    put_le(f, body.size(), 8);
    f.append(header.begin(), header.end());
    f.append(body.begin(), body.end());
    put_le(f, crc_of(f, f.size()), 4);
    return f;
  }
  const auto all = in.bytes(in.left());
  std::string f(all.begin(), all.end());
  if (mode == 1 && f.size() >= 4) {
    const std::uint32_t crc = crc_of(f, f.size() - 4);
    f.resize(f.size() - 4);
    put_le(f, crc, 4);
  }
  return f;
}

const std::string& path() {
  static const std::string p = [] {
    const char* dir = std::getenv("TMPDIR");
    return std::string(dir && *dir ? dir : "/tmp") + "/rumor-fuzz-checkpoint-" +
           std::to_string(::getpid()) + ".ckpt";
  }();
  return p;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  rumor::fuzz::Input in(data, size);
  const std::string file = make_file(in, in.byte() % 4);
  {
    std::ofstream out(path(), std::ios::binary | std::ios::trunc);
    out.write(file.data(), static_cast<std::streamsize>(file.size()));
    if (!out) std::abort();
  }
  bool read = true;
  try {
    const rumor::run::Checkpoint c = rumor::run::read_checkpoint(path());
    std::size_t floats = 0;
    for (const auto& b : c.buffers) floats += b.data.size();
    if (floats * sizeof(float) > file.size()) std::abort();  // more than the file holds
  } catch (const rumor::run::CheckpointError&) {
    read = false;
  }
  if (rumor::run::checkpoint_problem(path()).empty() != read) std::abort();
  return 0;
}
