// Which BLAS is loaded, and a fix for OpenBLAS's CPU detection; found at run time with
// dlsym so that rumor never links a BLAS itself (LibTorch picks it via alternatives).
#include <dlfcn.h>
#include <link.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "rumor/train/model.hpp"

namespace rumor::train {
namespace {

int find_blas_lib(dl_phdr_info* info, std::size_t, void* out) {
  const char* name = info->dlpi_name;
  if (name && (std::strstr(name, "blas") || std::strstr(name, "mkl"))) {
    auto* s = static_cast<std::string*>(out);
    if (!s->empty()) *s += ", ";
    *s += name;
  }
  return 0;
}

}  // namespace

std::string loaded_blas() {
  using GetString = char* (*)();
  if (void* sym = ::dlsym(RTLD_DEFAULT, "openblas_get_config")) {
    std::string config = reinterpret_cast<GetString>(sym)();
    std::string out = config.rfind("OpenBLAS", 0) == 0 ? config : "OpenBLAS " + config;
    if (void* core = ::dlsym(RTLD_DEFAULT, "openblas_get_corename")) {
      out += ", core " + std::string(reinterpret_cast<GetString>(core)());
    }
    Dl_info info{};
    if (::dladdr(sym, &info) && info.dli_fname) out += std::string(" (") + info.dli_fname + ")";
    return out;
  }
  if (::dlsym(RTLD_DEFAULT, "mkl_get_version_string")) return "Intel MKL";
  std::string libs;
  dl_iterate_phdr(find_blas_lib, &libs);
  return libs.empty() ? "unknown" : "unknown BLAS (" + libs + ")";
}

void ensure_blas_core(char** argv) {
  if (std::getenv("OPENBLAS_CORETYPE") || std::getenv("RUMOR_NO_BLAS_REEXEC")) return;
  using GetString = char* (*)();
  auto corename = reinterpret_cast<GetString>(::dlsym(RTLD_DEFAULT, "openblas_get_corename"));
  if (!corename) return;
  std::string core = corename();
  std::transform(core.begin(), core.end(), core.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  static const char* const kGeneric[] = {"prescott",   "core2",   "penryn",
                                         "dunnington", "nehalem", "sandybridge"};
  if (std::none_of(std::begin(kGeneric), std::end(kGeneric),
                   [&](const char* g) { return core == g; }))
    return;
  const char* better = nullptr;
  if (__builtin_cpu_supports("avx512f")) {
    better = "SkylakeX";
  } else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    better = "Haswell";
  }
  if (!better) return;  // the generic core is right for this CPU
  ::setenv("OPENBLAS_CORETYPE", better, 1);
  ::setenv("RUMOR_BLAS_FORCED", "1", 1);  // the re-executed process checks the kernels once
  ::execv("/proc/self/exe", argv);
  // exec failed (no /proc?): carry on with the slow kernels.
}

bool blas_self_check() {
  // Older OpenBLAS builds are known to compute wrong results on some CPUs they do not know,
  // so the kernels chosen for this one are checked against a plain triple loop on the shapes
  // rumor's models use (a 32 x 784 batch times 784 x 128 weights, and a ragged one).
  using Sgemm = void (*)(int, int, int, int, int, int, float, const float*, int, const float*, int,
                         float, float*, int);
  auto sgemm = reinterpret_cast<Sgemm>(::dlsym(RTLD_DEFAULT, "cblas_sgemm"));
  if (!sgemm) return true;  // not OpenBLAS: nothing of ours to check
  constexpr int kRowMajor = 101, kNoTrans = 111;
  const int shapes[][3] = {{32, 128, 784}, {37, 29, 61}, {128, 10, 128}};
  std::uint64_t state = 0x9e3779b97f4a7c15ULL;
  auto next = [&state] {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<float>(static_cast<std::int32_t>(state >> 33)) / 1073741824.0f;
  };
  for (const auto& sh : shapes) {
    const int m = sh[0], n = sh[1], k = sh[2];
    std::vector<float> a(static_cast<std::size_t>(m) * k), b(static_cast<std::size_t>(k) * n),
        c(static_cast<std::size_t>(m) * n, 0.0f);
    for (auto& v : a) v = next();
    for (auto& v : b) v = next();
    sgemm(kRowMajor, kNoTrans, kNoTrans, m, n, k, 1.0f, a.data(), k, b.data(), n, 0.0f, c.data(),
          n);
    for (int i = 0; i < m; ++i) {
      for (int j = 0; j < n; ++j) {
        double ref = 0, mag = 0;
        for (int t = 0; t < k; ++t) {
          const double p = static_cast<double>(a[i * k + t]) * b[t * n + j];
          ref += p;
          mag += std::abs(p);
        }
        if (std::abs(c[i * n + j] - ref) > 1e-5 * (mag + 1.0)) return false;
      }
    }
  }
  return true;
}

void verify_forced_blas_core(char** argv) {
  if (!std::getenv("RUMOR_BLAS_FORCED")) return;
  ::unsetenv("RUMOR_BLAS_FORCED");
  if (blas_self_check()) return;
  // The forced kernels compute wrong results here: go back to OpenBLAS's own choice.
  std::fprintf(stderr,
               "rumor: warning: OpenBLAS kernels for core %s fail a self-check on this CPU; "
               "using OpenBLAS's own (slower) choice\n",
               std::getenv("OPENBLAS_CORETYPE"));
  ::unsetenv("OPENBLAS_CORETYPE");
  ::setenv("RUMOR_NO_BLAS_REEXEC", "1", 1);
  ::execv("/proc/self/exe", argv);
}

}  // namespace rumor::train
