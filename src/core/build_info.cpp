// Build facts for `omniattn info`: compiler, CUDA archs compiled in, SIMD targets compiled and chosen.
#include <fmt/format.h>
#include <hwy/targets.h>

#include "omniattn/version.hpp"

namespace omniattn {

std::string build_info() {
  std::string simd;
  for (int64_t t : hwy::SupportedAndGeneratedTargets()) simd += std::string(simd.empty() ? "" : " ") + hwy::TargetName(t);
  return fmt::format("omniattn {} | compiler {} | CUDA {} | SIMD targets usable here: {}", kVersion, __VERSION__,
#if OMNIATTN_WITH_CUDA
                     "sm_90a sm_80",
#else
                     "not built (no nvcc)",
#endif
                     simd.empty() ? "none" : simd);
}

}  // namespace omniattn
