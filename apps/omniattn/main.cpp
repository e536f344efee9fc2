// omniattn: benchmark, verify and describe the attention backends of this build.
//   omniattn bench    a suite on the best device: table + JSON (bench/results/<machine>/<suite>.json)
//   omniattn verify   every backend against the float64 reference on random cases
//   omniattn info     build, devices, SIMD target, and what each backend supports
//   omniattn peak     measured fp32 FMA peak of this CPU
// Errors (bad flags, omniattn::Error) print one line on stderr and exit with code 2.
#include <fmt/format.h>
#include <omp.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <new>

#include "commands.hpp"
#include "omniattn/omniattn.hpp"

namespace omniattn::cli {

int apply_threads(int threads) {
  if (threads < 0) throw Error("--threads", ">= 0 (0: all)", std::to_string(threads));
  if (threads > 0) omp_set_num_threads(threads);
  return omp_get_max_threads();
}

namespace {

// Bounded ranges (CLI11's PositiveNumber prints DBL_MAX in its message).
const CLI::Range kPositive(1, 1 << 30, "POSITIVE");
const CLI::Range kNonNegative(0, 1 << 30, "NON-NEGATIVE");

std::string one_line(std::string s) {
  std::replace(s.begin(), s.end(), '\n', ' ');
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

std::string joined_command_line(int argc, char** argv) {
  std::string s = "omniattn";
  for (int i = 1; i < argc; ++i) s += std::string(" ") + argv[i];
  return s;
}

void add_bench(CLI::App& app, BenchOptions& o) {
  auto* bench = app.add_subcommand("bench", "Benchmark a suite (default: the default suite on the best device)");
  // Shape/mask/dtype/op flags replace the default suite by their cartesian product.
  const std::vector<CLI::Option*> shape_flags = {
      bench->add_option("--ops", o.ops, "Operations: fwd, bwd")->delimiter(','),
      bench->add_option("--masks", o.masks, "Masks: none, causal, window")->delimiter(','),
      bench->add_option("--dtypes", o.dtypes, "Dtypes: f32, bf16, f16")->delimiter(','),
      bench->add_option("--seqlens", o.seqlens, "Query lengths (keys as many unless --seqlen-k)")->delimiter(','),
      bench->add_option("--seqlen-k", o.seqlen_k, "Key length (0: same as the query)"),
      bench->add_option("--batch", o.batch, "Batch (0: 1 on a CPU, 16384/Sq on a GPU)"),
      bench->add_option("--heads", o.heads, "Query heads")->capture_default_str(),
      bench->add_option("--kv-heads", o.kv_heads, "KV heads (0: as many as query heads)"),
      bench->add_option("--dim", o.dim, "Head dim of Q and K")->capture_default_str(),
      bench->add_option("--dim-v", o.dim_v, "Head dim of V (0: --dim)"),
      bench->add_option("--window", o.window, "window_left of the window mask")->capture_default_str(),
  };
  bench->add_option("--device", o.device, "auto, cpu, cuda, cuda:N")->capture_default_str();
  bench->add_option("--backend", o.backend, "auto, cpu, cuda_sm80, cuda_sm90, reference")->capture_default_str();
  bench->add_option("--repeats", o.repeats, "Timed runs per case (median)")->capture_default_str()->check(kPositive);
  bench->add_option("--warmup", o.warmup, "Untimed runs before timing")->capture_default_str()->check(kNonNegative);
  bench->add_option("--threads", o.threads, "CPU threads (0: all)")->capture_default_str();
  bench->add_option("--check-rows", o.check_rows, "Last query rows compared with the float64 reference (0: none)")
      ->capture_default_str()
      ->check(kNonNegative);
  bench->add_option("--seed", o.seed, "Seed of the random inputs")->capture_default_str();
  bench->add_option("--json", o.json_path, "Write the JSON here ('none': do not write)");
  bench->add_option("--suite", o.suite, "Suite name (JSON file name under bench/results/<machine>/)");
  bench->add_option("--impl", o.impl, "JSON impl name (default omniattn, or omniattn_<backend>)");
  bench->callback([&o, shape_flags] {
    o.custom = std::any_of(shape_flags.begin(), shape_flags.end(), [](CLI::Option* f) { return f->count() > 0; });
  });
}

void add_verify(CLI::App& app, VerifyOptions& o) {
  auto* verify =
      app.add_subcommand("verify", "Check every backend against the float64 reference (exit 1 on a mismatch)");
  verify->add_option("--cases", o.cases, "Random cases")->capture_default_str()->check(kPositive);
  verify->add_flag("--quick", o.quick, "A few small cases (seconds)");
  verify->add_option("--seed", o.seed, "Run seed (0: fresh, printed)")->capture_default_str();
  verify->add_option("--only", o.only, "Run only case N (with the seed of a failed run)");
  verify->add_option("--backends", o.backends, "Backends to check (default: all available but the reference)")
      ->delimiter(',');
  verify->add_option("--dtypes", o.dtypes, "Dtypes: f32, bf16, f16 (default: all)")->delimiter(',');
  verify->add_flag("--forward-only", o.forward_only, "Skip the backward checks");
  verify->add_flag("--verbose", o.verbose, "Print every tensor's error and bound");
}

void add_peak(CLI::App& app, PeakOptions& o) {
  auto* peak = app.add_subcommand("peak", "Measure this CPU's fp32 FMA peak (all threads)");
  peak->add_option("--threads", o.threads, "Threads (0: all)")->capture_default_str();
  peak->add_option("--seconds", o.seconds, "Seconds per trial")->capture_default_str()->check(CLI::Range(0.01, 60.0));
  peak->add_flag("--json", o.json, "Print one JSON object");
}

}  // namespace
}  // namespace omniattn::cli

int main(int argc, char** argv) {
  using namespace omniattn::cli;
  CLI::App app{"omniattn: attention kernels — benchmark, verify, describe"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string(omniattn::kVersion));
  BenchOptions bench;
  VerifyOptions verify;
  PeakOptions peak;
  add_bench(app, bench);
  add_verify(app, verify);
  add_peak(app, peak);
  app.add_subcommand("info", "Build, devices, SIMD target, and what each backend supports");

  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {  // --help, --version
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    fmt::print(stderr, "omniattn: error: {} (--help for usage)\n", one_line(e.what()));
    return 2;
  }
  try {
    const std::string sub = app.get_subcommands().front()->get_name();
    if (sub == "bench") return run_bench(bench, joined_command_line(argc, argv));
    if (sub == "verify") return run_verify(verify);
    if (sub == "peak") return run_peak(peak);
    return run_info();
  } catch (const omniattn::Error& e) {
    fmt::print(stderr, "omniattn: error: {}\n", one_line(e.what()));
    return 2;
  } catch (const std::bad_alloc&) {
    fmt::print(stderr, "omniattn: error: out of memory (shapes too large for this machine)\n");
    return 2;
  } catch (const std::exception& e) {
    fmt::print(stderr, "omniattn: internal error: {}\n", one_line(e.what()));
    return 3;
  }
}
