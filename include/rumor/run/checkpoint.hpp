#pragma once
// The checkpoint file format (format 2) and the run directory's checkpoint layout.
//
// A checkpoint is named fields (a JSON object: round, counters, method state, ...) and
// named float buffers (model, momentum, method state vectors). On disk, little-endian:
//   "RUMORCKP"  u32 format (2)  u32 header bytes H  u64 body bytes B
//   H bytes of JSON header: {"fields": {...}, "buffers": [{"name": .., "size": floats}, ..]}
//   B bytes of buffers, in header order, fp32
//   u32 CRC-32 (zlib) of every byte before it
// Files are written to a temporary name, fsynced and renamed, so a crash leaves either the
// old checkpoint or the new one. Readers check magic, format, sizes and checksum before
// trusting any of it. Thread safety: free functions on distinct files are independent.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "rumor/common/error.hpp"

namespace rumor::run {

// A checkpoint file that cannot be used: the message names the file and what is wrong.
class CheckpointError : public Error {
 public:
  using Error::Error;
};

inline constexpr std::uint32_t kCheckpointFormat = 2;

struct CheckpointBufferView {
  std::string name;
  std::span<const float> data;
};

struct Checkpoint {
  struct Buffer {
    std::string name;
    std::vector<float> data;
  };
  nlohmann::json fields;
  std::vector<Buffer> buffers;  // in file order
};

// Writes path atomically (temporary file, fsync, rename). Throws Error when it cannot.
void write_checkpoint(const std::string& path, const nlohmann::json& fields,
                      const std::vector<CheckpointBufferView>& buffers);
// Reads and verifies path. Throws CheckpointError naming the file and the problem
// (missing, truncated, checksum mismatch, older or newer format, not a checkpoint).
Checkpoint read_checkpoint(const std::string& path);
// What is wrong with path, or "" when it reads back whole (no buffers are kept).
std::string checkpoint_problem(const std::string& path);

// <run_dir>/checkpoints/node-<id>-r<round>.ckpt
std::string checkpoint_path(const std::string& run_dir, int id, std::int64_t round);
// Rounds for which node `id` has a checkpoint in run_dir, ascending.
std::vector<std::int64_t> checkpoint_rounds(const std::string& run_dir, int id);
// The last round every one of n nodes has a checkpoint file for; -1 when there is none.
std::int64_t common_checkpoint(const std::string& run_dir, int n);

// Where a resumed run continues: the newest round every node has a good checkpoint for.
struct ResumePoint {
  std::int64_t round = -1;
  // One line per newer common round that was passed over, naming the bad file and why.
  std::vector<std::string> skipped;
};
// Throws Error naming run_dir when no round has a good checkpoint on every node.
ResumePoint find_resume_point(const std::string& run_dir, int n);

}  // namespace rumor::run
