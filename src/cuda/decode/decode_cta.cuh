#pragma once
// What one decode CTA does: its work items (decode_plan.hpp) in order, as ONE stream of K/V tiles through a
// kStages-deep cp.async pipeline, so that an item's first tiles load while the previous item computes its last
// tiles, writes its result and merges its segment. (A stream-K run over 1k-token sequences holds about six items;
// draining and refilling the pipeline for each cost a memory latency per item.) A device function apart from the
// __global__ wrapper (decode_kernel.cuh) so that a host emulation can run the same code.
//
// Global tile t (the items' tiles in order) lives in stage t % kStages. cp.async groups: one per prologue slot
// (tile j in group j, j < kStages - 1), then one per step. Step t:
//   wait until tile t landed; barrier (its copies visible; every warp done with tile t - 1, whose stage tile
//   t + kStages - 1 takes); issue up to tile t + kStages - 1; compute tile t. After an item's last tile: barrier,
//   epilogue (and the segment's merge) staged through tile t's stage, which no tile in flight holds.
// Q is double-buffered by item parity: a tile of item j is issued only once item j - 1 computes, when item j - 2
// (the buffer's previous owner) is done. Items shorter than kStages - 1 tiles so hold the issue back; a tile
// issued after its regular group is "late" and waited for with wait_group 0.
// Bulk mode (p.bulk_kv, sm_90): K/V rows are bulk copies completing on the stage's mbarrier (every thread arrives
// once per tile), waited for by phase (tile t is use t / kStages of its stage); only Q stays in cp.async groups, and
// an item's first tile also waits for them all.
#include "cuda/decode/decode_epilogue.cuh"
#include "cuda/decode/decode_items.cuh"
#include "cuda/decode/decode_load.cuh"
#include "cuda/decode/decode_mainloop.cuh"
#include "cuda/decode/decode_merge.cuh"

namespace omniattn::detail::cuda {

/// After writing a partial of a split segment: the CTA whose partial completes the segment merges it (no second
/// kernel, no launch, no gap). Every thread fences its partial stores before the barrier, so the arrival that one
/// thread then counts is ordered after all of them (the classic last-block reduction). `scratch`: a free stage.
template <class Traits>
__device__ __forceinline__ void merge_if_last(const DecodeParams& p, int merge, uint8_t* smem, uint8_t* scratch) {
  static_assert(kDecodeMergeSmemBytes <= Traits::kStageBytes, "the merge's scratch fits in one stage");
  int* last = reinterpret_cast<int*>(smem + Traits::kFlagOffset) + 1;  // the word after the bad-page flag
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0) {
    const int arrived = atomicAdd(p.merge_counters + merge, 1) + 1;
    *last = arrived == p.merges[merge].partials;
  }
  __syncthreads();
  if (!*last) return;
  __threadfence();  // the other CTAs' partials, fenced before their arrivals, are visible from here
  decode_merge_cta<typename Traits::Element>(p, merge, static_cast<int>(threadIdx.x), Traits::kThreads, scratch);
  if (threadIdx.x == 0) p.merge_counters[merge] = 0;  // ready for the next call
}

template <class Traits>
__device__ __forceinline__ void decode_cta(const DecodeParams& p, int cta) {
  using Load = DecodeLoad<Traits>;
  using Math = DecodeMainloop<Traits>;
  using QTile = typename Traits::QTile;
  using KTile = typename Traits::KTile;
  constexpr int kStages = Traits::kStages, kBlockN = Traits::kBlockN;
  uint8_t* smem = dynamic_smem();
  int* bad_flag = reinterpret_cast<int*>(smem + Traits::kFlagOffset);
  const uint32_t q_base = smem_address(smem) + Traits::kQOffset;
  auto stage_offset = [](int t) { return Traits::kStageOffset + (t % kStages) * Traits::kStageBytes; };
  const int thread = static_cast<int>(threadIdx.x), warp_row0 = 16 * (thread / 32 / Traits::kKeyWarps);
  const int first = p.cta_items[cta], end = p.cta_items[cta + 1];
  if (thread == 0) *bad_flag = 0;  // first read after several barriers
  const bool bulk = p.bulk_kv != 0;
  auto* bars = reinterpret_cast<uint64_t*>(smem + Traits::kBarrierOffset);  // (kStages) one per stage
  if (bulk) {
    if (thread == 0)
      for (int s = 0; s < kStages; ++s) mbarrier_init_visible(bars + s, Traits::kThreads);
    __syncthreads();
  }

  // Issue side: the next tile to copy (item `issue`, its tile `issue_tile`) and its page ids, read a tile ahead.
  DecodeItemQueue issue(p, first, end);
  while (issue.valid() && issue.tiles() == 0) issue.next(p);  // empty items read nothing
  int issue_tile = 0, issued = 0, groups = 0;
  uint32_t late = 0;                       // bit s: the tile in stage s was issued after its regular group
  bool bad_even = false, bad_odd = false;  // a bad page id in a tile of an even / odd item (counted from first)
  typename Load::TilePages pages{};  // cp.async mode: the page ids of this thread's rows of the next tile
  int32_t bulk_page = 0;            // bulk mode: the page id of this thread's row of the next tile
  auto prefetch_pages = [&] {
    if (!issue.valid()) return;
    if (bulk) bulk_page = Load::bulk_page_of(p, issue.seg, issue.key(issue_tile, kBlockN), thread);
    else pages = Load::pages_of(p, issue.seg, issue.key(issue_tile, kBlockN), thread);
  };
  prefetch_pages();
  DecodeItemQueue work(p, first, end);  // compute side
  auto can_issue = [&](int last_tile) {
    return issue.valid() && issued <= last_tile && issue.index <= work.index + p.item_lookahead;
  };
  auto issue_one = [&] {
    const int t = issued, parity = (issue.index - first) & 1;
    if (issue_tile == 0) Load::q_rows(p, issue.seg, q_base + parity * QTile::kBytes, thread);
    bool bad = false;
    if (bulk) {
      Load::kv_rows_bulk(p, issue.seg, issue.key(issue_tile, kBlockN), bulk_page, smem + stage_offset(t),
                         bars + t % kStages, thread, bad);
    } else {
      const uint32_t k_stage = smem_address(smem) + stage_offset(t);
      Load::kv_tile(p, issue.seg, issue.key(issue_tile, kBlockN), pages, k_stage, k_stage + KTile::kBytes, thread,
                    bad);
    }
    if (parity) bad_odd |= bad;
    else bad_even |= bad;
    const uint32_t bit = 1u << (t % kStages);
    late = groups == t ? late & ~bit : late | bit;
    ++issued;
    if (++issue_tile == issue.tiles()) {
      issue_tile = 0;
      do issue.next(p);
      while (issue.valid() && issue.tiles() == 0);
    }
    prefetch_pages();
  };

#pragma unroll
  for (int j = 0; j < kStages - 1; ++j) {
    if (can_issue(j)) issue_one();
    cp_async_commit();
    ++groups;
  }

  typename Traits::OAcc o;  // (16, kD) f32 per warp
  o.fill(0.f);
  OnlineSoftmax<2> softmax;
  softmax.init();
  for (int t = 0; work.valid(); work.next(p)) {
    const typename Math::ItemMath m(p, work.seg, warp_row0);
    const int parity = (work.index - first) & 1;
    const uint32_t q_smem = q_base + parity * QTile::kBytes;
    for (int i = 0; i < work.tiles(); ++i, ++t) {
      if (issued == t) {  // held back by a short item before this one: copy it now (stage t % kStages is free)
        issue_one();
        cp_async_commit();
        ++groups;
      }
      if (bulk) {
        if (i == 0) cp_async_wait<0>();  // the item's Q
        mbarrier_wait(bars + t % kStages, static_cast<uint32_t>(t / kStages) & 1);
      } else if (late & (1u << (t % kStages))) {
        cp_async_wait<0>();
      } else {
        cp_async_wait<kStages - 2>();
      }
      __syncthreads();
      while (can_issue(t + kStages - 1)) issue_one();
      cp_async_commit();
      ++groups;
      if (m.active)
        Math::tile(p, work.seg, m, work.key(i, kBlockN), q_smem, smem_address(smem) + stage_offset(t), o, softmax);
    }
    __syncthreads();  // every warp done with tile t - 1: its stage (free of tiles in flight) stages the epilogue
    uint8_t* staging = smem + stage_offset(t + kStages - 1);
    DecodeEpilogue<Traits>::store(p, work.seg, work.item, smem, staging, o, softmax, parity ? bad_odd : bad_even);
    if (work.item.merge >= 0) merge_if_last<Traits>(p, work.item.merge, smem, staging);
    if (bulk) fence_shared_for_bulk();  // the staging's writes before later bulk copies into its stage
    __syncthreads();  // the staging and the flags are read: the next item may overwrite them
    if (thread == 0) *bad_flag = 0;
    if (parity) bad_odd = false;
    else bad_even = false;
    o.fill(0.f);
    softmax.init();
  }
  cp_async_wait<0>();  // (nothing is left in flight: every issued tile was computed)
}

}  // namespace omniattn::detail::cuda
