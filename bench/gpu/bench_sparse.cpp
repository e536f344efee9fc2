// Block-sparse GPU benchmark (issue 5 §6): omniattn's forward, backward and forward + backward over BlockMasks
// (causal, sliding window, sinks + window, random block maps, 2-D/3-D neighborhoods) next to our dense rows, bf16,
// Hq = Hkv = 16, D = 128. `--help` lists the flags; sparse_cases.hpp defines the cases.
//
// Per row: median ms of CUDA-event-timed calls after warm-up (two input sets alternated, so repeats do not hit L2),
// automatic backend (the one that ran is recorded), density = listed-block area / full area, pair_density = visible
// pairs / full area, tflops = 4·D·(visible pairs)·(1, 2.5, 3.5 for fwd, bwd, fwd+bwd) / time, tflops_blocks the
// same over the listed blocks' area ("throughput on computed blocks"), rel_err of sampled forward rows against a
// float64 host computation of the masked attention. A case our kernels refuse becomes a "skipped" entry with the
// reason. --dump-cases writes the cases with their block maps for bench/gpu/peers_sparse.py and touches no GPU.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bench_cli.hpp"
#include "bench_cuda.hpp"
#include "bench_kernels.hpp"
#include "omniattn/device_mask.hpp"
#include "omniattn/omniattn.hpp"
#include "sparse_cases.hpp"
#include "sparse_check.hpp"

namespace {

using omniattn::AttentionOptions;
using omniattn::Backend;
using omniattn::DType;
using omniattn::TensorView;
using omniattn::bench::Op;
using omniattn::bench::SparseCase;
using nlohmann::json;

const char* const kUsage = R"(omniattn_bench_sparse: block-sparse benchmark of omniattn's CUDA backends (results JSON).

  omniattn_bench_sparse [--quick] [--lengths 8192,16384,32768] [--patterns LIST] [--ops fwd,bwd,fwdbwd]
                        [--reps 20] [--warmup 3] [--check-rows 16] [--grid2d 128x128] [--kernel2d 13]
                        [--grid3d 16x32x32] [--kernel3d 7] [--out rows.json] [--commit SHA]
  omniattn_bench_sparse --dump-cases cases.json [--dump-rows] [same case flags]

Cases (bf16, Hq = Hkv = 16, D = 128, B = max(1, 16384/N)), per N: dense (no mask), causal (native, and as a
BlockMask), window1024 (causal, 1024 keys), sinks4_window1024 (StreamingLLM), random10 / random30 (per-head causal
block maps, listed area 10% / 30% of the full area); 128-token blocks, plus 64-token blocks for window1024 at
N = 16k; neighborhoods natten2d (128x128 tokens, 13x13) and natten3d (16x32x32, 7x7x7) in tile order, 128- and
64-token blocks. --quick: N = 16k, 128-token blocks, 10 reps.

  --patterns LIST  keep cases whose pattern starts with one of these (dense, causal, window, sinks, random10, natten2d..)
  --ops LIST       fwd, bwd (after an untimed forward), fwdbwd (both in one timing).  [fwd,bwd,fwdbwd]
  --reps N         timed calls per row (median).  [20; quick 10]
  --warmup N       untimed calls first.  [3]
  --check-rows N   forward rows checked against a float64 host computation (0: none).  [16]
  --out PATH       rows JSON (results schema + pattern, block, pair_density, tflops_blocks, backend), rewritten
                   after every case.
  --dump-cases P   write the case list (shapes, rules, counts, block maps, token orders) for peers_sparse.py and
                   exit without touching the GPU. --dump-rows adds visible keys per query row (small N only).
)";

[[noreturn]] void fail(const std::string& m) {
  std::fprintf(stderr, "omniattn_bench_sparse: %s (--help lists the flags)\n", m.c_str());
  std::exit(1);
}

using omniattn::bench::cuda_throw;  // CUDA errors throw: a failed case becomes a skipped row

struct Flags {
  omniattn::bench::CaseFlags cases;
  std::vector<Op> ops = {Op::fwd, Op::bwd, Op::fwdbwd};
  int reps = 0, warmup = 3, check_rows = 16;
  std::string out, dump_cases, commit = "unknown", command;
  bool dump_rows = false;
};

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t begin = 0;
  while (begin <= s.size()) {
    const size_t end = std::min(s.find(sep, begin), s.size());
    out.push_back(s.substr(begin, end - begin));
    begin = end + 1;
  }
  return out;
}

int64_t positive(const std::string& flag, const std::string& s) {
  char* end = nullptr;
  const long long v = std::strtoll(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0' || v < 0) fail(flag + ": expected a non-negative integer, given '" + s + "'");
  return v;
}

Flags parse(int argc, char** argv) {
  Flags f;
  for (int i = 0; i < argc; ++i) f.command.append(i ? " " : "").append(argv[i]);
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) fail(a + " needs a value");
      return argv[++i];
    };
    auto dims = [&](size_t count) {
      std::vector<int64_t> v;
      for (const auto& s : split(next(), 'x')) v.push_back(positive(a, s));
      if (v.size() != count) fail(a + ": expected " + std::to_string(count) + " sizes joined by 'x'");
      return v;
    };
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else if (a == "--quick") {
      f.cases.quick = true;
    } else if (a == "--lengths") {
      f.cases.lengths.clear();
      for (const auto& s : split(next(), ',')) f.cases.lengths.push_back(positive(a, s));
    } else if (a == "--patterns") {
      f.cases.patterns = split(next(), ',');
    } else if (a == "--ops") {
      f.ops.clear();
      for (const auto& s : split(next(), ','))
        f.ops.push_back(s == "fwd" ? Op::fwd : s == "bwd" ? Op::bwd : (s == "fwdbwd" || s == "fwd+bwd") ? Op::fwdbwd
                                                                                                       : (fail(a + ": unknown op " + s), Op::fwd));
    } else if (a == "--reps") {
      f.reps = int(positive(a, next()));
    } else if (a == "--warmup") {
      f.warmup = int(positive(a, next()));
    } else if (a == "--check-rows") {
      f.check_rows = int(positive(a, next()));
    } else if (a == "--grid2d") {
      const auto v = dims(2);
      f.cases.grid2d = {v[0], v[1]};
    } else if (a == "--grid3d") {
      const auto v = dims(3);
      f.cases.grid3d = {v[0], v[1], v[2]};
    } else if (a == "--kernel2d") {
      f.cases.kernel2d = positive(a, next());
    } else if (a == "--kernel3d") {
      f.cases.kernel3d = positive(a, next());
    } else if (a == "--out") {
      f.out = next();
    } else if (a == "--commit") {
      f.commit = next();
    } else if (a == "--dump-cases") {
      f.dump_cases = next();
    } else if (a == "--dump-rows") {
      f.dump_rows = true;
    } else {
      fail("unknown argument " + a);
    }
  }
  if (f.reps == 0) f.reps = f.cases.quick ? 10 : 20;
  return f;
}

using DeviceMemory = omniattn::bench::DeviceBuffer<omniattn::bench::cuda_throw>;

// The tensors of one (B, N): two input sets (Q, K, V and the O, LSE their forward writes), dO, dQ, dK, dV.
class Problem {
 public:
  Problem(int64_t batch, int64_t n, int64_t heads, int64_t d, bool grads)
      : batch_(batch), n_(n), heads_(heads), d_(d), elems_(batch * n * heads * d) {
    for (int s = 0; s < 2; ++s) {
      for (int t = 0; t < 4; ++t) io_[s][t] = std::make_unique<DeviceMemory>(size_t(elems_) * 2);
      lse_[s] = std::make_unique<DeviceMemory>(size_t(batch * heads * n) * 4);
      for (int t = 0; t < 3; ++t) omniattn::bench::fill_normal(io_[s][t]->ptr, DType::bf16, elems_, 200 + 3 * s + t);
    }
    if (grads)
      for (int t = 0; t < 4; ++t) grad_[t] = std::make_unique<DeviceMemory>(size_t(elems_) * 2);
    if (grads) omniattn::bench::fill_normal(grad_[0]->ptr, DType::bf16, elems_, 999);
    cuda_throw(cudaDeviceSynchronize(), "input fill");
  }
  int64_t batch() const { return batch_; }
  int64_t n() const { return n_; }

  TensorView view(const DeviceMemory& m) const {
    return TensorView::contiguous(m.ptr, DType::bf16, {batch_, n_, heads_, d_}, omniattn::Device::cuda(0));
  }
  TensorView lse(int s) const {
    return TensorView::contiguous(lse_[s]->ptr, DType::f32, {batch_, heads_, n_}, omniattn::Device::cuda(0));
  }
  omniattn::ForwardOutputs outputs(int s) const { return {view(*io_[s][3]), lse(s)}; }
  void forward(int s, const AttentionOptions& o) const {
    omniattn::attention_forward(view(*io_[s][0]), view(*io_[s][1]), view(*io_[s][2]), outputs(s), o);
  }
  void backward(int s, const AttentionOptions& o) const {
    omniattn::attention_backward(view(*io_[s][0]), view(*io_[s][1]), view(*io_[s][2]), view(*io_[s][3]), lse(s),
                                 view(*grad_[0]), {view(*grad_[1]), view(*grad_[2]), view(*grad_[3]), std::nullopt}, o);
  }
  // The CUDA backend the automatic dispatch picks for this forward, or the reasons none runs it.
  std::pair<std::optional<Backend>, std::string> forward_backend(const AttentionOptions& o) const {
    std::string reasons;
    for (const auto& [b, why] : omniattn::explain_forward(view(*io_[0][0]), view(*io_[0][1]), view(*io_[0][2]),
                                                          outputs(0), o)) {
      const bool cuda = b == Backend::cuda_sm80 || b == Backend::cuda_sm90;
      if (!why && cuda) return {b, ""};
      if (why && cuda) reasons += (reasons.empty() ? "" : "; ") + omniattn::to_string(b) + ": " + *why;
    }
    return {std::nullopt, reasons.empty() ? "no CUDA backend in this build" : reasons};
  }
  void poison_output(int s) const { cuda_throw(cudaMemset(io_[s][3]->ptr, 0xff, size_t(elems_) * 2), "poison"); }
  omniattn::bench::CheckTensors check(int s) const {
    return {io_[s][0]->ptr, io_[s][1]->ptr, io_[s][2]->ptr, io_[s][3]->ptr, batch_, n_, heads_, heads_, d_};
  }
  // Bytes read and written once: fwd Q K V O + LSE; bwd Q K V O dO dQ dK dV + LSE.
  double bytes(Op op) const {
    const double fwd = 8.0 * double(elems_) + 4.0 * double(batch_ * heads_ * n_);
    const double bwd = 16.0 * double(elems_) + 4.0 * double(batch_ * heads_ * n_);
    return op == Op::fwd ? fwd : op == Op::bwd ? bwd : fwd + bwd;
  }

 private:
  int64_t batch_, n_, heads_, d_, elems_;
  std::unique_ptr<DeviceMemory> io_[2][4], lse_[2], grad_[4];  // io: Q, K, V, O
};

// Median ms of call(set), sets alternating, after `warmup` untimed calls; CUDA errors throw (a skipped case).
template <class Call>
double median_ms(const Call& call, int warmup, int reps) {
  return omniattn::bench::median_ms(call, warmup, reps, omniattn::bench::cuda_throw);
}

struct Results {
  json rows = json::array(), skipped = json::array();
  void skip(const SparseCase& c, Op op, const std::string& reason) {
    std::printf("skip    %-8s %-30s %s\n", omniattn::bench::op_name(op), c.id().c_str(), reason.c_str());
    skipped.push_back({{"id", c.id()}, {"pattern", c.pattern}, {"mask", c.mask_name()}, {"block", c.block},
                       {"N", c.n}, {"op", omniattn::bench::op_name(op)}, {"impl", "omniattn"}, {"reason", reason}});
  }
};

json base_row(const SparseCase& c, const omniattn::bench::MaskStats& s, Op op) {
  return {{"op", omniattn::bench::op_name(op)}, {"impl", "omniattn"}, {"mask", c.mask_name()},
          {"pattern", c.pattern}, {"block", c.block ? json(c.block) : json(nullptr)}, {"dtype", "bf16"},
          {"B", c.batch}, {"Hq", c.heads}, {"Hkv", c.heads}, {"Sq", c.n}, {"Sk", c.n}, {"D", c.d}, {"Dv", c.d},
          {"density", s.density}, {"pair_density", s.pair_density}, {"listed_blocks", s.listed_blocks},
          {"full_blocks", s.full_blocks}};
}

// Every op of one case. Throws on a CUDA failure inside a call (the caller checks the device's health).
void run_case(const Problem& p, const SparseCase& c, const Flags& f, Results& res) {
  std::optional<omniattn::BlockMask> mask;
  std::optional<omniattn::DeviceBlockMask> on_gpu;
  AttentionOptions o;
  o.causal = c.kind == SparseCase::Kind::causal_dense;
  if (c.has_block_mask()) {
    mask = omniattn::bench::build_mask(c);
    on_gpu = omniattn::DeviceBlockMask::upload(*mask, 0);
    o.block_mask = on_gpu->view();
  }
  const auto stats = omniattn::bench::mask_stats(c, mask ? &*mask : nullptr);
  const auto [fwd_backend, why] = p.forward_backend(o);
  if (!fwd_backend) {
    for (Op op : f.ops) res.skip(c, op, "forward refused: " + why);
    return;
  }
  std::optional<Backend> bwd_backend;
  std::string bwd_why;
  if (std::any_of(f.ops.begin(), f.ops.end(), [](Op op) { return op != Op::fwd; })) {
    p.forward(0, o), p.forward(1, o);
    for (Backend b : {Backend::cuda_sm90, Backend::cuda_sm80}) {  // the automatic dispatch's order
      AttentionOptions ob = o;
      ob.backend = b;
      try {
        p.backward(0, ob);
        cuda_throw(cudaDeviceSynchronize(), "backward probe");
        bwd_backend = b;
        break;
      } catch (const omniattn::Error& e) {
        bwd_why += (bwd_why.empty() ? "" : "; ") + std::string(e.what());
      }
    }
  }
  const omniattn::BlockMaskView* view = mask ? &on_gpu->view() : nullptr;
  const auto host_map = mask ? mask->to_block_map() : std::vector<omniattn::BlockMask::Block>{};
  const auto host_view = mask ? mask->view() : omniattn::BlockMaskView{};
  for (Op op : f.ops) {
    if (op != Op::fwd && !bwd_backend) {
      res.skip(c, op, "backward refused: " + bwd_why);
      continue;
    }
    AttentionOptions ob = o;
    if (op != Op::fwd) ob.backend = *bwd_backend;
    double ms = 0;
    try {  // a refusal raised by the call itself (not by explain_forward) skips this op only
      if (op == Op::fwd) {
        ms = median_ms([&](int s) { p.forward(s, o); }, f.warmup, f.reps);
      } else if (op == Op::bwd) {
        p.forward(0, o), p.forward(1, o);
        ms = median_ms([&](int s) { p.backward(s, ob); }, f.warmup, f.reps);
      } else {
        ms = median_ms([&](int s) { p.forward(s, o), p.backward(s, ob); }, f.warmup, f.reps);
      }
    } catch (const omniattn::Error& e) {
      res.skip(c, op, std::string("refused by the call: ") + e.what());
      continue;
    }
    json row = base_row(c, stats, op);
    const double factor = omniattn::bench::op_flop_factor(op), flops = 4.0 * double(c.d) * factor;
    row["ms"] = ms;
    row["tflops"] = flops * stats.pairs / ms / 1e9;
    row["tflops_blocks"] = view ? json(flops * stats.listed_area / ms / 1e9) : json(nullptr);
    row["tbps"] = p.bytes(op) / ms / 1e9;
    std::string backend = omniattn::to_string(*fwd_backend);
    if (op != Op::fwd && *bwd_backend != *fwd_backend) backend.append("+").append(omniattn::to_string(*bwd_backend));
    row["backend"] = backend;
    row["rel_err"] = nullptr;
    if (op == Op::fwd && f.check_rows > 0) {
      p.poison_output(0);  // NaN: a row the checked call does not write fails the check
      p.forward(0, o);
      cuda_throw(cudaDeviceSynchronize(), "checked forward");
      const int64_t kbn = mask ? mask->geometry().k_blocks() : 1, qbn = mask ? mask->geometry().q_blocks() : 1;
      const int64_t mask_heads = stats.mask_heads;
      const bool causal = o.causal;
      row["rel_err"] = omniattn::bench::sparse_rel_err(p.check(0), [&](int64_t h, int64_t i, int64_t j) {
        if (!view) return !causal || j <= i;
        const int64_t mh = mask_heads == 1 ? 0 : h;
        const auto state = host_map[size_t((mh * qbn + i / c.block) * kbn + j / c.block)];
        return state == omniattn::BlockMask::Block::full ||
               (state == omniattn::BlockMask::Block::partial && host_view.element.visible(mh, i, j, c.n, c.n));
      }, f.check_rows);
    }
    std::printf("%-7s %-30s B=%lld dens %.3f (pairs %.3f) %9.3f ms %7.1f TFLOP/s %7s blocks  %-20s rel_err %s\n",
                omniattn::bench::op_name(op), c.id().c_str(), (long long)c.batch, stats.density, stats.pair_density,
                ms, row["tflops"].get<double>(),
                view ? std::to_string(int(row["tflops_blocks"].get<double>())).c_str() : "-", backend.c_str(),
                row["rel_err"].is_null() ? "-" : std::to_string(row["rel_err"].get<double>()).substr(0, 8).c_str());
    std::fflush(stdout);
    res.rows.push_back(row);
  }
}

std::string today() {
  char date[16];
  const std::time_t now = std::time(nullptr);
  std::strftime(date, sizeof date, "%Y-%m-%d", std::gmtime(&now));
  return date;
}

void write(const std::string& path, const json& doc) {
  std::ofstream out(path);
  if (!out) fail("cannot write " + path);
  out << doc.dump(1) << "\n";
}

int dump_cases(const Flags& f, const std::vector<SparseCase>& cases) {
  json list = json::array();
  for (const auto& c : cases) {
    std::optional<omniattn::BlockMask> mask;
    if (c.has_block_mask()) mask = omniattn::bench::build_mask(c);
    const auto stats = omniattn::bench::mask_stats(c, mask ? &*mask : nullptr);
    list.push_back(omniattn::bench::case_json(c, mask ? &*mask : nullptr, stats, f.dump_rows));
    std::printf("case %-32s B=%lld density %.4f pairs %.4f listed %lld full %lld\n", c.id().c_str(),
                (long long)c.batch, stats.density, stats.pair_density, (long long)stats.listed_blocks,
                (long long)stats.full_blocks);
  }
  write(f.dump_cases, {{"command", f.command}, {"quick", f.cases.quick}, {"cases", list}});
  std::printf("wrote %s (%zu cases)\n", f.dump_cases.c_str(), cases.size());
  return 0;
}

int run(const Flags& f, const std::vector<SparseCase>& cases) {
  cudaDeviceProp prop{};
  cuda_throw(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");
  std::printf("omniattn_bench_sparse on %s (%d SMs), commit %s: %zu cases, %d reps\n", prop.name,
              prop.multiProcessorCount, f.commit.c_str(), cases.size(), f.reps);
  const bool grads = std::any_of(f.ops.begin(), f.ops.end(), [](Op op) { return op != Op::fwd; });
  Results res;
  std::unique_ptr<Problem> problem;
  auto save = [&] {
    if (f.out.empty()) return;
    write(f.out, {{"device", prop.name}, {"date", today()}, {"commit", f.commit}, {"command", f.command},
                  {"skipped", res.skipped}, {"rows", res.rows}});
  };
  for (const auto& c : cases) {
    const size_t rows_before = res.rows.size();
    try {
      if (!problem || problem->batch() != c.batch || problem->n() != c.n) {
        problem.reset();
        problem = std::make_unique<Problem>(c.batch, c.n, c.heads, c.d, grads);
      }
      run_case(*problem, c, f, res);
    } catch (const std::exception& e) {
      for (Op op : f.ops) {  // the ops of this case that have no row yet
        const bool done = std::any_of(res.rows.begin() + long(rows_before), res.rows.end(),
                                      [&](const json& r) { return r["op"] == omniattn::bench::op_name(op); });
        if (!done) res.skip(c, op, std::string("FAILED: ") + e.what());
      }
      const cudaError_t status = cudaDeviceSynchronize();
      if (status != cudaSuccess) {
        std::fprintf(stderr, "the device is unusable after that failure (%s): stopping\n", cudaGetErrorString(status));
        save();
        return 2;
      }
    }
    save();  // after every case: a timeout keeps what ran
  }
  if (!f.out.empty()) std::printf("wrote %s (%zu rows, %zu skipped)\n", f.out.c_str(), res.rows.size(), res.skipped.size());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const Flags f = parse(argc, argv);
  try {
    const auto cases = omniattn::bench::make_cases(f.cases);
    if (cases.empty()) fail("no case matches --patterns");
    return f.dump_cases.empty() ? run(f, cases) : dump_cases(f, cases);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "omniattn_bench_sparse: %s\n", e.what());
    return 2;
  }
}
