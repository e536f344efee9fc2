#include "bench_cli.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <functional>

namespace omniattn::bench {
namespace {

const char* const kUsage = R"(omniattn_bench_gpu: GPU benchmark of omniattn's CUDA backends (results schema JSON).

  omniattn_bench_gpu [--backend sm80] [--ops fwd] [--dtypes bf16,fp16] [--dims 64,128,256]
                     [--lengths 512,1024,...,32768] [--reps 20] [--warmup 3] [--no-gqa] [--no-fp16]
                     [--out rows.json] [--commit SHA] [--check] [--deterministic]

Shapes: B*N = 16k tokens (B = max(1, 16384/N)), Hq*D = 2048, causal and not, every dtype and head dim,
plus Hq = 32 / Hkv = 8 (GQA) at D = 128 in bf16.

  --backend LIST  auto, sm80, sm90 (comma list: each backend gets its rows). impl of a row: omniattn_sm80 when
                  cuda_sm80 ran, omniattn when cuda_sm90 ran (auto: the backend dispatch picks, named in the
                  row's "backend"). A shape the backend refuses is skipped with a note.  [sm80]
  --ops LIST      fwd, bwd, fwdbwd (or fwd+bwd). bwd times attention_backward alone (after an untimed forward
                  that gives O and LSE); fwdbwd times both. FLOPs: fwd 4*B*Hq*N^2*D (halved when causal),
                  bwd 2.5x, fwd+bwd 3.5x. When the backend refuses backward, those rows are skipped.  [fwd]
  --dtypes LIST   bf16, fp16 (f16).  [bf16,fp16]     --no-fp16 = --dtypes bf16
  --dims LIST     head dims (D = Dv).  [64,128,256]
  --lengths LIST  N.  [512,1024,2048,4096,8192,16384,32768]
  --reps N        timed calls per row (median).  [20]
  --warmup N      untimed calls first.  [3]
  --no-gqa        no Hq = 32 / Hkv = 8 rows.
  --deterministic AttentionOptions::deterministic (bitwise-reproducible backward); bwd / fwd+bwd rows are named
                  <impl>_det.
  --out PATH      write the rows as JSON (results schema of ARCHITECTURE.md, + "kernels").
  --commit SHA    recorded in the JSON.
  --check         small odd shapes (333 tokens, D = 64..256, bf16 and fp16), every output row checked against a
                  naive GPU kernel; exit 1 on a mismatch.
  --help          this text.

Per row: median ms (CUDA events around each call, two input sets alternated so repeats do not hit L2),
TFLOP/s, TB/s, rel_err of 32 sampled output rows against a naive f32 GPU kernel (forward rows only), and
memory: extra_mb = device memory the library itself held during the calls (its stream-ordered pool + any
cudaMalloc that was not freed), peak_mb = extra_mb + the tensors the op reads and writes (fwd: Q, K, V, O,
LSE; bwd and fwd+bwd: also dO, dQ, dK, dV).
)";

[[noreturn]] void fail(const std::string& message) {
  std::fprintf(stderr, "omniattn_bench_gpu: %s (--help lists the flags)\n", message.c_str());
  std::exit(1);
}

// "a,b,c" -> parse(each); fails on an empty item.
template <class T>
std::vector<T> parse_list(const std::string& flag, const std::string& text,
                          const std::function<bool(const std::string&, T&)>& parse) {
  std::vector<T> out;
  size_t begin = 0;
  while (begin <= text.size()) {
    const size_t end = std::min(text.find(',', begin), text.size());
    T value{};
    if (!parse(text.substr(begin, end - begin), value)) fail(flag + ": cannot read '" + text + "'");
    out.push_back(value);
    begin = end + 1;
  }
  return out;
}

bool parse_int(const std::string& s, int64_t& v) {
  char* end = nullptr;
  v = std::strtoll(s.c_str(), &end, 10);
  return !s.empty() && *end == '\0' && v > 0;
}

bool parse_dtype(const std::string& s, DType& v) {
  if (s == "bf16") return v = DType::bf16, true;
  if (s == "fp16" || s == "f16") return v = DType::f16, true;
  return false;
}

bool parse_backend(const std::string& s, Backend& v) {
  if (s == "auto") return v = Backend::automatic, true;
  if (s == "sm80" || s == "cuda_sm80") return v = Backend::cuda_sm80, true;
  if (s == "sm90" || s == "cuda_sm90") return v = Backend::cuda_sm90, true;
  return false;
}

bool parse_op(const std::string& s, Op& v) {
  if (s == "fwd") return v = Op::fwd, true;
  if (s == "bwd") return v = Op::bwd, true;
  if (s == "fwdbwd" || s == "fwd+bwd") return v = Op::fwdbwd, true;
  return false;
}

}  // namespace

const char* op_name(Op op) { return op == Op::fwd ? "fwd" : op == Op::bwd ? "bwd" : "fwd+bwd"; }

double op_flop_factor(Op op) { return op == Op::fwd ? 1.0 : op == Op::bwd ? 2.5 : 3.5; }

BenchFlags parse_flags(int argc, char** argv) {
  BenchFlags f;
  for (int i = 0; i < argc; ++i) {
    if (i > 0) f.command += ' ';
    f.command += argv[i];
  }
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) fail(a + " needs a value");
      return argv[++i];
    };
    auto positive = [&](const std::string& s) {
      int64_t v = 0;
      if (!parse_int(s, v)) fail(a + ": expected a positive integer, given '" + s + "'");
      return static_cast<int>(v);
    };
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else if (a == "--out") {
      f.out_path = next();
    } else if (a == "--commit") {
      f.commit = next();
    } else if (a == "--lengths") {
      f.lengths = parse_list<int64_t>(a, next(), parse_int);
    } else if (a == "--dims") {
      f.dims = parse_list<int64_t>(a, next(), parse_int);
    } else if (a == "--dtypes") {
      f.dtypes = parse_list<DType>(a, next(), parse_dtype);
    } else if (a == "--backend" || a == "--backends") {
      f.backends = parse_list<Backend>(a, next(), parse_backend);
    } else if (a == "--ops") {
      f.ops = parse_list<Op>(a, next(), parse_op);
    } else if (a == "--reps") {
      f.reps = positive(next());
    } else if (a == "--warmup") {
      f.warmup = positive(next());
    } else if (a == "--no-gqa") {
      f.gqa = false;
    } else if (a == "--no-fp16") {
      f.dtypes.erase(std::remove(f.dtypes.begin(), f.dtypes.end(), DType::f16), f.dtypes.end());
      if (f.dtypes.empty()) f.dtypes = {DType::bf16};
    } else if (a == "--check") {
      f.check = true;
    } else if (a == "--deterministic") {
      f.deterministic = true;
    } else {
      fail("unknown argument " + a);
    }
  }
  return f;
}

}  // namespace omniattn::bench
