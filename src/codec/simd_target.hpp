#pragma once
// Internal to the kernel files: the AVX2 target attribute and the run-time choice of kernel.
#include "simd.hpp"

#if defined(__x86_64__)
#include <immintrin.h>
#define RUMOR_SIMD_X86 1
#define RUMOR_AVX2 __attribute__((target("avx2,f16c,bmi,bmi2,popcnt")))
#define RUMOR_DISPATCH(name, ...) \
  (isa == Isa::kAvx2 ? name##_avx2(__VA_ARGS__) : name##_scalar(__VA_ARGS__))
#else
#define RUMOR_DISPATCH(name, ...) name##_scalar(__VA_ARGS__)
#endif
