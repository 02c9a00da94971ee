#include "rumor/run/checkpoint.hpp"

#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "rumor/common/log.hpp"
#include "rumor/run/run.hpp"

namespace rumor::run {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr char kMagic[8] = {'R', 'U', 'M', 'O', 'R', 'C', 'K', 'P'};
// Format 1 had its own magic and no format field.
constexpr char kMagicFormat1[8] = {'R', 'U', 'M', 'O', 'R', 'C', 'K', '1'};
constexpr std::uint64_t kPreamble = 8 + 4 + 4 + 8;  // magic, format, header bytes, body bytes
constexpr std::uint64_t kTrailer = 4;               // CRC-32
// A header lists a few dozen buffers and the method's scalars; anything near this is corrupt.
constexpr std::uint32_t kMaxHeader = 16u << 20;
constexpr std::size_t kChunk = 1u << 20;

// zlib's crc32 takes a 32-bit length: feed it in chunks.
std::uint32_t crc_add(std::uint32_t crc, const void* data, std::size_t n) {
  const auto* p = static_cast<const Bytef*>(data);
  while (n > 0) {
    const auto step = static_cast<uInt>(std::min<std::size_t>(n, kChunk));
    crc = static_cast<std::uint32_t>(crc32(crc, p, step));
    p += step;
    n -= step;
  }
  return crc;
}

void put_le(std::string& out, std::uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
std::uint64_t get_le(const unsigned char* p, int bytes) {
  std::uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= static_cast<std::uint64_t>(p[i]) << (8 * i);
  return v;
}

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw CheckpointError("checkpoint " + path + ": " + what);
}

// Writes all of data to fd; false on an error.
bool write_all(int fd, const void* data, std::size_t n) {
  const auto* p = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t w = ::write(fd, p, std::min<std::size_t>(n, kChunk));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

// Makes the rename itself durable.
void sync_dir(const fs::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

// What the fixed preamble and the file size say; everything checked but the checksum.
struct Layout {
  std::uint64_t header_bytes = 0, body_bytes = 0, file_bytes = 0;
};

Layout check_preamble(const std::string& path, std::ifstream& in) {
  std::error_code ec;
  const std::uint64_t size = fs::file_size(path, ec);
  if (ec) fail(path, "cannot be read (" + ec.message() + ")");
  unsigned char pre[kPreamble] = {};
  in.read(reinterpret_cast<char*>(pre), static_cast<std::streamsize>(std::min(size, kPreamble)));
  if (size >= 8 && std::memcmp(pre, kMagicFormat1, 8) == 0)
    fail(path, "format 1 written by an older rumor; cannot resume from it (start the run again)");
  if (size < 8 || std::memcmp(pre, kMagic, 8) != 0)
    fail(path, "not a rumor checkpoint (bad magic; " + std::to_string(size) + " bytes)");
  if (size < kPreamble)
    fail(path, "truncated: " + std::to_string(size) + " bytes, shorter than the " +
                   std::to_string(kPreamble) + "-byte preamble");
  const auto format = static_cast<std::uint32_t>(get_le(pre + 8, 4));
  if (format != kCheckpointFormat)
    fail(path, "format " + std::to_string(format) + " written by " +
                   (format < kCheckpointFormat ? "an older rumor; cannot resume from it"
                                               : "a newer rumor; resume with that version") +
                   " (this rumor reads format " + std::to_string(kCheckpointFormat) + ")");
  Layout l;
  l.header_bytes = get_le(pre + 12, 4);
  l.body_bytes = get_le(pre + 16, 8);
  l.file_bytes = size;
  if (l.header_bytes > kMaxHeader)
    fail(path, "header of " + std::to_string(l.header_bytes) + " bytes is beyond the " +
                   std::to_string(kMaxHeader) + "-byte limit; the file is corrupt");
  if (l.body_bytes > size)  // also keeps the sum below from overflowing
    fail(path, "truncated: header says a body of " + std::to_string(l.body_bytes) +
                   " bytes, file has " + std::to_string(size));
  const std::uint64_t expected = kPreamble + l.header_bytes + l.body_bytes + kTrailer;
  if (size < expected)
    fail(path, "truncated: header says " + std::to_string(expected) + " bytes, file has " +
                   std::to_string(size));
  if (size > expected)
    fail(path, "has " + std::to_string(size) + " bytes, header says " + std::to_string(expected) +
                   "; the file is corrupt");
  return l;
}

// Checks the CRC-32 over everything before the trailer.
void check_sum(const std::string& path, std::ifstream& in, const Layout& l) {
  in.seekg(0);
  std::vector<char> buf(kChunk);
  std::uint32_t crc = crc_add(0, nullptr, 0);
  for (std::uint64_t left = l.file_bytes - kTrailer; left > 0;) {
    const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(left, kChunk));
    if (!in.read(buf.data(), static_cast<std::streamsize>(n))) fail(path, "read error");
    crc = crc_add(crc, buf.data(), n);
    left -= n;
  }
  unsigned char t[kTrailer];
  if (!in.read(reinterpret_cast<char*>(t), kTrailer)) fail(path, "read error");
  const auto stored = static_cast<std::uint32_t>(get_le(t, 4));
  if (stored != crc) {
    char msg[96];
    std::snprintf(msg, sizeof msg, "checksum mismatch (stored %08x, computed %08x)", stored, crc);
    fail(path, std::string(msg) + "; the file is corrupt");
  }
}

struct Header {
  json fields;
  std::vector<std::pair<std::string, std::uint64_t>> buffers;  // name, floats
};

// The JSON header, checked against the body size it must describe.
Header read_header(const std::string& path, std::ifstream& in, const Layout& l) {
  std::string text(l.header_bytes, '\0');
  in.seekg(static_cast<std::streamoff>(kPreamble));
  if (!in.read(text.data(), static_cast<std::streamsize>(text.size()))) fail(path, "read error");
  Header h;
  std::uint64_t floats = 0;
  try {
    const json j = json::parse(text);
    h.fields = j.at("fields");
    for (const auto& b : j.at("buffers")) {
      const auto size = b.at("size").get<std::uint64_t>();
      if (size > l.body_bytes / sizeof(float) - floats)
        fail(path, "buffer sizes exceed the body of " + std::to_string(l.body_bytes) + " bytes");
      floats += size;
      h.buffers.emplace_back(b.at("name").get<std::string>(), size);
    }
  } catch (const json::exception& e) {
    fail(path, std::string("malformed header (") + e.what() + ")");
  }
  if (floats * sizeof(float) != l.body_bytes)
    fail(path, "buffers hold " + std::to_string(floats * sizeof(float)) + " bytes, body has " +
                   std::to_string(l.body_bytes));
  return h;
}

// Opens and verifies everything but the buffer values; `in` is left after the header.
Header open_verified(const std::string& path, std::ifstream& in) {
  in.open(path, std::ios::binary);
  if (!in) fail(path, fs::exists(path) ? "cannot be opened (permission denied)" : "not found");
  const Layout l = check_preamble(path, in);
  check_sum(path, in, l);
  return read_header(path, in, l);
}

}  // namespace

void write_checkpoint(const std::string& path, const json& fields,
                      const std::vector<CheckpointBufferView>& buffers) {
  json header = {{"fields", fields}, {"buffers", json::array()}};
  std::uint64_t body = 0;
  for (const auto& b : buffers) {
    header["buffers"].push_back({{"name", b.name}, {"size", b.data.size()}});
    body += b.data.size_bytes();
  }
  const std::string text = header.dump();
  if (text.size() > kMaxHeader)
    throw Error("checkpoint " + path + ": header of " + std::to_string(text.size()) +
                " bytes is beyond the format's limit");
  std::string head(kMagic, sizeof kMagic);
  put_le(head, kCheckpointFormat, 4);
  put_le(head, text.size(), 4);
  put_le(head, body, 8);
  head += text;
  std::uint32_t crc = crc_add(crc_add(0, nullptr, 0), head.data(), head.size());
  for (const auto& b : buffers) crc = crc_add(crc, b.data.data(), b.data.size_bytes());
  std::string tail;
  put_le(tail, crc, 4);

  const fs::path target(path);
  fs::create_directories(target.parent_path());
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw Error("cannot write checkpoint " + tmp + ": " + std::strerror(errno));
  bool ok = write_all(fd, head.data(), head.size());
  for (const auto& b : buffers) ok = ok && write_all(fd, b.data.data(), b.data.size_bytes());
  ok = ok && write_all(fd, tail.data(), tail.size()) && ::fsync(fd) == 0;
  const int err = errno;
  ok = ::close(fd) == 0 && ok;
  if (!ok) {
    fs::remove(tmp);
    throw Error("cannot write checkpoint " + tmp + ": " + std::strerror(err) +
                " (is the disk full?)");
  }
  fs::rename(tmp, target);  // atomic: a crash leaves the old checkpoint or the new one
  sync_dir(target.parent_path());
}

Checkpoint read_checkpoint(const std::string& path) {
  std::ifstream in;
  const Header h = open_verified(path, in);
  Checkpoint c;
  c.fields = h.fields;
  for (const auto& [name, size] : h.buffers) {
    Checkpoint::Buffer b{name, std::vector<float>(size)};
    if (!in.read(reinterpret_cast<char*>(b.data.data()),
                 static_cast<std::streamsize>(size * sizeof(float))))
      fail(path, "read error in buffer " + name);
    c.buffers.push_back(std::move(b));
  }
  return c;
}

std::string checkpoint_problem(const std::string& path) {
  try {
    std::ifstream in;
    open_verified(path, in);
    return "";
  } catch (const CheckpointError& e) {
    return e.what();
  }
}

std::string checkpoint_path(const std::string& run_dir, int id, std::int64_t round) {
  return (fs::path(run_dir) / "checkpoints" /
          ("node-" + std::to_string(id) + "-r" + std::to_string(round) + ".ckpt"))
      .string();
}

std::vector<std::int64_t> checkpoint_rounds(const std::string& run_dir, int id) {
  std::vector<std::int64_t> rounds;
  const fs::path dir = fs::path(run_dir) / "checkpoints";
  if (!fs::is_directory(dir)) return rounds;
  const std::string prefix = "node-" + std::to_string(id) + "-r";
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string f = e.path().filename().string();
    if (f.rfind(prefix, 0) != 0 || e.path().extension() != ".ckpt") continue;
    try {
      rounds.push_back(std::stoll(f.substr(prefix.size())));
    } catch (const std::exception&) {
      // not one of ours
    }
  }
  std::sort(rounds.begin(), rounds.end());
  return rounds;
}

namespace {
// Rounds every one of n nodes has a checkpoint file for, ascending.
std::vector<std::int64_t> common_rounds(const std::string& run_dir, int n) {
  std::vector<std::int64_t> common = checkpoint_rounds(run_dir, 0);
  for (int i = 1; i < n && !common.empty(); ++i) {
    const auto mine = checkpoint_rounds(run_dir, i);
    std::vector<std::int64_t> both;
    std::set_intersection(common.begin(), common.end(), mine.begin(), mine.end(),
                          std::back_inserter(both));
    common = both;
  }
  return common;
}
}  // namespace

std::int64_t common_checkpoint(const std::string& run_dir, int n) {
  const auto common = common_rounds(run_dir, n);
  return common.empty() ? -1 : common.back();
}

ResumePoint find_resume_point(const std::string& run_dir, int n) {
  const auto common = common_rounds(run_dir, n);
  if (common.empty())
    throw Error(run_dir + ": no checkpoint that every one of the " + std::to_string(n) +
                " nodes has saved; was checkpoint.every set? (checkpoints/ holds them)");
  ResumePoint rp;
  for (auto r = common.rbegin(); r != common.rend(); ++r) {
    std::string problem;
    for (int i = 0; i < n && problem.empty(); ++i)
      problem = checkpoint_problem(checkpoint_path(run_dir, i, *r));
    if (problem.empty()) {
      rp.round = *r;
      return rp;
    }
    rp.skipped.push_back(problem);
  }
  std::string why;
  for (const auto& s : rp.skipped) why += "\n  " + s;
  throw Error(run_dir + ": no round has a good checkpoint on every one of the " +
              std::to_string(n) + " nodes:" + why +
              "\nstart the run again (the run keeps each node's newest two checkpoints)");
}

std::int64_t resume_point(const std::string& run_dir, int n) {
  const ResumePoint rp = find_resume_point(run_dir, n);
  for (const auto& s : rp.skipped) log::warn(s, "; resuming from round ", rp.round + 1, " instead");
  return rp.round;
}

}  // namespace rumor::run
