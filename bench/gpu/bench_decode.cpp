// GPU benchmark of attention_decode (suite "decode"): Hq = 32, Hkv = 8, D = 128, bf16, one query token;
// B in {1, 4, 16, 64} x L in {4k, 16k, 64k, 128k}, plus a ragged batch (one 128k sequence and 63 of 1k); each on a
// contiguous cache and on paged caches of 16 and 256 tokens per page (pages in shuffled order).
// Per row: median µs of the call (CUDA events, after warm-up; small caches rotate over copies so that repeats do
// not hit L2) and KV bytes/s = (sum of lengths x Hkv x D x 2 (K, V) x 2 bytes) / time.
// --kv-layout hnd stores each page head-major ([pages, Hkv, page_size, D], FlashInfer's HND and the layout of the
// peers' [B, Hkv, L, D] cache; rows "<layout>_hnd") instead of vLLM's token-major NHD [pages, page_size, Hkv, D].
// --page-order: the pool's pages go to the sequences shuffled (default: a long-running server's free list), in order
// (sequential), or shuffled within each 2 MB of pool (local: DRAM order as random, address translation as sequential).
//   omniattn_bench_decode [--out FILE] [--commit SHA] [--reps N] [--quick] [--schedule auto|none|split|streamk]
//                         [--kv-layout nhd|hnd] [--page-order shuffled|sequential|local] [--only layout:B:L|layout:ragged]
#include <cuda_runtime_api.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "bench_cuda.hpp"
#include "bench_kernels.hpp"
#include "decode/decode_plan.hpp"
#include "decode/decode_problem.hpp"
#include "omniattn/omniattn.hpp"

namespace {

using omniattn::DType;
using omniattn::TensorView;

using omniattn::bench::cuda_ok;
using Buffer = omniattn::bench::DeviceBuffer<>;

constexpr int64_t kHq = 32, kHkv = 8, kD = 128;

struct Row {
  std::string layout, batch_kind;
  int64_t b = 0, l = 0;
  double us = 0, tbps = 0, host_us = 0, b2b_us = 0;
};

double median(std::vector<double> v) {
  std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
  return v[v.size() / 2];
}

struct Timing {
  double us = 0;       // one call between two events, then synchronized (the peers' method): host + GPU
  double host_us = 0;  // the call's own wall time (validation, plan, upload, launches)
  double b2b_us = 0;   // per call, calls back to back
};

// The K (or V) pool of one case: pages x page_size tokens (contiguous: one page per sequence), and how many copies
// of the cache the case rotates over so that the data of one call is not in L2 for the next (L2 <= 60 MB).
struct PoolShape {
  int64_t pages = 0, page_size = 0, max_pages = 1;
  size_t bytes = 0;  // one pool, rounded up to 256 bytes
  int sets = 1;
};
PoolShape pool_shape(const std::vector<int64_t>& lens, int64_t page) {
  PoolShape s;
  const int64_t longest = *std::max_element(lens.begin(), lens.end());
  s.page_size = longest;
  s.pages = static_cast<int64_t>(lens.size());
  if (page > 0) {
    s.page_size = page;
    s.max_pages = (longest + page - 1) / page;
    s.pages = 0;
    for (int64_t len : lens) s.pages += (len + page - 1) / page;
  }
  s.bytes = (static_cast<size_t>(s.pages * s.page_size * kHkv * kD * 2) + 255) / 256 * 256;
  s.sets = static_cast<int>(std::clamp<size_t>((size_t{256} << 20) / std::max<size_t>(2 * s.bytes, 1), 1, 8));
  return s;
}

// One cache (contiguous when page == 0) of the given lengths, its K and V pools carved from `arena` (2 x sets x
// bytes): one allocation for the whole run, as a server allocates its KV pool once. Allocating and freeing each
// case's pools instead made the first case after a large one ~1 ms slower per call (on the H100 and H200, e.g.
// B = 64, 4k right after B = 16, 128k), which an isolated run of the same case did not show.
// Returns the medians of attention_decode's times.
enum class PageOrder { shuffled, sequential, local };

Timing time_decode(const std::vector<int64_t>& lens, int64_t page, bool head_major, PageOrder page_order, int reps,
                   const omniattn::DecodeConfig& config, bool profile_host, uint8_t* arena) {
  const int64_t b = static_cast<int64_t>(lens.size());
  const PoolShape shape = pool_shape(lens, page);
  const int64_t pages = shape.pages, page_size = shape.page_size, max_pages = shape.max_pages;
  const size_t pool_bytes = shape.bytes;
  const int sets = shape.sets;
  std::vector<void*> k, v;
  for (int s = 0; s < sets; ++s) {
    k.push_back(arena + (2 * s) * pool_bytes);
    v.push_back(arena + (2 * s + 1) * pool_bytes);
    omniattn::bench::fill_normal(k.back(), DType::bf16, static_cast<int64_t>(pool_bytes / 2), 2 * s + 1);
    omniattn::bench::fill_normal(v.back(), DType::bf16, static_cast<int64_t>(pool_bytes / 2), 2 * s + 2);
  }
  std::vector<int32_t> table(static_cast<size_t>(b * max_pages), 0), host_lens(lens.begin(), lens.end());
  std::vector<int32_t> order(static_cast<size_t>(pages));
  std::iota(order.begin(), order.end(), 0);
  std::mt19937 gen(7);
  if (page_order == PageOrder::shuffled) std::shuffle(order.begin(), order.end(), gen);
  if (page_order == PageOrder::local && page > 0) {  // shuffled within each 2 MB of pool
    const int64_t per_2mb = std::max<int64_t>(1, (int64_t{2} << 20) / (page * kHkv * kD * 2));
    for (int64_t at = 0; at < pages; at += per_2mb)
      std::shuffle(order.begin() + at, order.begin() + std::min(pages, at + per_2mb), gen);
  }
  for (int64_t i = 0, next = 0; i < b && page > 0; ++i)
    for (int64_t j = 0; j < (lens[i] + page - 1) / page; ++j) table[i * max_pages + j] = order[next++];
  Buffer table_d(table.size() * 4), lens_d(host_lens.size() * 4), q(b * kHq * kD * 2), out(b * kHq * kD * 2);
  cuda_ok(cudaMemcpy(table_d.ptr, table.data(), table.size() * 4, cudaMemcpyHostToDevice), "cudaMemcpy");
  cuda_ok(cudaMemcpy(lens_d.ptr, host_lens.data(), host_lens.size() * 4, cudaMemcpyHostToDevice), "cudaMemcpy");
  omniattn::bench::fill_normal(q.ptr, DType::bf16, b * kHq * kD, 99);
  cuda_ok(cudaDeviceSynchronize(), "fill");
  const auto cuda = omniattn::Device::cuda(0);
  const TensorView table_v = TensorView::contiguous(table_d.ptr, DType::i32, {b, max_pages}, cuda);
  const TensorView table_h = TensorView::contiguous(table.data(), DType::i32, {b, max_pages});
  const TensorView lens_v = TensorView::contiguous(lens_d.ptr, DType::i32, {b}, cuda);
  const TensorView lens_h = TensorView::contiguous(host_lens.data(), DType::i32, {b});
  const TensorView q_v = TensorView::contiguous(q.ptr, DType::bf16, {b, 1, kHq, kD}, cuda);
  const TensorView out_v = TensorView::contiguous(out.ptr, DType::bf16, {b, 1, kHq, kD}, cuda);
  auto cache_of = [&](int s) {
    // (pages, page_size, Hkv, D) views; head-major pages: strides (page_size Hkv D, D, page_size D, 1)
    auto pool = [&](void* data) {
      return head_major ? TensorView::strided(data, DType::bf16, {pages, page_size, kHkv, kD},
                                              {page_size * kHkv * kD, kD, page_size * kD, 1}, cuda)
                        : TensorView::contiguous(data, DType::bf16, {pages, page_size, kHkv, kD}, cuda);
    };
    const TensorView kv = pool(k[s]), vv = pool(v[s]);
    omniattn::KVCache c = page > 0 ? omniattn::KVCache::paged(kv, vv, table_v, lens_v)
                                   : omniattn::KVCache::contiguous(kv, vv, lens_v);
    if (page > 0) c.host_block_table = table_h;
    c.host_seq_lens = lens_h;  // serving keeps host lengths: no device-to-host copy per step
    return c;
  };
  omniattn::AttentionOptions o;
  o.causal = true;
  o.backend = omniattn::Backend::cuda_sm80;  // the decode kernels are portable mma.sync code (sm_80+)
  for (int i = 0; i < 3; ++i) omniattn::attention_decode(q_v, cache_of(i % sets), {out_v, std::nullopt}, o, config);
  cudaEvent_t start, stop;
  cuda_ok(cudaEventCreate(&start), "cudaEventCreate");
  cuda_ok(cudaEventCreate(&stop), "cudaEventCreate");
  std::vector<double> ms, host_us;
  for (int r = 0; r < reps; ++r) {
    const omniattn::KVCache c = cache_of(r % sets);
    cuda_ok(cudaEventRecord(start), "cudaEventRecord");
    const auto t0 = std::chrono::steady_clock::now();
    omniattn::attention_decode(q_v, c, {out_v, std::nullopt}, o, config);
    host_us.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
    cuda_ok(cudaEventRecord(stop), "cudaEventRecord");
    cuda_ok(cudaEventSynchronize(stop), "cudaEventSynchronize");
    float t = 0;
    cuda_ok(cudaEventElapsedTime(&t, start, stop), "cudaEventElapsedTime");
    ms.push_back(t);
  }
  // Back to back: `reps` calls between one pair of events, so the host's enqueue overlaps the previous call's
  // kernels (what a serving loop that does not synchronize per step sees).
  // The median of 3 such batches (one slow batch, e.g. a page-locked allocation, does not decide the row).
  std::vector<double> batch_ms;
  for (int batch = 0; batch < 3; ++batch) {
    cuda_ok(cudaEventRecord(start), "cudaEventRecord");
    for (int r = 0; r < reps; ++r)
      omniattn::attention_decode(q_v, cache_of(r % sets), {out_v, std::nullopt}, o, config);
    cuda_ok(cudaEventRecord(stop), "cudaEventRecord");
    cuda_ok(cudaEventSynchronize(stop), "cudaEventSynchronize");
    float batch_total = 0;
    cuda_ok(cudaEventElapsedTime(&batch_total, start, stop), "cudaEventElapsedTime");
    batch_ms.push_back(batch_total);
  }
  const double total = median(batch_ms);
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  if (profile_host) {  // where the host time of one call goes (medians over reps, µs)
    std::vector<double> validate, plan, launch, copy;
    void* pinned = nullptr;
    Buffer dst(8192);
    cuda_ok(cudaMallocHost(&pinned, 8192), "cudaMallocHost");
    cudaEvent_t e;
    cuda_ok(cudaEventCreateWithFlags(&e, cudaEventDisableTiming), "cudaEventCreate");
    auto us_of = [](auto&& fn) {
      const auto t0 = std::chrono::steady_clock::now();
      fn();
      return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
    };
    for (int r = 0; r < reps; ++r) {
      const omniattn::KVCache c = cache_of(r % sets);
      omniattn::detail::DecodeProblem p;
      validate.push_back(us_of([&] { p = omniattn::detail::make_decode_problem(q_v, c, {out_v, std::nullopt}, o, config); }));
      omniattn::detail::DecodePlanShape shape;
      shape.resident_ctas = 264;
      plan.push_back(us_of([&] {
        auto plan_ = omniattn::detail::plan_decode(omniattn::detail::decode_segments(p, 64, 16), config, shape);
        (void)plan_;
      }));
      launch.push_back(us_of([] { omniattn::bench::launch_empty(); }));
      copy.push_back(us_of([&] {
        cudaMemcpyAsync(dst.ptr, pinned, 6144, cudaMemcpyHostToDevice, nullptr);
        cudaEventRecord(e, nullptr);
      }));
      cuda_ok(cudaDeviceSynchronize(), "sync");
    }
    std::printf("  host profile (us): validate %.1f, plan %.1f, empty launch %.1f, pinned 6 KB copy + event %.1f\n",
                median(validate), median(plan), median(launch), median(copy));
    cudaEventDestroy(e);
    cudaFreeHost(pinned);
  }
  Timing t;
  t.us = 1000.0 * median(ms);
  t.host_us = median(host_us);
  t.b2b_us = 1000.0 * total / reps;
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  std::string out_path, commit = "unknown", command;
  int reps = 20;
  bool quick = false;
  std::string only;
  bool head_major = false;
  PageOrder page_order = PageOrder::shuffled;
  std::string order_suffix;
  omniattn::DecodeConfig config;
  for (int i = 0; i < argc; ++i) command += (i ? " " : "") + std::string(argv[i]);
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) { std::fprintf(stderr, "%s needs a value\n", a.c_str()); std::exit(1); }
      return argv[++i];
    };
    if (a == "--out") out_path = next();
    else if (a == "--commit") commit = next();
    else if (a == "--reps") reps = std::max(1, std::atoi(next().c_str()));
    else if (a == "--quick") quick = true;
    else if (a == "--only") only = next();  // "contiguous:16:65536" or "paged16:ragged": one case (profilers)
    else if (a == "--kv-layout") head_major = next() == "hnd";
    else if (a == "--page-order") {
      const std::string s = next();
      page_order = s == "sequential" ? PageOrder::sequential : s == "local" ? PageOrder::local : PageOrder::shuffled;
      if (page_order != PageOrder::shuffled) order_suffix.append("_").append(s);
    }
    else if (a == "--schedule") {
      const std::string s = next();
      config.schedule = s == "none" ? omniattn::DecodeSchedule::no_split
                        : s == "split" ? omniattn::DecodeSchedule::split_kv
                        : s == "streamk" ? omniattn::DecodeSchedule::stream_k
                                         : omniattn::DecodeSchedule::automatic;
    } else {
      std::fprintf(stderr, "usage: %s [--out FILE] [--commit SHA] [--reps N] [--quick] [--schedule auto|none|split|streamk] [--kv-layout nhd|hnd] [--page-order shuffled|sequential|local] [--only layout:B:L|layout:ragged]\n", argv[0]);
      return a == "--help" ? 0 : 1;
    }
  }
  cudaDeviceProp prop{};
  cuda_ok(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");
  std::vector<int64_t> batches = {1, 4, 16, 64}, lengths = {4096, 16384, 65536, 131072};
  if (quick) batches = {1, 16}, lengths = {4096, 65536};
  // The ceiling: a streaming read of 4 GB (the largest case reads 4.3 GB of K/V).
  const double read_bw = omniattn::bench::measure_read_bandwidth(size_t{4} << 30) / 1e12;
  std::printf("measured read bandwidth: %.2f TB/s\n", read_bw);
  std::vector<Row> rows;
  std::printf("%-10s %-8s %4s %7s %10s %8s %8s %8s\n", "layout", "batch", "B", "L", "us", "TB/s", "host us", "b2b us");
  struct Case {
    std::string layout, kind;
    int64_t page = 0;
    std::vector<int64_t> lens;
  };
  std::vector<Case> cases;
  for (int64_t page : {int64_t{0}, int64_t{16}, int64_t{256}}) {
    const std::string layout =
        (page == 0 ? "contiguous" : "paged" + std::to_string(page) + order_suffix) + (head_major ? "_hnd" : "");
    std::vector<std::pair<std::string, std::vector<int64_t>>> shapes;
    for (int64_t b : batches)
      for (int64_t l : lengths) shapes.push_back({"uniform", std::vector<int64_t>(static_cast<size_t>(b), l)});
    std::vector<int64_t> ragged(64, 1024);
    ragged[0] = 131072;
    shapes.push_back({"ragged", ragged});
    for (auto& [kind, lens] : shapes) {
      const std::string id = layout + ":" + std::to_string(lens.size()) + ":" +
                             std::to_string(*std::max_element(lens.begin(), lens.end()));
      if (!only.empty() && id != only && !(kind == "ragged" && only == layout + ":ragged")) continue;
      cases.push_back({layout, kind, page, std::move(lens)});
    }
  }
  size_t arena_bytes = 0;  // the largest case's K and V pools, every copy
  for (const Case& c : cases) {
    const PoolShape s = pool_shape(c.lens, c.page);
    arena_bytes = std::max(arena_bytes, 2 * static_cast<size_t>(s.sets) * s.bytes);
  }
  const Buffer arena(arena_bytes);
  std::printf("KV arena: %.1f GB\n", static_cast<double>(arena_bytes) / 1e9);
  for (const Case& c : cases) {
    const std::vector<int64_t>& lens = c.lens;
    Row r;
    r.layout = c.layout;
    r.batch_kind = c.kind;
    r.b = static_cast<int64_t>(lens.size());
    r.l = *std::max_element(lens.begin(), lens.end());
    // A host-time breakdown for the B = 1, L = 16k rows (the host-bound end of the table).
    const bool profile = r.b == 1 && r.l == 16384;
    const Timing t = time_decode(lens, c.page, head_major, page_order, reps, config, profile, static_cast<uint8_t*>(arena.ptr));
    r.us = t.us, r.host_us = t.host_us, r.b2b_us = t.b2b_us;
    double bytes = 0;
    for (int64_t len : lens) bytes += static_cast<double>(len) * kHkv * kD * 2 * 2;
    r.tbps = bytes / (r.us * 1e-6) / 1e12;
    std::printf("%-10s %-8s %4lld %7lld %10.1f %8.2f %8.1f %8.1f\n", c.layout.c_str(), c.kind.c_str(),
                static_cast<long long>(r.b), static_cast<long long>(r.l), r.us, r.tbps, r.host_us, r.b2b_us);
    std::fflush(stdout);
    rows.push_back(r);
  }
  if (out_path.empty()) return 0;
  FILE* f = std::fopen(out_path.c_str(), "w");
  if (!f) { std::perror(out_path.c_str()); return 1; }
  char date[16];
  const std::time_t now = std::time(nullptr);
  std::strftime(date, sizeof date, "%Y-%m-%d", std::gmtime(&now));
  std::fprintf(f, "{\"device\": \"%s\", \"date\": \"%s\", \"commit\": \"%s\", \"command\": \"%s\", "
               "\"read_tbps\": %.4f, \"rows\": [\n", prop.name, date, commit.c_str(), command.c_str(), read_bw);
  for (size_t i = 0; i < rows.size(); ++i) {
    const Row& r = rows[i];
    double sum_len = 0;  // ragged: Sk is the longest; the FLOPs use every sequence's length
    if (r.batch_kind == "ragged") sum_len = 131072.0 + 63 * 1024.0;
    else sum_len = static_cast<double>(r.b * r.l);
    const double tflops = 4.0 * kHq * sum_len * kD / (r.us * 1e-6) / 1e12;
    std::fprintf(f,
                 "  {\"op\": \"decode\", \"impl\": \"omniattn\", \"mask\": \"causal\", \"layout\": \"%s\", "
                 "\"batch\": \"%s\", \"dtype\": \"bf16\", \"B\": %lld, \"Hq\": %lld, \"Hkv\": %lld, \"Sq\": 1, "
                 "\"Sk\": %lld, \"D\": %lld, \"Dv\": %lld, \"density\": 1.0, \"ms\": %.6f, \"us\": %.3f, "
                 "\"tflops\": %.4f, \"tbps\": %.4f, \"host_us\": %.3f, \"b2b_us\": %.3f}%s\n",
                 r.layout.c_str(), r.batch_kind.c_str(), static_cast<long long>(r.b), static_cast<long long>(kHq),
                 static_cast<long long>(kHkv), static_cast<long long>(r.l), static_cast<long long>(kD),
                 static_cast<long long>(kD), r.us / 1000.0, r.us, tflops, r.tbps, r.host_us, r.b2b_us,
                 i + 1 < rows.size() ? "," : "");
  }
  std::fprintf(f, "]}\n");
  std::fclose(f);
  return 0;
}
