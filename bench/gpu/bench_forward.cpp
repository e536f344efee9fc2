// GPU forward benchmark of omniattn's cuda_sm80 backend.
//
//   omniattn_bench_gpu [--out rows.json] [--commit SHA] [--lengths 512,1024,...] [--dims 64,128,256]
//                      [--reps 20] [--warmup 3] [--no-gqa] [--no-fp16] [--check]
//
// Shapes (FlashAttention's benchmark): B*N = 16k tokens, Hq*D = 2048, N in --lengths, D in --dims, causal and
// not, bf16 (+ fp16 at D = 128), + GQA Hq = 32 / Hkv = 8 at D = 128. Each call is timed alone with CUDA events
// after warm-up; the median of the repeats is reported, alternating between two input sets (a set is larger
// than L2 for these shapes, so repeats do not measure the cache). FLOPs = 4*B*Hq*Sq*Sk*D (halved for causal).
// Every row also checks 32 sampled output rows against a naive f32 GPU kernel (rel_err), and reports the
// device memory the library allocated during the calls. --check runs small odd shapes with every row checked.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <random>
#include <string>
#include <vector>

#include "bench_kernels.hpp"
#include "core/dtype.hpp"
#include "cuda/flash/fwd_launch.hpp"
#include "omniattn/omniattn.hpp"

namespace {

using omniattn::DType;

void cuda_ok(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return;
  std::fprintf(stderr, "CUDA error in %s: %s\n", what, cudaGetErrorString(e));
  std::exit(2);
}

struct DeviceMemory {
  void* ptr = nullptr;
  explicit DeviceMemory(size_t bytes) { cuda_ok(cudaMalloc(&ptr, std::max<size_t>(bytes, 16)), "cudaMalloc"); }
  ~DeviceMemory() { cudaFree(ptr); }
  DeviceMemory(const DeviceMemory&) = delete;
  DeviceMemory& operator=(const DeviceMemory&) = delete;
};

struct Shape {
  DType dtype = DType::bf16;
  int64_t batch = 1, n = 0, hq = 0, hkv = 0, d = 0;
  bool causal = false;
};

struct Row {
  Shape s;
  double ms = 0, tflops = 0, tbps = 0, rel_err = 0, extra_mb = 0;
};

const char* dtype_name(DType t) { return t == DType::bf16 ? "bf16" : "fp16"; }

double flops(const Shape& s) { return 4.0 * s.batch * s.hq * double(s.n) * double(s.n) * s.d / (s.causal ? 2.0 : 1.0); }

// rel_err = ||ours - naive|| / ||naive|| over `samples` random (b, h, i) rows (all rows when samples <= 0).
double sampled_rel_err(const Shape& s, const void* q, const void* k, const void* v, const void* out, int samples) {
  std::mt19937 gen(1234);
  std::vector<int32_t> rows;
  if (samples <= 0) {
    for (int64_t b = 0; b < s.batch; ++b)
      for (int64_t h = 0; h < s.hq; ++h)
        for (int64_t i = 0; i < s.n; ++i) rows.insert(rows.end(), {int32_t(b), int32_t(h), int32_t(i)});
  } else {
    for (int r = 0; r < samples; ++r)
      rows.insert(rows.end(), {int32_t(gen() % s.batch), int32_t(gen() % s.hq), int32_t(gen() % s.n)});
  }
  const int n_rows = int(rows.size() / 3);
  DeviceMemory rows_d(rows.size() * 4), out_d(size_t(n_rows) * s.d * 4), scratch_d(size_t(n_rows) * s.n * 4);
  cuda_ok(cudaMemcpy(rows_d.ptr, rows.data(), rows.size() * 4, cudaMemcpyHostToDevice), "rows upload");
  omniattn::bench::NaiveAttention a;
  a.q = q, a.k = k, a.v = v, a.dtype = s.dtype;
  a.sq = a.sk = s.n, a.hq = s.hq, a.hkv = s.hkv, a.d = a.dv = s.d;
  a.causal = s.causal;
  a.scale = float(1.0 / std::sqrt(double(s.d)));
  a.rows = static_cast<const int32_t*>(rows_d.ptr), a.n_rows = n_rows;
  a.out = static_cast<float*>(out_d.ptr), a.scratch = static_cast<float*>(scratch_d.ptr);
  omniattn::bench::naive_attention_rows(a);
  cuda_ok(cudaGetLastError(), "naive attention launch");
  std::vector<float> naive(size_t(n_rows) * s.d);
  cuda_ok(cudaMemcpy(naive.data(), out_d.ptr, naive.size() * 4, cudaMemcpyDeviceToHost), "naive download");
  std::vector<uint16_t> ours_row(s.d);
  double diff2 = 0, ref2 = 0;
  for (int r = 0; r < n_rows; ++r) {
    const int64_t b = rows[3 * r], h = rows[3 * r + 1], i = rows[3 * r + 2];
    const size_t offset = size_t(((b * s.n + i) * s.hq + h) * s.d) * 2;
    cuda_ok(cudaMemcpy(ours_row.data(), static_cast<const char*>(out) + offset, s.d * 2, cudaMemcpyDeviceToHost),
            "output download");
    for (int64_t c = 0; c < s.d; ++c) {
      const double x = s.dtype == DType::bf16 ? omniattn::detail::to_float(omniattn::detail::bf16_t{ours_row[c]})
                                              : omniattn::detail::to_float(omniattn::detail::f16_t{ours_row[c]});
      const double y = naive[size_t(r) * s.d + c];
      diff2 += (x - y) * (x - y);
      ref2 += y * y;
    }
  }
  return ref2 > 0 ? std::sqrt(diff2 / ref2) : std::sqrt(diff2);
}

Row run_shape(const Shape& s, int reps, int warmup, int check_samples) {
  const int64_t q_elems = s.batch * s.n * s.hq * s.d, kv_elems = s.batch * s.n * s.hkv * s.d;
  const size_t es = 2;
  size_t free_before = 0, free_after = 0, total = 0;
  // Two input sets, one output.
  DeviceMemory q0(q_elems * es), k0(kv_elems * es), v0(kv_elems * es), q1(q_elems * es), k1(kv_elems * es),
      v1(kv_elems * es), out(q_elems * es);
  void* qs[2] = {q0.ptr, q1.ptr};
  void* ks[2] = {k0.ptr, k1.ptr};
  void* vs[2] = {v0.ptr, v1.ptr};
  for (int set = 0; set < 2; ++set) {
    omniattn::bench::fill_normal(qs[set], s.dtype, q_elems, 100 + 3 * set);
    omniattn::bench::fill_normal(ks[set], s.dtype, kv_elems, 101 + 3 * set);
    omniattn::bench::fill_normal(vs[set], s.dtype, kv_elems, 102 + 3 * set);
  }
  cuda_ok(cudaDeviceSynchronize(), "input fill");
  using omniattn::TensorView;
  auto view = [&](void* p, int64_t h) {
    return TensorView::contiguous(p, s.dtype, {s.batch, s.n, h, s.d}, omniattn::Device::cuda(0));
  };
  omniattn::AttentionOptions options;
  options.causal = s.causal;
  options.backend = omniattn::Backend::cuda_sm80;
  auto call = [&](int set) {
    omniattn::attention_forward(view(qs[set], s.hq), view(ks[set], s.hkv), view(vs[set], s.hkv),
                                {view(out.ptr, s.hq), std::nullopt}, options);
  };

  cuda_ok(cudaMemGetInfo(&free_before, &total), "cudaMemGetInfo");
  for (int i = 0; i < warmup; ++i) call(i % 2);
  cuda_ok(cudaDeviceSynchronize(), "warm-up");
  cuda_ok(cudaMemGetInfo(&free_after, &total), "cudaMemGetInfo");

  cudaEvent_t start, stop;
  cuda_ok(cudaEventCreate(&start), "cudaEventCreate");
  cuda_ok(cudaEventCreate(&stop), "cudaEventCreate");
  std::vector<float> times;
  for (int r = 0; r < reps; ++r) {
    cuda_ok(cudaEventRecord(start), "cudaEventRecord");
    call(r % 2);
    cuda_ok(cudaEventRecord(stop), "cudaEventRecord");
    cuda_ok(cudaEventSynchronize(stop), "cudaEventSynchronize");
    float ms = 0;
    cuda_ok(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime");
    times.push_back(ms);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  std::sort(times.begin(), times.end());

  Row row;
  row.s = s;
  row.ms = times[times.size() / 2];
  row.tflops = flops(s) / row.ms / 1e9;
  row.tbps = double(2 * q_elems + 2 * kv_elems) * es / row.ms / 1e9;  // Q, K, V read + O written
  row.extra_mb = free_before > free_after ? double(free_before - free_after) / (1 << 20) : 0.0;
  call(0);
  cuda_ok(cudaDeviceSynchronize(), "checked call");
  row.rel_err = sampled_rel_err(s, q0.ptr, k0.ptr, v0.ptr, out.ptr, check_samples);
  return row;
}

std::vector<int64_t> parse_list(const char* s) {
  std::vector<int64_t> v;
  for (std::string item; *s; ++s) {
    if (*s != ',') item += *s;
    if (*s == ',' || s[1] == '\0') v.push_back(std::stoll(item)), item.clear();
  }
  return v;
}

void print_row(const Row& r) {
  std::printf(
      "%-5s %-7s B=%3lld Hq=%3lld Hkv=%3lld N=%6lld D=%4lld  %9.3f ms  %7.1f TFLOP/s  %5.2f TB/s  rel_err %.2e  "
      "extra %.1f MB\n",
      dtype_name(r.s.dtype), r.s.causal ? "causal" : "none", (long long)r.s.batch, (long long)r.s.hq,
      (long long)r.s.hkv, (long long)r.s.n, (long long)r.s.d, r.ms, r.tflops, r.tbps, r.rel_err, r.extra_mb);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  std::string out_path, commit = "unknown", command;
  std::vector<int64_t> lengths = {512, 1024, 2048, 4096, 8192, 16384, 32768}, dims = {64, 128, 256};
  int reps = 20, warmup = 3;
  bool gqa = true, fp16 = true, check = false;
  for (int i = 0; i < argc; ++i) command += (i ? " " : "") + std::string(argv[i]);
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> const char* {
      if (i + 1 >= argc) std::fprintf(stderr, "%s needs a value\n", a.c_str()), std::exit(1);
      return argv[++i];
    };
    if (a == "--out")
      out_path = next();
    else if (a == "--commit")
      commit = next();
    else if (a == "--lengths")
      lengths = parse_list(next());
    else if (a == "--dims")
      dims = parse_list(next());
    else if (a == "--reps")
      reps = std::max(1, std::atoi(next()));
    else if (a == "--warmup")
      warmup = std::max(1, std::atoi(next()));
    else if (a == "--no-gqa")
      gqa = false;
    else if (a == "--no-fp16")
      fp16 = false;
    else if (a == "--check")
      check = true;
    else
      std::fprintf(stderr, "unknown argument %s\n", a.c_str()), std::exit(1);
  }
  cudaDeviceProp prop{};
  cuda_ok(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");

  // What the device makes of each kernel: is the planned occupancy reached, did registers spill?
  std::string kernels_json;
  for (int64_t d : dims)
    for (DType dtype : {DType::bf16, DType::f16}) {
      if (dtype == DType::f16 && !(fp16 && d == 128)) continue;
      const auto info = omniattn::detail::cuda::fwd_sm80_info(dtype, int(d), int(d));
      std::printf("kernel D=%lld %s: %d threads, %d registers, %d B local, %d KB shared, %d CTAs/SM\n", (long long)d,
                  dtype_name(dtype), info.threads, info.registers, info.local_bytes, info.smem_bytes / 1024,
                  info.ctas_per_sm);
      char buf[256];
      std::snprintf(buf, sizeof buf,
                    "%s{\"D\": %lld, \"dtype\": \"%s\", \"threads\": %d, \"registers\": %d, \"local_bytes\": %d, "
                    "\"smem_bytes\": %d, \"ctas_per_sm\": %d}",
                    kernels_json.empty() ? "" : ", ", (long long)d, dtype_name(dtype), info.threads, info.registers,
                    info.local_bytes, info.smem_bytes, info.ctas_per_sm);
      kernels_json += buf;
    }
  if (check) {  // small odd shapes, every row checked against the naive kernel
    int failures = 0;
    for (int64_t d : {64, 96, 128, 192, 256})
      for (bool causal : {false, true})
        for (DType dtype : {DType::bf16, DType::f16}) {
          Shape s{dtype, 2, 333, 4, d == 128 ? 2 : 4, d, causal};
          const Row r = run_shape(s, 3, 1, 0);
          print_row(r);
          const bool ok = r.rel_err < (dtype == DType::bf16 ? 1e-2 : 2e-3);
          failures += !ok;
          if (!ok) std::printf("  FAILED: rel_err above %.0e\n", dtype == DType::bf16 ? 1e-2 : 2e-3);
        }
    std::printf("%s\n", failures ? "CHECK FAILED" : "check passed");
    return failures ? 1 : 0;
  }

  std::vector<Shape> shapes;
  for (int64_t d : dims)
    for (bool causal : {false, true})
      for (int64_t n : lengths) {
        const int64_t h = 2048 / d, b = std::max<int64_t>(1, 16384 / n);
        shapes.push_back({DType::bf16, b, n, h, h, d, causal});
        if (fp16 && d == 128) shapes.push_back({DType::f16, b, n, h, h, d, causal});
        if (gqa && d == 128) shapes.push_back({DType::bf16, b, n, 32, 8, d, causal});
      }
  std::printf("omniattn cuda_sm80 forward on %s (%d SMs), commit %s\n", prop.name, prop.multiProcessorCount,
              commit.c_str());
  std::vector<Row> rows;
  for (const Shape& s : shapes) {
    rows.push_back(run_shape(s, reps, warmup, 32));
    print_row(rows.back());
  }

  if (!out_path.empty()) {
    FILE* f = std::fopen(out_path.c_str(), "w");
    if (!f) return std::perror(out_path.c_str()), 1;
    char date[16];
    const std::time_t now = std::time(nullptr);
    std::strftime(date, sizeof date, "%Y-%m-%d", std::gmtime(&now));
    std::fprintf(f,
                 "{\"device\": \"%s\", \"date\": \"%s\", \"commit\": \"%s\", \"command\": \"%s\",\n"
                 " \"kernels\": [%s],\n \"rows\": [\n",
                 prop.name, date, commit.c_str(), command.c_str(), kernels_json.c_str());
    for (size_t i = 0; i < rows.size(); ++i) {
      const Row& r = rows[i];
      std::fprintf(
          f,
          "  {\"op\": \"fwd\", \"impl\": \"omniattn_sm80\", \"mask\": \"%s\", \"dtype\": \"%s\", \"B\": %lld, "
          "\"Hq\": %lld, \"Hkv\": %lld, \"Sq\": %lld, \"Sk\": %lld, \"D\": %lld, \"Dv\": %lld, \"density\": 1.0, "
          "\"ms\": %.6f, \"tflops\": %.3f, \"tbps\": %.4f, \"rel_err\": %.3e, \"extra_device_mb\": %.2f}%s\n",
          r.s.causal ? "causal" : "none", dtype_name(r.s.dtype), (long long)r.s.batch, (long long)r.s.hq,
          (long long)r.s.hkv, (long long)r.s.n, (long long)r.s.n, (long long)r.s.d, (long long)r.s.d, r.ms, r.tflops,
          r.tbps, r.rel_err, r.extra_mb, i + 1 < rows.size() ? "," : "");
    }
    std::fprintf(f, " ]}\n");
    std::fclose(f);
    std::printf("wrote %s\n", out_path.c_str());
  }
  return 0;
}
