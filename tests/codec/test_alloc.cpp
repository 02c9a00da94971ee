// Encoders allocate nothing in steady state: counts heap allocations with a replaced global
// operator new (this test binary only).
#include <doctest/doctest.h>

#include <atomic>
#include <cstdlib>
#include <new>

#include "helpers.hpp"

namespace {
std::atomic<long> g_allocations{0};
}

// Every non-aligned form is replaced, so that new/delete pairs stay matched (ASan checks).
void* operator new(std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) {
  return operator new(n);
}
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  return std::malloc(n == 0 ? 1 : n);
}
void* operator new[](std::size_t n, const std::nothrow_t& t) noexcept {
  return operator new(n, t);
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}
void operator delete[](void* p) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::size_t) noexcept {
  std::free(p);
}
void operator delete(void* p, const std::nothrow_t&) noexcept {
  std::free(p);
}
void operator delete[](void* p, const std::nothrow_t&) noexcept {
  std::free(p);
}

using namespace rumor::codec;
using namespace rumor::codec::test;

TEST_SUITE("codec") {
  TEST_CASE("encoders allocate nothing in steady state") {
    const std::size_t d = 200000;
    auto x = gaussian(d, 5);
    std::vector<float> sent(d);
    for (const char* spec :
         {"fp32", "fp16", "bf16", "qsgd:4", "qsgd:3:biased:chunk=100", "sign", "topk:0.01",
          "topk:0.001|qsgd:4:biased", "topk:0.01|sign", "randk:0.01:unbiased", "sketch",
          "ef|topk:0.01", "ef|qsgd:2:biased", "ef|sketch"}) {
      const std::string spec_s = spec;
      CAPTURE(spec_s);
      auto c = make_codec(spec);
      auto enc = c->make_encoder(d);
      Bytes b;
      // Warm-up: buffers reach their steady-state size.
      for (std::uint64_t r = 0; r < 2; ++r) enc->encode(x, {1, r, 0}, b, sent);
      const long before = g_allocations.load();
      for (std::uint64_t r = 2; r < 6; ++r) {
        x[r] += 1.0f;  // a different vector each round
        enc->encode(x, {1, r, 0}, b, sent);
        enc->encode(x, {1, r, 0}, b);
      }
      CHECK(g_allocations.load() - before == 0);
    }
  }
}
