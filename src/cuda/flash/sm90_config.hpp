#pragma once
// Tuning table of the sm_90a forward kernel (TMA + wgmma + warp specialization): one row per supported
// (head dim, value head dim). Host code (can_run, dispatch, launch) and the kernels read the same table.
//
// A CTA is 1 producer warpgroup (one thread issues every TMA load) + `consumers` warpgroups, each owning 64
// query rows: block_m = 64 * consumers. Per consumer thread (f32 accumulators): O = dv / 2 registers,
// S = block_n / 2, P (16-bit) = block_n / 4. setmaxnreg moves the producer's registers to the consumers within
// the CTA's launch allocation: 128 * (producer_regs + consumers * consumer_regs) <= threads * (65536 / threads,
// rounded down to 8) (a claim beyond what was released never returns).
// Shared memory: Q (block_m x d) + stages x (K: block_n x d + V: block_n x dv) [+ O: block_m x dv], 16-bit,
// 128-byte swizzled boxes of 64 columns.
#include <cstdint>

namespace omniattn::detail::cuda {

struct Sm90Tuning {
  int d = 0;              // head dim of Q and K (multiple of 64: whole 128-byte swizzle boxes)
  int dv = 0;             // head dim of V and O (multiple of 64, <= d)
  int block_n = 0;        // keys per KV tile (the N of S = Q K^T: 64, 128 or 256)
  int consumers = 0;      // consumer warpgroups (64 query rows each)
  int stages = 0;         // K/V buffers in the TMA pipeline
  int producer_regs = 0;  // setmaxnreg of the producer warpgroup
  int consumer_regs = 0;  // setmaxnreg of each consumer warpgroup
  bool pingpong = false;  // consumers take turns issuing their GEMMs, so one's softmax hides under another's GEMMs
  bool persistent = false;  // dynamic persistent schedule: one CTA per SM draws tiles (else one CTA per tile)
  int l2_section_mb = 0;    // persistent: MB of K/V that the (head, sequence) pairs of one scheduler section share
  bool o_through_smem = false;  // epilogue: O staged in shared memory and written by TMA stores (else from registers)
  // A row that serves the block-sparse calls of its (d, dv) and only those (the other row then serves only dense
  // calls): its KV tile divides the 64- and 128-key mask blocks where the dense row's does not.
  bool sparse_row = false;

  constexpr int block_m() const { return 64 * consumers; }
  constexpr int threads() const { return 128 * (consumers + 1); }
  constexpr int64_t o_bytes() const { return o_through_smem ? 2LL * block_m() * dv : 0; }
  constexpr int64_t tile_bytes() const {  // Q + K/V stages + O staging
    return 2LL * (block_m() * d + stages * block_n * (d + dv)) + o_bytes();
  }
  // mbarriers (q_full, q_empty, 4 per stage), then the block-sparse hand-off: a tile's KV count + one
  // (key, partial) pair per stage (Sm90Barriers).
  constexpr int64_t barrier_bytes() const { return 8LL * (2 + 4 * stages) + 8 + 8LL * stages; }
  constexpr int64_t smem_bytes() const { return tile_bytes() + barrier_bytes() + 1024; }  // + alignment slack
};

// Why these shapes (FlashAttention-3's choices, checked against the budgets above):
//  - d = 64: 3 consumers (192 rows): S and O are small, more rows amortize each K/V tile; 4 stages.
//  - d = 128: 2 consumers x 64 rows, 128-key tiles: O 64 + S 64 + P 32 registers per thread, 2 stages
//    (160 KB of shared memory).
//  - d = 256: O alone is 128 registers, so narrow KV tiles: 80 keys (S 40, P 20 registers; FlashAttention-3's
//    choice), 2 stages, 224 KB. 80 divides no mask block: block-sparse calls take the 64-key row (S 32; 192 KB),
//    whose kernel is instantiated apart (sm90_instantiate_d256_sparse.cu).
//  - producer_regs: the producer's loop (tile tickets, tile geometry, the K/V ring) spills at 24 registers
//    (ptxas allocates the code after setmaxnreg within its limit); 40 (32 at d = 64) and 232 for the consumers
//    compile without spills at d = 64 and 128 (d = 256: 60 B at 232, against 320 B in the producer at 24).
//  - o_through_smem: the epilogue writes O into shared memory and one thread per consumer stores it with TMA (whole
//    128-byte lines, asynchronous: the consumer goes on to its next tile). d = 256 has no room for it (192 KB of
//    tiles + 64 KB of O): O goes from registers. d = 128 measured +2-15% with it (docs/kernels.md, step 9);
//    d = 64 compiles with it (32 B of spills with both paths); on for log step 10's A/B (OMNIATTN_SM90_O_STORE).
//  - persistent: the dynamic schedule (atomic tickets, Sm90TileScheduler): the next tile's loads run under the
//    current tile's epilogue and causal tiles balance themselves (a static round-robin schedule lost to one CTA
//    per tile: docs/kernels.md, log steps 3-4). Sections of 8 MB of K/V: tiles of the heads whose K/V fit go
//    heaviest first together; long sequences get one head per section (its tiles share K/V in L2).
// clang-format off
inline constexpr Sm90Tuning kSm90TuningTable[] = {
    // d,  dv, block_n, consumers, stages, producer_regs, consumer_regs, pingpong, persistent, l2_section_mb, o_through_smem, sparse_row
    {  64,  64,   128,      3,        4,         32,           160,        true,     true,       8,            true,           false},
    { 128, 128,   128,      2,        2,         40,           232,        true,     true,       8,            true,           false},
    { 256, 256,    80,      2,        2,         40,           232,        true,     true,       8,            false,          false},
    { 256, 256,    64,      2,        2,         40,           232,        true,     true,       8,            false,          true},
};
// clang-format on

/// Which schedule the forward uses: the tuning table's (`table`), or one forced process-wide (tests, experiments;
/// the environment variable OMNIATTN_SM90_SCHEDULE=persistent|per_tile sets the initial value).
enum class Sm90Schedule { table, per_tile, persistent };
void set_sm90_schedule(Sm90Schedule schedule);
Sm90Schedule sm90_schedule_override();

/// Whether block-sparse calls of (d, dv) have their own row (instantiated apart from the dense one).
constexpr bool sm90_has_sparse_row(int d, int dv) {
  for (const Sm90Tuning& t : kSm90TuningTable)
    if (t.d == d && t.dv == dv && t.sparse_row) return true;
  return false;
}

/// The row of (d, dv) for block-sparse calls (`sparse`) or dense ones; d == 0 when there is none.
constexpr Sm90Tuning sm90_tuning(int d, int dv, bool sparse = false) {
  const bool want_sparse_row = sparse && sm90_has_sparse_row(d, dv);
  for (const Sm90Tuning& t : kSm90TuningTable)
    if (t.d == d && t.dv == dv && t.sparse_row == want_sparse_row) return t;
  return Sm90Tuning{};
}

constexpr bool sm90_tuning_is_valid(const Sm90Tuning& t) {
  return t.d % 64 == 0 && t.dv % 64 == 0 && t.dv <= t.d && t.d <= 256 &&
         (t.block_n == 64 || t.block_n == 80 || t.block_n == 128 || t.block_n == 256) &&
         (!t.sparse_row || t.block_n == 64) && t.consumers >= 1 && t.consumers <= 3 &&
         t.stages >= 1 && t.producer_regs % 8 == 0 && t.consumer_regs % 8 == 0 &&
         128 * (t.producer_regs + t.consumers * t.consumer_regs) <= t.threads() * (65536 / t.threads() / 8 * 8) &&
         t.smem_bytes() <= 227 * 1024;
}

constexpr bool all_sm90_tunings_valid() {
  for (const Sm90Tuning& t : kSm90TuningTable)
    if (!sm90_tuning_is_valid(t)) return false;
  return true;
}
static_assert(all_sm90_tunings_valid(), "a row of kSm90TuningTable breaks a tiling or budget rule");

}  // namespace omniattn::detail::cuda
