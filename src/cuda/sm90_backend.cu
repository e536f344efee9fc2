// Backend::cuda_sm90: the Hopper forward (TMA + wgmma + warp specialization, sm_90a). Calls it does not take
// (head dims without a tuning row; backward other than D = Dv = 64 or 128) are refused with the reason, and automatic
// dispatch falls through to cuda_sm80.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "core/backend.hpp"
#include "cuda/bwd/bwd_arguments.hpp"
#include "cuda/bwd/bwd_enqueue.hpp"
#include "cuda/bwd/bwd_launch.hpp"
#include "cuda/common/cta_timeline_capture.hpp"
#include "cuda/common/cuda_check.hpp"
#include "cuda/common/device_info.hpp"
#include "cuda/common/device_scratch.hpp"
#include "cuda/common/env.hpp"
#include "cuda/common/tensor_map.hpp"
#include "cuda/common/zeroed_counters.hpp"
#include "cuda/flash/fwd_arguments.hpp"
#include "cuda/flash/sm90_config.hpp"
#include "cuda/flash/sm90_launch.hpp"
#include "cuda/flash/sm90_scheduler.cuh"

namespace omniattn::detail {
namespace {

using cuda::env_int;
using cuda::env_is;

std::string supported_head_dims() {
  std::string s;
  for (const cuda::Sm90Tuning& t : cuda::kSm90TuningTable)
    if (!t.sparse_row) s += (s.empty() ? "" : ", ") + std::string("(") + std::to_string(t.d) + ", " + std::to_string(t.dv) + ")";
  return s;
}

// The portable tile geometry of a tuning row (make_fwd_launch and the layout checks take it).
cuda::FwdTuning portable_geometry(const cuda::Sm90Tuning& t) {
  cuda::FwdTuning f;
  f.d = t.d, f.dv = t.dv, f.block_m = t.block_m(), f.block_n = t.block_n, f.warps = 4 * t.consumers;
  f.min_ctas_per_sm = 1, f.stages = 1;
  return f;
}

std::optional<std::string> nonempty(std::string why) {
  if (why.empty()) return std::nullopt;
  return why;
}

cuda::Operand4d operand(const Operand& o, int64_t batches, int64_t tokens, int64_t heads, int64_t dim) {
  return {o.data, batches, tokens, heads, dim, o.batch, o.token, o.head};
}

// The deterministic D = 64 backward can add its two warpgroups' dQ partial sums into two accumulators (BwdParams::
// dq_partials) instead of folding them in shared memory before one: OMNIATTN_BWD_DQ_PARTIALS=2 (read once per
// process; docs/kernels.md's backward log steps 18 and 20; those kernels are instantiations of their own, so no
// other kernel carries the path). Off by default until it has run on a GPU (kDqPartialsByDefault).
constexpr int kDqPartialsByDefault = 1;
int backward_dq_partials(const BackwardProblem& p) {
  static const int partials = cuda::env_int("OMNIATTN_BWD_DQ_PARTIALS", kDqPartialsByDefault) == 2 ? 2 : 1;
  return p.deterministic && p.d == 64 ? partials : 1;
}

// The backward's TMA maps of Q and dO, boxes of (64 columns, block_m rows): one per operand indexed by batch, or per
// sequence (exactly its query tokens, at least 1: a map cannot be empty; an empty sequence's steps never run).
void backward_maps(const BackwardProblem& p, bool varlen, cuda::BwdTmaMaps& maps) {
  const int box_rows = static_cast<int>(cuda::bwd_tuning(static_cast<int>(p.d), static_cast<int>(p.dv)).block_m);
  if (!varlen) {
    maps.q = cuda::make_tensor_map_4d(operand(p.q, p.batch, p.q_len[0], p.hq, p.d), box_rows, "q");
    maps.dout = cuda::make_tensor_map_4d(operand(p.dout, p.batch, p.q_len[0], p.hq, p.dv), box_rows, "grad_out");
    return;
  }
  maps.per_sequence.resize(2 * static_cast<size_t>(p.batch));
  for (int64_t b = 0; b < p.batch; ++b) {
    auto rows_of = [&](const Operand& o) {
      Operand s = o;
      s.data = static_cast<char*>(o.data) + (b * o.batch + p.q_begin[b] * o.token) * 2;  // 16-bit elements
      return s;
    };
    const int64_t q_len = std::max<int64_t>(1, p.q_len[b]);
    maps.per_sequence[2 * b] = cuda::make_tensor_map_4d(operand(rows_of(p.q), 1, q_len, p.hq, p.d), box_rows, "q");
    maps.per_sequence[2 * b + 1] =
        cuda::make_tensor_map_4d(operand(rows_of(p.dout), 1, q_len, p.hq, p.dv), box_rows, "grad_out");
  }
}

// How the forward's tiles reach CTAs (Sm90TileScheduler): dynamic persistent (one CTA per SM drawing tiles in order)
// or one CTA per tile, and the scheduler's L2 sections.
struct Sm90ScheduleChoice {
  int ctas = 0;     // the persistent grid; 0: one CTA per tile
  int section = 1;  // (head, sequence) pairs per section
};

// Experiment overrides (environment, read once per process): OMNIATTN_SM90_SCHEDULE=persistent|per_tile,
// OMNIATTN_SM90_L2_MB=<MB of K/V a section keeps in flight>, OMNIATTN_SM90_O_STORE=registers.

// The tuning row of a forward call: the (D, Dv)'s sparse row for block-sparse calls when it has one, and for dense
// calls too under OMNIATTN_SM90_SPARSE_ROW=1 (experiments: the same-binary A/B of the dense row's tiles).
cuda::Sm90Tuning forward_row(const ForwardProblem& p) {
  static const bool sparse_row_for_all = env_is("OMNIATTN_SM90_SPARSE_ROW", "1");
  return cuda::sm90_tuning(static_cast<int>(p.d), static_cast<int>(p.dv), p.sparse.has_value() || sparse_row_for_all);
}

Sm90ScheduleChoice sm90_schedule(const ForwardProblem& p, const cuda::Sm90Tuning& t, const cuda::FwdParams& params) {
  static const int l2_mb = env_int("OMNIATTN_SM90_L2_MB", -1);
  const int64_t l2_budget = int64_t{l2_mb >= 0 ? l2_mb : t.l2_section_mb} << 20;
  const cuda::Sm90Schedule forced = cuda::sm90_schedule_override();
  Sm90ScheduleChoice s;
  const int64_t tiles = int64_t{params.m_blocks} * params.head_blocks * params.batch;  // Sm90TileScheduler::tiles
  const int sms = cuda::device_multiprocessors(p.device.index);
  const bool persistent = forced == cuda::Sm90Schedule::table ? t.persistent : forced == cuda::Sm90Schedule::persistent;
  if (!persistent || sms <= 0) return s;  // one CTA per tile: consecutive CTAs take one head's tiles, last first
  s.ctas = static_cast<int>(std::min<int64_t>(tiles, sms));
  // Sections: the K/V of the (head, sequence) pairs whose tiles run at the same time fit in the L2 budget; within
  // a section, tiles go heaviest first over all its pairs (balances causal tiles).
  const int64_t kv_bytes = std::max<int64_t>(1, p.max_k_len * (p.d + p.dv) * 2);
  s.section = static_cast<int>(std::clamp<int64_t>(l2_budget / kv_bytes * p.group(), 1, p.hq * p.batch));
  return s;
}

class CudaSm90Backend final : public BackendImpl {
 public:
  Backend id() const override { return Backend::cuda_sm90; }

  bool available() const override {
    for (int major : cuda::device_majors())
      if (major == 9) return true;
    return false;
  }

  std::string summary() const override {
    return "CUDA sm_90a FlashAttention-3-style forward (TMA, wgmma, warp-specialized producer/consumers, "
           "setmaxnreg): bf16/f16, (D, Dv) in {" +
           supported_head_dims() +
           "}; causal, sliding window, sinks, varlen (cu_seqlens, seqused_k), GQA/MQA, softcap, ALiBi, sink logits, "
           "LSE, block-sparse masks (block_q a multiple of the query tile, block_k of the KV tile); backward (wgmma "
           "main kernel) at (D, Dv) = (64, 64) and (128, 128) with the same features (deterministic mode at 128), "
           "other head dims go to cuda_sm80";
  }

  std::optional<std::string> can_run(const ForwardProblem& p) const override {
    if (!p.device.is_cuda()) return std::string("runs on CUDA tensors only");
    if (cuda::device_major(p.device.index) != 9)
      return "needs a Hopper GPU (compute capability 9.x; " + to_string(p.device) + " is not)";
    if (p.dtype != DType::bf16 && p.dtype != DType::f16)
      return "supports bf16 and f16 inputs only (given " + to_string(p.dtype) + ")";
    const cuda::Sm90Tuning t = forward_row(p);
    if (t.d == 0)
      return "supports head dims (D, Dv) in {" + supported_head_dims() + "} (given (" + std::to_string(p.d) + ", " +
             std::to_string(p.dv) + "))";
    if (std::string why = cuda::fwd_layout_refusal(p, portable_geometry(t), cuda::GqaPacking::never); !why.empty())
      return why;
    const int64_t tiles = (p.max_q_len + t.block_m() - 1) / t.block_m() * p.hq * p.batch;
    if (tiles >= (int64_t{1} << 31)) return std::string("supports fewer than 2^31 (query tile, head, sequence) tiles");
    return std::nullopt;
  }

  std::optional<std::string> can_run(const BackwardProblem& p) const override {
    if (!p.device.is_cuda()) return std::string("runs on CUDA tensors only");
    if (cuda::device_major(p.device.index) != 9)
      return "needs a Hopper GPU (compute capability 9.x; " + to_string(p.device) + " is not)";
    if (p.dtype != DType::bf16 && p.dtype != DType::f16)
      return "supports bf16 and f16 inputs only (given " + to_string(p.dtype) + ")";
    if (!cuda::sm90_bwd_supports(static_cast<int>(p.d), static_cast<int>(p.dv)))
      return "backward on sm_90a supports (D, Dv) in {(64, 64), (128, 128)} (given (" + std::to_string(p.d) + ", " +
             std::to_string(p.dv) + "); cuda_sm80 runs the others)";
    // Same work split, workspace and layout limits as the sm_80 backward row it shares.
    return nonempty(cuda::bwd_layout_refusal(p, cuda::bwd_tuning(static_cast<int>(p.d), static_cast<int>(p.dv))));
  }

  void backward(const BackwardProblem& p) const override {
    if (auto why = can_run(p)) throw Error("options.backend", "a call that cuda_sm90 supports", *why);
    cuda::enqueue_bwd(p, cuda::bwd_tuning(static_cast<int>(p.d), static_cast<int>(p.dv)),
                      cuda::BwdMainKernel{&cuda::run_bwd_sm90, &backward_maps, &backward_dq_partials});
  }

  void forward(const ForwardProblem& p) const override {
    if (auto why = can_run(p)) throw Error("options.backend", "a call that cuda_sm90 supports", *why);
    cuda::DeviceGuard guard(p.device.index);
    const cuda::Sm90Tuning t = forward_row(p);
    cuda::FwdLaunch launch = cuda::make_fwd_launch(p, portable_geometry(t), cuda::GqaPacking::never);
    if (launch.empty()) return;  // no query rows: nothing to write
    cuda::Sm90Params params{};
    params.base = launch.params;
    params.sparse_row = t.sparse_row;
    if (launch.seqs.empty()) {  // one geometry: one map per operand, indexed by batch
      const int64_t q_len = p.q_len[0];
      params.q_map = cuda::make_tensor_map_4d(operand(p.q, p.batch, q_len, p.hq, p.d), t.block_m(), "q");
      params.k_map = cuda::make_tensor_map_4d(operand(p.k, p.batch, p.k_len[0], p.hkv, p.d), t.block_n, "k");
      params.v_map = cuda::make_tensor_map_4d(operand(p.v, p.batch, p.k_len[0], p.hkv, p.dv), t.block_n, "v");
      params.o_map = cuda::make_tensor_map_4d(operand(p.out, p.batch, q_len, p.hq, p.dv), 64, "out");
    }
    static const bool o_from_registers = env_is("OMNIATTN_SM90_O_STORE", "registers");
    params.o_by_tma = t.o_through_smem && !o_from_registers;
    const Sm90ScheduleChoice schedule = sm90_schedule(p, t, launch.params);
    params.section = schedule.section;
    const auto stream = static_cast<cudaStream_t>(p.stream);
    const int d = static_cast<int>(p.d), dv = static_cast<int>(p.dv);
    // The dynamic persistent schedule's counters: the lock is held until the kernel is enqueued (it orders a call on
    // another stream after this one: the kernel leaves the counters zero for the next).
    // Debug: OMNIATTN_FWD_TIMELINE=<file> appends every call's tile records (Sm90Params::timeline).
    cuda::CtaTimelineCapture timeline("OMNIATTN_FWD_TIMELINE",
                                      static_cast<unsigned>(cuda::Sm90TileScheduler::tiles(launch.params)), 1, 1, stream);
    params.timeline = timeline.records();
    auto launch_kernel = [&] {
      if (schedule.ctas == 0) {
        cuda::run_fwd_sm90(p.dtype, d, dv, params, stream);
        return;
      }
      cuda::ZeroedCounters& counters = cuda::ZeroedCounters::of_device(p.device.index);
      const auto lock = counters.lock();
      params.counters = reinterpret_cast<cuda::Sm90TileCounters*>(counters.get(2, stream));
      params.ctas = schedule.ctas;
      cuda::run_fwd_sm90(p.dtype, d, dv, params, stream);
    };
    auto label = [&] { return std::string(p.sparse ? "sparse" : "dense") + "_d" + std::to_string(d); };
    if (launch.seqs.empty()) {
      launch_kernel();
      timeline.append(label);
      return;
    }
    // Varlen: per-sequence maps (exactly its tokens; at least 1, a map cannot be empty -- an empty sequence's
    // tiles are never visited) and the sequence geometry, uploaded together: maps first (64-byte aligned).
    constexpr int64_t kMaps = cuda::Sm90Params::kMapsPerSequence;
    std::vector<CUtensorMap> blob(kMaps * static_cast<size_t>(p.batch) +
                                  (launch.seqs.size() * sizeof(cuda::SeqInfo) + sizeof(CUtensorMap) - 1) /
                                      sizeof(CUtensorMap));
    for (int64_t b = 0; b < p.batch; ++b) {
      auto rows_of = [&](const Operand& o, int64_t begin) {
        Operand s = o;
        s.data = static_cast<char*>(o.data) + (b * o.batch + begin * o.token) * 2;  // 16-bit elements
        return s;
      };
      const int64_t q_len = std::max<int64_t>(1, p.q_len[b]), kv_len = std::max<int64_t>(1, p.k_len[b]);
      CUtensorMap* maps = &blob[kMaps * b];  // Q, K, V, O
      maps[0] = cuda::make_tensor_map_4d(operand(rows_of(p.q, p.q_begin[b]), 1, q_len, p.hq, p.d), t.block_m(), "q");
      maps[1] = cuda::make_tensor_map_4d(operand(rows_of(p.k, p.k_begin[b]), 1, kv_len, p.hkv, p.d), t.block_n, "k");
      maps[2] = cuda::make_tensor_map_4d(operand(rows_of(p.v, p.k_begin[b]), 1, kv_len, p.hkv, p.dv), t.block_n, "v");
      maps[3] = cuda::make_tensor_map_4d(operand(rows_of(p.out, p.q_begin[b]), 1, q_len, p.hq, p.dv), 64, "out");
    }
    std::memcpy(blob.data() + kMaps * p.batch, launch.seqs.data(), launch.seqs.size() * sizeof(cuda::SeqInfo));
    cuda::DeviceScratch& scratch = cuda::DeviceScratch::of_device(p.device.index);
    const auto lock = scratch.lock();  // held until the kernel that reads the metadata is enqueued
    const auto* device_blob =
        static_cast<const CUtensorMap*>(scratch.upload(blob.data(), blob.size() * sizeof(CUtensorMap), stream));
    params.seq_maps = device_blob;
    params.base.seqs = reinterpret_cast<const cuda::SeqInfo*>(device_blob + kMaps * p.batch);
    launch_kernel();
    timeline.append(label);
  }
};

}  // namespace

namespace cuda {
namespace {
std::atomic<Sm90Schedule> g_schedule{env_is("OMNIATTN_SM90_SCHEDULE", "persistent") ? Sm90Schedule::persistent
                                     : env_is("OMNIATTN_SM90_SCHEDULE", "per_tile") ? Sm90Schedule::per_tile
                                                                                     : Sm90Schedule::table};
}  // namespace
void set_sm90_schedule(Sm90Schedule schedule) { g_schedule.store(schedule); }
Sm90Schedule sm90_schedule_override() { return g_schedule.load(); }
}  // namespace cuda

const BackendImpl& cuda_sm90_backend() {
  static const CudaSm90Backend instance;
  return instance;
}

}  // namespace omniattn::detail
