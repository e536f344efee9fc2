#pragma once
// Host emulation of bulk_copy.cuh (see emulation.hpp). Stricter than the hardware: a phase's bulk copies land only
// when a thread waits for the phase and every arrival of it is in (then all at once), so a reader that does not wait
// for the phase (or waits for the wrong parity) reads garbage, and a thread that does not arrive deadlocks.
#include <cstdint>
#include <cstring>

#include "cuda/common/emulation.hpp"

namespace omniattn::detail::cuda {

namespace emu_bulk {
inline emu::Mbarrier& state(const uint64_t* bar) {
  auto it = emu::cta()->mbarriers.find(bar);
  if (it == emu::cta()->mbarriers.end()) emu::fail("mbarrier used before mbarrier_init");
  return it->second;
}
/// Lands the phase's copies and completes it once every arrival is in and no byte is missing.
inline void try_complete(emu::Mbarrier& m) {
  if (m.arrived < m.count) return;
  for (const emu::BulkCopy& c : m.copies) {
    std::memcpy(c.dst, c.src, c.bytes);
    m.tx -= c.bytes;
  }
  m.copies.clear();
  if (m.tx != 0) return;  // a copy the phase expects was not issued yet
  m.arrived = 0;
  ++m.phase.generation;
}
/// After an arrival or a copy: completes the phase only if a thread already waits for it.
inline void progress(emu::Mbarrier& m) {
  if (m.waiters > 0) try_complete(m);
}
}  // namespace emu_bulk

inline void mbarrier_init_visible(uint64_t* bar, uint32_t count) {
  emu::smem_at(static_cast<uint32_t>(reinterpret_cast<uint8_t*>(bar) - emu::cta()->smem.data()), 8, 8,
               "mbarrier: misaligned or outside shared memory");
  emu::Mbarrier& m = emu::cta()->mbarriers[bar];
  m = emu::Mbarrier{};
  m.count = static_cast<int>(count);
}
inline void mbarrier_wait(uint64_t* bar, uint32_t parity) {
  emu::Mbarrier& m = emu_bulk::state(bar);
  if ((m.phase.generation & 1) != parity) return;  // the phase of this parity has completed
  emu_bulk::try_complete(m);
  if ((m.phase.generation & 1) != parity) return;
  emu::Fiber& f = *emu::current();
  ++m.waiters;
  f.waiting_on = &m.phase;
  f.waiting_generation = m.phase.generation;
  emu::yield();  // resumed once the phase completes (or reported as a deadlock)
  f.waiting_on = nullptr;
  --m.waiters;
}
inline void mbarrier_expect_bytes(uint64_t* bar, uint32_t bytes) {
  emu::Mbarrier& m = emu_bulk::state(bar);
  m.tx += bytes;
  ++m.arrived;
  if (m.arrived > m.count) emu::fail("mbarrier: more arrivals than its count");
  emu_bulk::progress(m);
}
inline void mbarrier_arrive(uint64_t* bar) { mbarrier_expect_bytes(bar, 0); }
inline void fence_shared_for_bulk() {}
inline void bulk_load(void* smem_dst, const void* global_src, uint32_t bytes, uint64_t* bar) {
  const auto dst = static_cast<uint32_t>(static_cast<uint8_t*>(smem_dst) - emu::cta()->smem.data());
  emu::smem_at(dst, bytes, 16, "bulk copy: shared destination misaligned or out of bounds");
  if (bytes % 16 != 0 || reinterpret_cast<uintptr_t>(global_src) % 16 != 0)
    emu::fail("bulk copy: size or global source not 16-byte aligned");
  emu::Mbarrier& m = emu_bulk::state(bar);
  m.copies.push_back({static_cast<uint8_t*>(smem_dst), global_src, bytes});
  emu_bulk::progress(m);
}

}  // namespace omniattn::detail::cuda
