// GPU benchmark of omniattn's CUDA backends: forward, backward, forward + backward (flags: --help, bench_cli.cpp).
//
// Shapes (FlashAttention's benchmark): B*N = 16k tokens, Hq*D = 2048, N in --lengths, D in --dims, causal and
// not, every dtype of --dtypes, + GQA Hq = 32 / Hkv = 8 at D = 128 (bf16). Each call is timed alone with CUDA
// events after warm-up; the median of the repeats is reported, alternating between two input sets (a set is
// larger than L2 for these shapes, so repeats do not measure the cache). FLOPs = 4*B*Hq*Sq*Sk*D (halved for
// causal), x2.5 for backward, x3.5 for forward + backward. Forward rows check 32 sampled output rows against a
// naive f32 GPU kernel (rel_err). Every row reports the memory the library held (extra_mb) and the op's peak
// (peak_mb, bench_memory.hpp). A shape a backend refuses is skipped with its reason (printed and in the JSON).
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "bench_check.hpp"
#include "bench_cuda.hpp"
#include "bench_cli.hpp"
#include "bench_kernels.hpp"
#include "bench_memory.hpp"
#include "cuda/flash/fwd_launch.hpp"
#include "omniattn/omniattn.hpp"

namespace {

using omniattn::Backend;
using omniattn::DType;
using omniattn::TensorView;
using omniattn::bench::Op;
using omniattn::bench::Shape;

using omniattn::bench::cuda_ok;
using omniattn::bench::median_ms;
using DeviceMemory = omniattn::bench::DeviceBuffer<>;

const char* dtype_name(DType t) { return t == DType::bf16 ? "bf16" : "fp16"; }
const char* impl_name(Backend ran) { return ran == Backend::cuda_sm90 ? "omniattn" : "omniattn_sm80"; }

bool g_deterministic = false;  // --deterministic

// The tensors of one shape: two input sets (Q, K, V, and the O, LSE their forward writes), dO, dQ, dK, dV.
class Problem {
 public:
  Problem(const Shape& s, bool with_grads)
      : s_(s),
        q_elems_(s.batch * s.n * s.hq * s.d),
        kv_elems_(s.batch * s.n * s.hkv * s.d),
        lse_elems_(s.batch * s.hq * s.n) {
    for (int set = 0; set < 2; ++set) {
      q_[set] = alloc(q_elems_ * 2), k_[set] = alloc(kv_elems_ * 2), v_[set] = alloc(kv_elems_ * 2);
      out_[set] = alloc(q_elems_ * 2), lse_[set] = alloc(lse_elems_ * 4);
      omniattn::bench::fill_normal(q_[set]->ptr, s.dtype, q_elems_, 100 + 3 * set);
      omniattn::bench::fill_normal(k_[set]->ptr, s.dtype, kv_elems_, 101 + 3 * set);
      omniattn::bench::fill_normal(v_[set]->ptr, s.dtype, kv_elems_, 102 + 3 * set);
    }
    if (with_grads) {
      dout_ = alloc(q_elems_ * 2), dq_ = alloc(q_elems_ * 2), dk_ = alloc(kv_elems_ * 2), dv_ = alloc(kv_elems_ * 2);
      omniattn::bench::fill_normal(dout_->ptr, s.dtype, q_elems_, 999);
    }
    cuda_ok(cudaDeviceSynchronize(), "input fill");
  }

  const Shape& shape() const { return s_; }
  omniattn::AttentionOptions options(Backend b) const {
    omniattn::AttentionOptions o;
    o.causal = s_.causal;
    o.backend = b;
    o.deterministic = g_deterministic;
    return o;
  }
  TensorView view(const DeviceMemory& m, int64_t heads) const {
    return TensorView::contiguous(m.ptr, s_.dtype, {s_.batch, s_.n, heads, s_.d}, omniattn::Device::cuda(0));
  }
  TensorView lse(int set) const {
    return TensorView::contiguous(lse_[set]->ptr, DType::f32, {s_.batch, s_.hq, s_.n}, omniattn::Device::cuda(0));
  }
  omniattn::ForwardOutputs fwd_outputs(int set) const { return {view(*out_[set], s_.hq), lse(set)}; }

  // Writes O and LSE of input set `set`.
  void forward(int set, Backend b) const {
    omniattn::attention_forward(view(*q_[set], s_.hq), view(*k_[set], s_.hkv), view(*v_[set], s_.hkv),
                                fwd_outputs(set), options(b));
  }
  // Gradients of input set `set` (its forward must have run).
  void backward(int set, Backend b) const {
    omniattn::attention_backward(view(*q_[set], s_.hq), view(*k_[set], s_.hkv), view(*v_[set], s_.hkv),
                                 view(*out_[set], s_.hq), lse(set), view(*dout_, s_.hq),
                                 {view(*dq_, s_.hq), view(*dk_, s_.hkv), view(*dv_, s_.hkv), std::nullopt},
                                 options(b));
  }
  // For each backend, why it refuses the forward (std::nullopt: it runs it).
  std::vector<std::pair<Backend, std::optional<std::string>>> explain(Backend b) const {
    return omniattn::explain_forward(view(*q_[0], s_.hq), view(*k_[0], s_.hkv), view(*v_[0], s_.hkv), fwd_outputs(0),
                                     options(b));
  }
  double rel_err(int set) const {
    return omniattn::bench::sampled_rel_err(s_, q_[set]->ptr, k_[set]->ptr, v_[set]->ptr, out_[set]->ptr, 32);
  }
  double rel_err_all_rows() const {
    return omniattn::bench::sampled_rel_err(s_, q_[0]->ptr, k_[0]->ptr, v_[0]->ptr, out_[0]->ptr, 0);
  }

  // Bytes one call of `op` reads and writes once: forward Q, K, V, O, LSE; backward also dO, dQ, dK, dV.
  double bytes(Op op) const {
    const double fwd = (2.0 * q_elems_ + 2.0 * kv_elems_) * 2 + 4.0 * lse_elems_;
    const double bwd = (4.0 * q_elems_ + 4.0 * kv_elems_) * 2 + 4.0 * lse_elems_;  // Q K V O dO dQ dK dV, LSE
    return op == Op::fwd ? fwd : op == Op::bwd ? bwd : fwd + bwd;
  }
  // Device memory the op's tensors occupy (one input set).
  double tensor_bytes(Op op) const {
    const double fwd = (2.0 * q_elems_ + 2.0 * kv_elems_) * 2 + 4.0 * lse_elems_;
    return op == Op::fwd ? fwd : fwd + (2.0 * q_elems_ + 2.0 * kv_elems_) * 2;
  }

 private:
  static std::unique_ptr<DeviceMemory> alloc(size_t bytes) { return std::make_unique<DeviceMemory>(bytes); }
  Shape s_;
  int64_t q_elems_, kv_elems_, lse_elems_;
  std::unique_ptr<DeviceMemory> q_[2], k_[2], v_[2], out_[2], lse_[2], dout_, dq_, dk_, dv_;
};

struct Row {
  Op op = Op::fwd;
  Shape s;
  std::string impl, backend;
  double ms = 0, tflops = 0, tbps = 0, extra_mb = 0, peak_mb = 0;
  std::optional<double> rel_err;
};

double forward_flops(const Shape& s) {
  return 4.0 * s.batch * s.hq * double(s.n) * double(s.n) * s.d / (s.causal ? 2.0 : 1.0);
}

std::string shape_text(const Shape& s) {
  char buf[160];
  std::snprintf(buf, sizeof buf, "%-4s %-6s B=%3lld Hq=%3lld Hkv=%3lld N=%6lld D=%4lld", dtype_name(s.dtype),
                s.causal ? "causal" : "none", (long long)s.batch, (long long)s.hq, (long long)s.hkv, (long long)s.n,
                (long long)s.d);
  return buf;
}

void print_row(const Row& r) {
  std::printf("%-7s %-13s %s  %9.3f ms  %7.1f TFLOP/s  %5.2f TB/s  rel_err %s  extra %.1f MB  peak %.0f MB\n",
              omniattn::bench::op_name(r.op), r.impl.c_str(), shape_text(r.s).c_str(), r.ms, r.tflops, r.tbps,
              r.rel_err ? std::to_string(*r.rel_err).substr(0, 8).c_str() : "-", r.extra_mb, r.peak_mb);
  std::fflush(stdout);
}

// Skipped rows, counted per (backend asked, op, reason); each reason is printed in full once.
class Skips {
 public:
  void add(Backend asked, Op op, const Shape& s, const std::string& reason) {
    const auto key = std::make_tuple(omniattn::to_string(asked), std::string(omniattn::bench::op_name(op)), reason);
    const bool first = counts_[key]++ == 0;
    std::printf("skip    %-13s %s  %s: %s\n", omniattn::to_string(asked).c_str(), shape_text(s).c_str(),
                omniattn::bench::op_name(op), first ? reason.c_str() : "(same reason as above)");
  }
  std::string json() const;

 private:
  std::map<std::tuple<std::string, std::string, std::string>, int> counts_;
};

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
    out += c;
  }
  return out + "\"";
}

std::string Skips::json() const {
  std::string out;
  for (const auto& [key, n] : counts_)
    out += (out.empty() ? "" : ",\n  ") + std::string("{\"backend\": ") + json_string(std::get<0>(key)) +
           ", \"op\": " + json_string(std::get<1>(key)) + ", \"rows\": " + std::to_string(n) +
           ", \"reason\": " + json_string(std::get<2>(key)) + "}";
  return out;
}

// The CUDA backend that runs this forward when `asked` is requested, or the reasons nothing does.
std::pair<std::optional<Backend>, std::string> choose_forward(const Problem& p, Backend asked) {
  std::string reasons;
  for (const auto& [b, why] : p.explain(asked)) {
    if (asked != Backend::automatic && b != asked) continue;
    if (!why && (b == Backend::cuda_sm80 || b == Backend::cuda_sm90)) return {b, ""};
    if (why) reasons += (reasons.empty() ? "" : "; ") + omniattn::to_string(b) + ": " + *why;
  }
  return {std::nullopt, reasons.empty() ? omniattn::to_string(asked) + " is not compiled in" : reasons};
}

// Runs both input sets' forwards, then finds the backend that runs the backward (automatic: as dispatch would,
// sm_90a first), by calling it. std::nullopt + reasons when every candidate refuses.
std::pair<std::optional<Backend>, std::string> choose_backward(const Problem& p, Backend asked, Backend fwd_ran) {
  p.forward(0, fwd_ran);
  p.forward(1, fwd_ran);
  const std::vector<Backend> candidates =
      asked == Backend::automatic ? std::vector<Backend>{Backend::cuda_sm90, Backend::cuda_sm80}
                                  : std::vector<Backend>{asked};
  std::string reasons;
  for (Backend b : candidates) {
    try {
      p.backward(0, b);
      cuda_ok(cudaDeviceSynchronize(), "backward");
      return {b, ""};
    } catch (const omniattn::Error& e) {
      reasons += (reasons.empty() ? "" : "; ") + std::string(e.what());
    }
  }
  return {std::nullopt, reasons};
}

// One row: times `call`, measures the library's memory over the calls, fills the row's numbers.
template <class Call>
Row time_op(const Problem& p, Op op, const Call& call, int warmup, int reps) {
  call(0);  // first call outside the probe: lazy module loading is not the library's memory
  omniattn::bench::MemoryProbe probe;
  probe.start();
  Row row;
  row.op = op;
  row.s = p.shape();
  row.ms = median_ms(call, warmup, reps);
  row.extra_mb = double(probe.library_bytes()) / (1 << 20);
  row.peak_mb = row.extra_mb + p.tensor_bytes(op) / (1 << 20);
  row.tflops = forward_flops(row.s) * omniattn::bench::op_flop_factor(op) / row.ms / 1e9;
  row.tbps = p.bytes(op) / row.ms / 1e9;
  return row;
}

// The rows of one (shape, backend asked): each op of f.ops. Throws on a CUDA failure inside a call.
void run_backend(const Problem& p, Backend asked, const omniattn::bench::BenchFlags& f, bool grads,
                 std::vector<Row>& rows, Skips& skips) {
  const Shape& s = p.shape();
  const auto [fwd_ran, fwd_why] = choose_forward(p, asked);
  if (!fwd_ran) {
    for (Op op : f.ops) skips.add(asked, op, s, "forward refused: " + fwd_why);
    return;
  }
  const Backend fb = *fwd_ran;
  std::optional<Backend> bwd_ran;
  if (grads) {
    auto [ran, why] = choose_backward(p, asked, fb);
    bwd_ran = ran;
    if (!ran)
      for (Op op : f.ops)
        if (op != Op::fwd) skips.add(asked, op, s, "backward refused: " + why);
  }
  for (Op op : f.ops) {
    if (op != Op::fwd && !bwd_ran) continue;
    Row row;
    if (op == Op::fwd) {
      row = time_op(p, op, [&](int set) { p.forward(set, fb); }, f.warmup, f.reps);
      p.forward(0, fb);
      cuda_ok(cudaDeviceSynchronize(), "checked call");
      row.rel_err = p.rel_err(0);
    } else if (op == Op::bwd) {
      p.forward(0, fb), p.forward(1, fb);
      row = time_op(p, op, [&](int set) { p.backward(set, *bwd_ran); }, f.warmup, f.reps);
    } else {
      row = time_op(p, op, [&](int set) { p.forward(set, fb), p.backward(set, *bwd_ran); }, f.warmup, f.reps);
    }
    row.impl = impl_name(fb);
    if (g_deterministic && op != Op::fwd) row.impl += "_det";
    row.backend = omniattn::to_string(fb);
    if (op != Op::fwd && *bwd_ran != fb) row.backend += "+" + omniattn::to_string(*bwd_ran);
    rows.push_back(row);
    print_row(row);
  }
}

// Every row of one shape. A call that fails (a CUDA error the library reports) skips the rest of that backend's
// rows for the shape; false when the device is unusable afterwards (a fault inside a kernel is sticky).
bool run_shape(const Shape& s, const omniattn::bench::BenchFlags& f, std::vector<Row>& rows, Skips& skips) {
  const bool grads = std::any_of(f.ops.begin(), f.ops.end(), [](Op op) { return op != Op::fwd; });
  const Problem p(s, grads);
  for (Backend asked : f.backends) {
    try {
      run_backend(p, asked, f, grads, rows, skips);
    } catch (const std::exception& e) {
      for (Op op : f.ops) skips.add(asked, op, s, std::string("FAILED: ") + e.what());
      const cudaError_t status = cudaDeviceSynchronize();
      if (status != cudaSuccess) {
        std::fprintf(stderr, "the device is unusable after that failure (%s): stopping\n", cudaGetErrorString(status));
        return false;
      }
    }
  }
  return true;
}

// What the device makes of each sm_80 kernel: is the planned occupancy reached, did registers spill?
std::string sm80_kernels_json(const omniattn::bench::BenchFlags& f) {
  std::string json;
  for (int64_t d : f.dims)
    for (DType dtype : f.dtypes) {
      const auto info = omniattn::detail::cuda::fwd_sm80_info(dtype, int(d), int(d));
      if (info.ctas_per_sm == 0) {
        std::printf("kernel sm80 D=%lld %s: no instantiation\n", (long long)d, dtype_name(dtype));
        continue;
      }
      std::printf("kernel sm80 D=%lld %s: %d threads, %d registers, %d B local, %d KB shared, %d CTAs/SM\n",
                  (long long)d, dtype_name(dtype), info.threads, info.registers, info.local_bytes,
                  info.smem_bytes / 1024, info.ctas_per_sm);
      char buf[320];
      std::snprintf(buf, sizeof buf,
                    "%s{\"backend\": \"cuda_sm80\", \"D\": %lld, \"dtype\": \"%s\", \"threads\": %d, \"registers\": "
                    "%d, \"local_bytes\": %d, \"smem_bytes\": %d, \"ctas_per_sm\": %d}",
                    json.empty() ? "" : ", ", (long long)d, dtype_name(dtype), info.threads, info.registers,
                    info.local_bytes, info.smem_bytes, info.ctas_per_sm);
      json += buf;
    }
  return json;
}

int run_check(const omniattn::bench::BenchFlags& f) {
  int failures = 0;
  Skips skips;
  for (int64_t d : {64, 96, 128, 192, 256})
    for (bool causal : {false, true})
      for (DType dtype : {DType::bf16, DType::f16}) {
        const Shape s{dtype, 2, 333, 4, d == 128 ? 2 : 4, d, causal};
        const Problem p(s, false);
        for (Backend asked : f.backends) {
          const auto [ran, why] = choose_forward(p, asked);
          if (!ran) {
            skips.add(asked, Op::fwd, s, why);
            continue;
          }
          p.forward(0, *ran);
          cuda_ok(cudaDeviceSynchronize(), "checked call");
          const double err = p.rel_err_all_rows();
          const double bound = dtype == DType::bf16 ? 1e-2 : 2e-3;
          std::printf("check   %-13s %s  rel_err %.2e%s\n", impl_name(*ran), shape_text(s).c_str(), err,
                      err < bound ? "" : "  FAILED");
          failures += !(err < bound);
        }
      }
  std::printf("%s\n", failures ? "CHECK FAILED" : "check passed");
  return failures ? 1 : 0;
}

void write_json(const omniattn::bench::BenchFlags& f, const cudaDeviceProp& prop, const std::string& kernels,
                const std::vector<Row>& rows, const Skips& skips) {
  FILE* out = std::fopen(f.out_path.c_str(), "w");
  if (!out) return std::perror(f.out_path.c_str()), std::exit(1);
  char date[16];
  const std::time_t now = std::time(nullptr);
  std::strftime(date, sizeof date, "%Y-%m-%d", std::gmtime(&now));
  std::fprintf(out,
               "{\"device\": %s, \"date\": \"%s\", \"commit\": %s, \"command\": %s,\n \"kernels\": [%s],\n"
               " \"skipped\": [%s],\n \"rows\": [\n",
               json_string(prop.name).c_str(), date, json_string(f.commit).c_str(), json_string(f.command).c_str(),
               kernels.c_str(), skips.json().c_str());
  for (size_t i = 0; i < rows.size(); ++i) {
    const Row& r = rows[i];
    const std::string rel_err = r.rel_err ? std::to_string(*r.rel_err) : "null";
    std::fprintf(out,
                 "  {\"op\": \"%s\", \"impl\": \"%s\", \"mask\": \"%s\", \"dtype\": \"%s\", \"B\": %lld, \"Hq\": %lld, "
                 "\"Hkv\": %lld, \"Sq\": %lld, \"Sk\": %lld, \"D\": %lld, \"Dv\": %lld, \"density\": 1.0, "
                 "\"ms\": %.6f, \"tflops\": %.3f, \"tbps\": %.4f, \"rel_err\": %s, \"backend\": \"%s\", "
                 "\"extra_mb\": %.2f, \"peak_mb\": %.1f}%s\n",
                 omniattn::bench::op_name(r.op), r.impl.c_str(), r.s.causal ? "causal" : "none",
                 dtype_name(r.s.dtype), (long long)r.s.batch, (long long)r.s.hq, (long long)r.s.hkv,
                 (long long)r.s.n, (long long)r.s.n, (long long)r.s.d, (long long)r.s.d, r.ms, r.tflops, r.tbps,
                 rel_err.c_str(), r.backend.c_str(), r.extra_mb, r.peak_mb, i + 1 < rows.size() ? "," : "");
  }
  std::fprintf(out, " ]}\n");
  std::fclose(out);
}

}  // namespace

int main(int argc, char** argv) {
  const omniattn::bench::BenchFlags f = omniattn::bench::parse_flags(argc, argv);
  g_deterministic = f.deterministic;
  cudaDeviceProp prop{};
  cuda_ok(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");
  const bool sm80 = std::any_of(f.backends.begin(), f.backends.end(),
                                [](Backend b) { return b == Backend::cuda_sm80 || b == Backend::automatic; });
  const std::string kernels = sm80 ? sm80_kernels_json(f) : "";
  if (f.check) return run_check(f);

  std::vector<Shape> shapes;
  for (int64_t d : f.dims)
    for (bool causal : {false, true})
      for (int64_t n : f.lengths) {
        const int64_t h = 2048 / d, b = std::max<int64_t>(1, 16384 / n);
        for (DType dtype : f.dtypes) shapes.push_back({dtype, b, n, h, h, d, causal});
        if (f.gqa && d == 128) shapes.push_back({DType::bf16, b, n, 32, 8, d, causal});
      }
  std::string what;  // "cuda_sm90,cuda_sm80 | fwd bwd"
  for (Backend b : f.backends) {
    if (!what.empty()) what += ',';
    what += omniattn::to_string(b);
  }
  what += " |";
  for (Op op : f.ops) {
    what += ' ';
    what += omniattn::bench::op_name(op);
  }
  std::printf("omniattn_bench_gpu on %s (%d SMs), commit %s: %s, %zu shapes\n", prop.name, prop.multiProcessorCount,
              f.commit.c_str(), what.c_str(), shapes.size());
  std::vector<Row> rows;
  Skips skips;
  for (const Shape& s : shapes) {
    const bool healthy = run_shape(s, f, rows, skips);
    if (!f.out_path.empty()) write_json(f, prop, kernels, rows, skips);  // after every shape: a crash keeps them
    if (!healthy) return 2;
  }
  if (!f.out_path.empty()) std::printf("wrote %s (%zu rows)\n", f.out_path.c_str(), rows.size());
  return 0;
}
