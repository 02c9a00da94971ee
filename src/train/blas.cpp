// Which BLAS is loaded, and a fix for OpenBLAS's CPU detection; found at run time with
// dlsym so that rumor never links a BLAS itself (LibTorch picks it via alternatives).
#include <dlfcn.h>
#include <link.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <string>

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
  ::execv("/proc/self/exe", argv);
  // exec failed (no /proc?): carry on with the slow kernels.
}

}  // namespace rumor::train
