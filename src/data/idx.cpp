// IDX files (the MNIST format): big-endian magic 0x0000 <type> <ndims>, ndims big-endian
// uint32 sizes, then the values. Read through zlib so .gz and plain files both work.
#include <zlib.h>

#include <cstring>
#include <memory>

#include "huge_pages.hpp"
#include "rumor/common/error.hpp"
#include "rumor/data/dataset.hpp"

namespace rumor::data {
namespace {

struct GzCloser {
  void operator()(gzFile f) const {
    if (f) gzclose(f);
  }
};

void read_exact(gzFile f, void* out, std::size_t n, const std::string& path) {
  auto* p = static_cast<unsigned char*>(out);
  while (n > 0) {
    const unsigned chunk = n > (1u << 30) ? (1u << 30) : static_cast<unsigned>(n);
    const int got = gzread(f, p, chunk);
    if (got <= 0) {
      throw DataError("IDX file " + path + " is truncated or corrupt (wanted " + std::to_string(n) +
                      " more bytes); re-download or reinstall it");
    }
    p += got;
    n -= static_cast<std::size_t>(got);
  }
}

}  // namespace

IdxArray read_idx(const std::string& path) {
  std::unique_ptr<gzFile_s, GzCloser> f(gzopen(path.c_str(), "rb"));
  if (!f) throw DataError("cannot open IDX file " + path);
  unsigned char magic[4];
  read_exact(f.get(), magic, 4, path);
  if (magic[0] != 0 || magic[1] != 0 || magic[2] != 0x08 || magic[3] == 0 || magic[3] > 4) {
    throw DataError("IDX file " + path +
                    " has a bad header (expected unsigned-byte data, 1 to 4 dimensions)");
  }
  IdxArray out;
  std::size_t total = 1;
  for (int i = 0; i < magic[3]; ++i) {
    unsigned char b[4];
    read_exact(f.get(), b, 4, path);
    const std::uint32_t d = (std::uint32_t{b[0]} << 24) | (std::uint32_t{b[1]} << 16) |
                            (std::uint32_t{b[2]} << 8) | std::uint32_t{b[3]};
    if (d == 0 || d > (1u << 28)) throw DataError("IDX file " + path + " has a bad dimension");
    out.dims.push_back(d);
    total *= d;
    if (total > (std::size_t{1} << 34)) throw DataError("IDX file " + path + " is too large");
  }
  detail::resize_in_huge_pages(out.values, total);
  read_exact(f.get(), out.values.data(), total, path);
  return out;
}

}  // namespace rumor::data
