#pragma once
// Facts about the machine and the run that the results files record.
#include <string>

namespace omniattn::cli {

struct CpuInfo {
  std::string model;   // "AMD EPYC 9555 64-Core Processor" (/proc/cpuinfo "model name")
  std::string vendor;  // "AuthenticAMD", "GenuineIntel", ...
  int family = -1, model_number = -1;
  int logical_cpus = 0;
  std::string slug;  // "cpu-epyc-zen5": the folder name under bench/results
};
CpuInfo cpu_info();

/// "h100" from "NVIDIA H100 80GB HBM3": the results folder of a GPU.
std::string gpu_slug(const std::string& device_name);

/// Today's date, YYYY-MM-DD (UTC).
std::string today();
/// The current git commit (short sha, "-dirty" when the tree has changes), or "unknown" outside a checkout.
std::string git_commit();

}  // namespace omniattn::cli
