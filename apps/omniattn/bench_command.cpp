// `omniattn bench`: a suite of cases on one device, a table on stdout, JSON in the results schema
// (docs/cli.md, ARCHITECTURE.md "Results schema").
#include <fmt/format.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "bench_case.hpp"
#include "commands.hpp"
#include "device_array.hpp"
#include "machine.hpp"

namespace omniattn::cli {
namespace {

DType parse_dtype(const std::string& s) {
  if (s == "f32" || s == "fp32" || s == "float32") return DType::f32;
  if (s == "bf16" || s == "bfloat16") return DType::bf16;
  if (s == "f16" || s == "fp16" || s == "float16") return DType::f16;
  throw Error("--dtypes", "f32, bf16 or f16", s);
}

Backend parse_backend(const std::string& s) {
  for (Backend b : {Backend::automatic, Backend::reference, Backend::cpu, Backend::cuda_sm80, Backend::cuda_sm90})
    if (s == to_string(b)) return b;
  if (s == "auto") return Backend::automatic;
  throw Error("--backend", "auto, cpu, cuda_sm80, cuda_sm90 or reference", s);
}

// The JSON `impl` of our rows: "omniattn" for the automatic (best) path, else "omniattn_<backend>".
std::string impl_name(const BenchOptions& o, Backend backend) {
  if (!o.impl.empty()) return o.impl;
  switch (backend) {
    case Backend::automatic:
      return "omniattn";
    case Backend::cuda_sm80:
      return "omniattn_sm80";
    case Backend::cuda_sm90:
      return "omniattn_sm90";
    default:
      return "omniattn_" + to_string(backend);
  }
}

// The default suite: what `make run` shows. On the CPU it stays near a minute on two cores.
std::vector<BenchCase> default_suite(Device device) {
  std::vector<BenchCase> cases;
  auto add = [&](const char* op, const char* mask, DType dtype, int64_t batch, int64_t seqlen) {
    BenchCase c;
    c.op = op;
    c.mask = mask;
    c.dtype = dtype;
    c.batch = batch;
    c.sq = c.sk = seqlen;
    cases.push_back(c);
  };
  if (device.is_cpu()) {
    for (const char* mask : {"none", "causal"}) add("fwd", mask, DType::f32, 1, 4096);
    for (const char* mask : {"none", "causal"}) add("fwd", mask, DType::bf16, 1, 4096);
    add("fwd", "window", DType::f32, 1, 4096);
    for (const char* mask : {"none", "causal"}) add("fwd", mask, DType::f32, 1, 1024);
    add("fwd", "causal", DType::f32, 1, 4096);
    cases.back().d = cases.back().dv = 64;
    add("fwd", "causal", DType::f32, 1, 4096);
    cases.back().hkv = 2;  // GQA: 8 query heads per KV head
    for (const char* mask : {"none", "causal"}) add("bwd", mask, DType::f32, 1, 4096);
    for (const char* mask : {"none", "causal"}) add("bwd", mask, DType::f32, 1, 1024);
    return cases;
  }
  // GPU: 16k tokens per batch at every length, as FlashAttention's benchmarks.
  for (const char* op : {"fwd", "bwd"})
    for (int64_t seqlen : {1024, 4096, 16384})
      for (const char* mask : {"none", "causal"}) add(op, mask, DType::bf16, 16384 / seqlen, seqlen);
  return cases;
}

std::vector<BenchCase> custom_suite(const BenchOptions& o, Device device) {
  std::vector<BenchCase> cases;
  const std::vector<std::string> ops = o.ops.empty() ? std::vector<std::string>{"fwd"} : o.ops;
  const std::vector<std::string> masks = o.masks.empty() ? std::vector<std::string>{"none", "causal"} : o.masks;
  const std::vector<std::string> dtypes =
      o.dtypes.empty() ? std::vector<std::string>{device.is_cpu() ? "f32" : "bf16"} : o.dtypes;
  const std::vector<int64_t> seqlens = o.seqlens.empty() ? std::vector<int64_t>{4096} : o.seqlens;
  for (const auto& op : ops)
    for (const auto& dtype : dtypes)
      for (int64_t seqlen : seqlens)
        for (const auto& mask : masks) {
          BenchCase c;
          c.op = op;
          c.mask = mask;
          c.dtype = parse_dtype(dtype);
          c.sq = seqlen;
          c.sk = o.seqlen_k > 0 ? o.seqlen_k : seqlen;
          c.batch = o.batch > 0 ? o.batch : (device.is_cpu() ? 1 : std::max<int64_t>(1, 16384 / seqlen));
          c.hq = o.heads;
          c.hkv = o.kv_heads > 0 ? o.kv_heads : o.heads;
          c.d = o.dim;
          c.dv = o.dim_v > 0 ? o.dim_v : o.dim;
          c.window = o.window;
          (void)c.options();  // rejects an unknown mask before anything runs
          cases.push_back(c);
        }
  return cases;
}

// "[3/9] fwd causal f32 ... run 2/6" on stderr, overwritten in place, only on a terminal (in a log the
// table rows, printed as each case finishes, show the progress; stderr stays for errors).
struct Progress {
  bool tty = isatty(STDERR_FILENO) != 0;
  std::string label;
  static void report(void* self, int done, int total) {
    auto* p = static_cast<Progress*>(self);
    if (p->tty) fmt::print(stderr, "\r\033[K{}  run {}/{}", p->label, done + 1, total);
  }
  void start(const std::string& l) { label = l; }
  void clear() const {
    if (tty) fmt::print(stderr, "\r\033[K");
  }
};

constexpr const char* kRowFormat = "{:<4} {:<10} {:<10} {:<5} {:>3} {:>7} {:>6} {:>6} {:>7} {:>10} {:>8} {:>7} {:>9}\n";

void print_header() {
  fmt::print(kRowFormat, "op", "backend", "mask", "dtype", "B", "Hq/Hkv", "Sq", "Sk", "D/Dv", "ms", "TFLOP/s", "TB/s",
             "rel_err");
  std::fflush(stdout);
}

void print_row(const BenchCase& c, const BenchResult& r) {
  const std::string mask = c.mask == "window" ? fmt::format("win{}", c.window) : c.mask;
  fmt::print(kRowFormat, c.op, r.backend, mask, to_string(c.dtype), c.batch, fmt::format("{}/{}", c.hq, c.hkv), c.sq,
             c.sk, fmt::format("{}/{}", c.d, c.dv), fmt::format("{:.3f}", r.ms), fmt::format("{:.4f}", r.tflops),
             fmt::format("{:.4f}", r.tbps), r.rel_err ? fmt::format("{:.2e}", *r.rel_err) : "-");
  std::fflush(stdout);
}

nlohmann::ordered_json json_row(const BenchCase& c, const BenchResult& r, const std::string& impl) {
  nlohmann::ordered_json row;
  row["op"] = c.op;
  row["impl"] = impl;
  row["mask"] = c.mask;
  row["dtype"] = to_string(c.dtype);
  row["B"] = c.batch;
  row["Hq"] = c.hq;
  row["Hkv"] = c.hkv;
  row["Sq"] = c.sq;
  row["Sk"] = c.sk;
  row["D"] = c.d;
  row["Dv"] = c.dv;
  row["density"] = r.density;
  row["ms"] = r.ms;
  row["tflops"] = r.tflops;
  row["tbps"] = r.tbps;
  row["rel_err"] = r.rel_err ? nlohmann::ordered_json(*r.rel_err) : nlohmann::ordered_json(nullptr);
  row["backend"] = r.backend;
  if (c.mask == "window") row["window_left"] = c.window;
  return row;
}

// Default JSON path: bench/results/<machine>/<suite>.json when run from the repository root (where
// bench/results exists), else omniattn-bench-<machine>-<suite>.json in the current directory.
std::string default_json_path(const std::string& machine, const std::string& suite) {
  if (std::filesystem::is_directory("bench/results")) return fmt::format("bench/results/{}/{}.json", machine, suite);
  return fmt::format("omniattn-bench-{}-{}.json", machine, suite);
}

}  // namespace

int run_bench(const BenchOptions& o, const std::string& command_line) {
  const Device device =
      o.device == "auto" ? (cuda_device_count() > 0 ? Device::cuda(0) : Device::cpu()) : parse_device(o.device);
  const Backend backend = parse_backend(o.backend);
  const int threads = apply_threads(o.threads);
  const std::vector<BenchCase> cases = o.custom ? custom_suite(o, device) : default_suite(device);

  std::string device_name, machine;
  if (device.is_cpu()) {
    const CpuInfo cpu = cpu_info();
    device_name = cpu.model;
    machine = cpu.slug;
  } else {
    device_name = cuda_device_info(device.index).name;
    machine = gpu_slug(device_name);
  }
  fmt::print("omniattn bench on {} ({}{}), {} warm-up + {} timed runs per case, median\n", device_name,
             to_string(device), device.is_cpu() ? fmt::format(", {} threads", threads) : "", o.warmup, o.repeats);

  TimingSettings settings;
  settings.device = device;
  settings.backend = backend;
  settings.allow_reference = backend == Backend::reference;
  settings.repeats = o.repeats;
  settings.warmup = o.warmup;
  settings.check_rows = o.check_rows;
  settings.seed = o.seed;
  Progress progress;
  settings.progress = &Progress::report;
  settings.progress_context = &progress;

  nlohmann::ordered_json doc;
  doc["device"] = device_name;
  doc["date"] = today();
  doc["commit"] = git_commit();
  doc["command"] = command_line;
  doc["machine"] = machine;
  if (device.is_cpu()) doc["threads"] = threads;
  doc["rows"] = nlohmann::ordered_json::array();

  print_header();
  int skipped = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    progress.start(fmt::format("[{}/{}] {}", i + 1, cases.size(), cases[i].name()));
    BenchResult r;
    try {
      r = run_case(cases[i], settings);
    } catch (...) {
      progress.clear();  // the error message gets a line of its own
      throw;
    }
    progress.clear();
    if (!r.skipped.empty()) {
      fmt::print("{:<58} skipped: {}\n", cases[i].name(), r.skipped);
      ++skipped;
      continue;
    }
    print_row(cases[i], r);
    doc["rows"].push_back(json_row(cases[i], r, impl_name(o, backend)));
  }

  // A custom run writes JSON only when asked (--json or --suite), so trying shapes leaves no files behind.
  std::string path = o.json_path;
  if (path.empty() && (!o.custom || !o.suite.empty()))
    path = default_json_path(machine, o.suite.empty() ? "default" : o.suite);
  if (path.empty()) fmt::print("(not saved: --json PATH or --suite NAME writes the JSON)\n");
  if (!path.empty() && path != "none") {
    const std::filesystem::path p(path);
    if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path());
    std::ofstream file(p);
    if (!file) throw Error("--json", "a writable file path", path);
    file << doc.dump(2) << "\n";
    fmt::print("wrote {} ({} rows{})\n", path, doc["rows"].size(),
               skipped ? fmt::format(", {} cases skipped", skipped) : "");
  }
  return 0;
}

}  // namespace omniattn::cli
