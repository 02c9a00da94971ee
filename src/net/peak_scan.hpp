#pragma once
// The fp32 peak of a payload taken while it arrives (internal to the net module).
//
// A receiving transport copies a payload into this process's own buffer a piece at a time
// (64 KB from a socket, up to 512 KB from a shared-memory ring). Right after each piece lands,
// while it is still in cache, its whole 4-byte words are scanned for the largest magnitude read
// as fp32; the delivered payload carries it (Payload::fp32_peak), so a method's range check of
// raw fp32 values is one comparison instead of another pass over memory. Words are counted back
// from the payload's end (a codec's header comes first, its values last). The scan reads the
// private copy, never the peer's memory: nothing can change the bytes after they are measured.
#include <cstddef>
#include <cstdint>

namespace rumor::net {

// max over i < words of (the 4 bytes at p + 4 i, little-endian) & 0x7fffffff, or 0 for none;
// p any alignment. `vector` false takes the scalar reference path (tests compare the two).
std::uint32_t fp32_peak(const std::uint8_t* p, std::size_t words, bool vector = true);

class PeakScan {
 public:
  // A payload of `size` bytes starts.
  void reset(std::size_t size) {
    phase_ = size % 4;
    words_ = 0;
    peak_ = 0;
  }
  // Bytes [0, have) of the payload at `base` are in: scans the whole words not scanned yet.
  void advance(const std::uint8_t* base, std::size_t have);
  std::uint32_t peak() const { return peak_; }

 private:
  std::size_t phase_ = 0;  // bytes before the first word
  std::size_t words_ = 0;
  std::uint32_t peak_ = 0;
};

}  // namespace rumor::net
