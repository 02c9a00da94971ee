#pragma once
// Structured reading of a libFuzzer input: numbers and byte runs taken from the front, zeros
// once it is used up, so every input (including the empty one) is a valid program.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

namespace rumor::fuzz {

class Input {
 public:
  Input(const std::uint8_t* data, std::size_t size) : p_(data), n_(size) {}
  bool empty() const { return n_ == 0; }
  std::size_t left() const { return n_; }

  template <typename T>
  T take() {
    T v{};
    std::uint8_t buf[sizeof(T)] = {};
    const std::size_t k = n_ < sizeof(T) ? n_ : sizeof(T);
    std::memcpy(buf, p_, k);
    p_ += k;
    n_ -= k;
    std::memcpy(&v, buf, sizeof(T));
    return v;
  }
  std::uint8_t byte() { return take<std::uint8_t>(); }
  bool flag() { return (byte() & 1) != 0; }
  // An index below `n` (n > 0).
  std::size_t pick(std::size_t n) { return take<std::uint16_t>() % n; }

  // Up to `n` bytes (fewer when the input ends).
  std::span<const std::uint8_t> bytes(std::size_t n) {
    const std::size_t k = n < n_ ? n : n_;
    std::span<const std::uint8_t> out(p_, k);
    p_ += k;
    n_ -= k;
    return out;
  }
  // Exactly `n` bytes: the input's next ones, zero-padded at its end.
  std::vector<std::uint8_t> padded(std::size_t n) {
    const auto b = bytes(n);
    std::vector<std::uint8_t> out(b.begin(), b.end());
    out.resize(n, 0);
    return out;
  }

 private:
  const std::uint8_t* p_;
  std::size_t n_;
};

}  // namespace rumor::fuzz
