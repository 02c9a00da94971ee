// The fp32 peak a receiving transport takes of each payload: the vector path against the
// scalar reference, piece by piece against all at once, and what arrives over each transport.
#include <doctest/doctest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "net_fixture.hpp"
#include "peak_scan.hpp"

using namespace rumor;
using namespace rumor::net;
using namespace rumor::net::testing;

namespace {

// Random words with the patterns a range check must see: NaNs, infinities, -0, denormals.
std::vector<std::uint8_t> words_with_specials(std::size_t bytes, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<std::uint8_t> out(bytes);
  for (auto& b : out) b = static_cast<std::uint8_t>(rng());
  const float specials[] = {
      std::numeric_limits<float>::quiet_NaN(), -std::numeric_limits<float>::infinity(), -0.0f,
      std::numeric_limits<float>::denorm_min(), -std::numeric_limits<float>::max()};
  for (const float f : specials) {
    if (bytes < 4 || rng() % 3 != 0) continue;
    const std::size_t at = rng() % (bytes - 3);
    std::memcpy(out.data() + at, &f, 4);
  }
  return out;
}

// The peak by definition: words counted back from the end, the sign bit cleared.
std::uint32_t expected_peak(const std::vector<std::uint8_t>& p) {
  std::uint32_t top = 0;
  for (std::size_t at = p.size() % 4; at + 4 <= p.size(); at += 4) {
    std::uint32_t w;
    std::memcpy(&w, p.data() + at, 4);
    top = std::max(top, w & 0x7fffffffu);
  }
  return top;
}

}  // namespace

TEST_SUITE("net") {
  TEST_CASE(
      "fp32 peak: the vector path gives the scalar reference's value, any length and offset") {
    for (std::size_t words : {0, 1, 7, 15, 16, 17, 33, 100, 1000, 100003}) {
      for (std::size_t offset = 0; offset < 4; ++offset) {
        const auto bytes =
            words_with_specials(4 * words + offset, static_cast<std::uint32_t>(words + offset));
        CAPTURE(words);
        CAPTURE(offset);
        const std::uint32_t scalar = fp32_peak(bytes.data() + offset, words, false);
        CHECK(fp32_peak(bytes.data() + offset, words, true) == scalar);
      }
    }
    const float big = 7.0f, nan = std::numeric_limits<float>::quiet_NaN();
    std::vector<std::uint8_t> two(8);
    std::memcpy(two.data(), &big, 4);
    CHECK(fp32_peak(two.data(), 2) == std::bit_cast<std::uint32_t>(big));
    std::memcpy(two.data() + 4, &nan, 4);
    CHECK(fp32_peak(two.data(), 2) >
          std::bit_cast<std::uint32_t>(std::numeric_limits<float>::infinity()));
  }

  TEST_CASE("fp32 peak: taken piece by piece, whatever the pieces, it is the whole payload's") {
    std::mt19937 rng(11);
    for (std::size_t size = 0; size < 64; ++size) {
      const auto p = words_with_specials(size, static_cast<std::uint32_t>(size));
      for (int trial = 0; trial < 5; ++trial) {
        PeakScan scan;
        scan.reset(size);
        std::size_t have = 0;
        while (have < size) {
          have = std::min(size, have + 1 + rng() % 9);
          scan.advance(p.data(), have);
        }
        CAPTURE(size);
        CHECK(scan.peak() == expected_peak(p));
      }
    }
  }

  TEST_CASE("received payloads carry their fp32 peak over TCP and shared memory, not in-process") {
    // A codec's 5 header bytes (tag, value count), then values: the grid counted from the end
    // holds the values and the count (a denormal as a float); the tag is in no word.
    std::vector<std::uint8_t> bytes(5 + 4 * 70000);
    for (std::size_t k = 0; k < 70000; ++k) {
      const float v = static_cast<float>(k % 1000) - 500.0f;
      std::memcpy(bytes.data() + 5 + 4 * k, &v, 4);
    }
    bytes[0] = 0xff;  // would read as a NaN in a word
    const std::uint32_t count = 70000;
    std::memcpy(bytes.data() + 1, &count, 4);
    const float nan = std::numeric_limits<float>::quiet_NaN();
    for (Kind kind : {Kind::kTcp, Kind::kShm, Kind::kInProc}) {
      const std::string kind_name = name(kind);
      CAPTURE(kind_name);
      Cluster c(kind, ring_topology(2));
      std::vector<std::uint8_t> with_nan = bytes;
      std::memcpy(with_nan.data() + 5 + 4 * 12345, &nan, 4);
      for (int round = 0; round < 2; ++round) {
        Message m;
        m.round = round;
        m.payload = Payload::copy_of(round == 0 ? bytes : with_nan);
        REQUIRE(c.node(0).send(1, std::move(m)));
      }
      auto plain = c.node(1).take(0, 0, kWait);
      auto bad = c.node(1).take(0, 1, kWait);
      REQUIRE(plain.has_value());
      REQUIRE(bad.has_value());
      if (kind == Kind::kInProc) {
        CHECK_FALSE(plain->payload.fp32_peak().has_value());
        continue;
      }
      REQUIRE(plain->payload.fp32_peak().has_value());
      CHECK(*plain->payload.fp32_peak() == std::bit_cast<std::uint32_t>(500.0f));
      REQUIRE(bad->payload.fp32_peak().has_value());
      CHECK(*bad->payload.fp32_peak() >
            std::bit_cast<std::uint32_t>(std::numeric_limits<float>::infinity()));
    }
  }
}
