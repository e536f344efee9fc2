#include "machine.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

namespace omniattn::cli {
namespace {

std::string trim(std::string s) {
  const auto not_space = [](unsigned char c) { return !std::isspace(c); };
  s.erase(s.begin(), std::find_if(s.begin(), s.end(), not_space));
  s.erase(std::find_if(s.rbegin(), s.rend(), not_space).base(), s.end());
  return s;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Lower-case words of `s` joined by '-', trademarks and filler words dropped.
std::string slugify(const std::string& s) {
  static const std::vector<std::string> filler = {"r", "tm", "cpu", "processor", "core", "with", "radeon", "graphics"};
  std::string out, word;
  auto flush = [&] {
    if (!word.empty() && std::find(filler.begin(), filler.end(), word) == filler.end() &&
        word.find("ghz") == std::string::npos)
      out += (out.empty() ? "" : "-") + word;
    word.clear();
  };
  for (char c : lower(s)) {
    if (std::isalnum(static_cast<unsigned char>(c)))
      word += c;
    else
      flush();
  }
  flush();
  return out;
}

// AMD's microarchitecture from CPUID family/model (as /proc/cpuinfo reports them in decimal).
std::string amd_core(int family, int model) {
  if (family == 0x17) return model >= 0x30 ? "zen2" : "zen";
  if (family == 0x19) {
    const bool zen4 =
        (model >= 0x10 && model <= 0x1f) || (model >= 0x60 && model <= 0x7f) || (model >= 0xa0 && model <= 0xaf);
    return zen4 ? "zen4" : "zen3";
  }
  if (family == 0x1a) return "zen5";
  return family >= 0 ? fmt::format("family{}", family) : "";
}

std::string make_slug(const CpuInfo& c) {
  const std::string name = lower(c.model);
  if (c.vendor == "AuthenticAMD") {
    std::string product = name.find("epyc") != std::string::npos           ? "epyc"
                          : name.find("threadripper") != std::string::npos ? "threadripper"
                          : name.find("ryzen") != std::string::npos        ? "ryzen"
                                                                           : "amd";
    const std::string core = amd_core(c.family, c.model_number);
    return "cpu-" + product + (core.empty() ? "" : "-" + core);
  }
  std::string s = slugify(c.model);
  if (s.rfind("intel-", 0) == 0) s = s.substr(6);
  return "cpu-" + (s.empty() ? std::string("unknown") : s);
}

std::string run_command(const char* command) {
  std::string out;
  if (FILE* pipe = popen(command, "r")) {
    char buffer[256];
    while (fgets(buffer, sizeof buffer, pipe)) out += buffer;
    pclose(pipe);
  }
  return trim(out);
}

}  // namespace

CpuInfo cpu_info() {
  CpuInfo c;
  c.logical_cpus = static_cast<int>(std::thread::hardware_concurrency());
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    const std::string key = trim(line.substr(0, colon)), value = trim(line.substr(colon + 1));
    if (key == "model name" && c.model.empty())
      c.model = value;
    else if (key == "vendor_id" && c.vendor.empty())
      c.vendor = value;
    else if (key == "cpu family" && c.family < 0)
      c.family = std::atoi(value.c_str());
    else if (key == "model" && c.model_number < 0)
      c.model_number = std::atoi(value.c_str());
  }
  if (c.model.empty()) {  // e.g. Arm, whose /proc/cpuinfo has no model name
    std::istringstream lscpu(run_command("lscpu 2>/dev/null"));
    while (std::getline(lscpu, line))
      if (line.rfind("Model name:", 0) == 0) c.model = trim(line.substr(11));
  }
  if (c.model.empty()) c.model = "unknown CPU";
  c.slug = make_slug(c);
  return c;
}

std::string gpu_slug(const std::string& device_name) {
  std::string s = slugify(device_name);
  if (s.rfind("nvidia-", 0) == 0) s = s.substr(7);
  const auto dash = s.find('-');  // "h100-80gb-hbm3" -> "h100"
  return dash == std::string::npos ? s : s.substr(0, dash);
}

std::string today() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buffer[16];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%d", &tm);
  return buffer;
}

std::string git_commit() {
  std::string sha = run_command("git rev-parse --short=12 HEAD 2>/dev/null");
  if (sha.empty()) return "unknown";
  if (!run_command("git status --porcelain --untracked-files=no 2>/dev/null").empty()) sha += "-dirty";
  return sha;
}

}  // namespace omniattn::cli
