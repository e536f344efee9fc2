// options.block_mask against the call: geometry and device, then every index (CUDA masks are copied to the
// host for that), then the raw-pointer form the kernels read.
#include <fmt/format.h>

#include <algorithm>

#include "core/problem.hpp"
#include "core/validate.hpp"
#include "sparse/mask_checks.hpp"

namespace omniattn::detail {
namespace {

constexpr const char* kName = "options.block_mask";

// Host copies of a CUDA view's arrays, and a CPU view over them (for validation only).
struct HostShadow {
  std::vector<std::vector<int32_t>> storage;
  BlockMaskView view;

  TensorView copy(const TensorView& t, void* stream) {
    std::vector<int32_t> host(static_cast<size_t>(std::max<int64_t>(t.numel(), 1)));
    if (t.numel() > 0) {
      OMNI_REQUIRE(g_device_to_host != nullptr, kName, "tensors on the CPU (this build has no CUDA)", to_string(t.device));
      g_device_to_host(host.data(), t.data, t.numel() * 4, t.device.index, stream);
    }
    storage.push_back(std::move(host));
    TensorView h = t;
    h.data = storage.back().data();
    h.device = Device::cpu();
    return h;
  }
  I32Array copy(const I32Array& a, Device device, void* stream) {
    if (a.empty()) return a;
    TensorView t = TensorView::contiguous(const_cast<int32_t*>(a.data), DType::i32, {a.size}, device);
    return {copy(t, stream).ptr<const int32_t>(), a.size};
  }
  HostShadow(const BlockMaskView& m, void* stream) : view(m) {
    storage.reserve(17);
    for (BlockList* l : {&view.kv_partial, &view.kv_full, &view.q_partial, &view.q_full}) {
      // Shapes and dtypes first (a view's declared sizes decide how much is copied).
      for (auto [t, field] : {std::pair{&l->num_blocks, "num_blocks"}, {&l->offsets, "offsets"}, {&l->indices, "indices"}}) {
        require_defined(*t, kName);
        require_dtype(*t, fmt::format("{}.{}", kName, field).c_str(), DType::i32);
        require_device(*t, fmt::format("{}.{}", kName, field).c_str(), m.device());
        *t = copy(*t, stream);
      }
    }
    const Device dev = m.device();
    view.element.head_windows = copy(m.element.head_windows, dev, stream);
    view.element.q_document = copy(m.element.q_document, dev, stream);
    view.element.k_document = copy(m.element.k_document, dev, stream);
    view.element.token_order = copy(m.element.token_order, dev, stream);
    view.element.grid_table = copy(m.element.grid_table, dev, stream);
  }
};

BlockRows rows_of(const BlockList& l, int64_t heads, int64_t rows) {
  return {l.offsets.ptr<const int32_t>(), l.indices.ptr<const int32_t>(), heads, rows};
}

}  // namespace

int SparseMask::block_kind(int64_t b, int64_t h, int64_t i, int64_t j) const {
  const int64_t mb = mask_batch(b), mh = mask_head(h), qb = i / block_q;
  const int32_t kb = static_cast<int32_t>(j / block_k);
  for (int kind = 1; kind >= 0; --kind) {
    const int32_t *first = kv[kind].begin(mb, mh, qb), *last = kv[kind].end(mb, mh, qb);
    if (std::binary_search(first, last, kb)) return kind + 1;
  }
  return 0;
}

void fill_sparse(Problem& p, const AttentionOptions& o) {
  if (!o.block_mask) return;
  const BlockMaskView& m = *o.block_mask;
  OMNI_REQUIRE(m.device() == p.device, std::string(kName) + ".kv_partial.offsets", "device " + to_string(p.device),
          to_string(m.device()));
  OMNI_REQUIRE(m.batch == 1 || m.batch == p.batch, std::string(kName) + ".batch", fmt::format("1 or {} (B)", p.batch),
          std::to_string(m.batch));
  OMNI_REQUIRE(m.heads == 1 || m.heads == p.hkv || m.heads == p.hq, std::string(kName) + ".heads",
          fmt::format("1, {} (Hkv) or {} (Hq)", p.hkv, p.hq), std::to_string(m.heads));
  int64_t k_stored = 0;
  for (int64_t s : p.k_stored) k_stored = std::max(k_stored, s);
  OMNI_REQUIRE(m.q_tokens == p.max_q_len, std::string(kName) + ".q_tokens",
          fmt::format("{} (the longest query sequence)", p.max_q_len), std::to_string(m.q_tokens));
  OMNI_REQUIRE(m.k_tokens == k_stored, std::string(kName) + ".k_tokens",
          fmt::format("{} (the longest key sequence)", k_stored), std::to_string(m.k_tokens));
  SparseMask s;
  if (m.device().is_cpu()) {
    validate_block_mask(m, kName);
    s.kv_block_load = kv_block_load(m);
  } else if (!m.validated) {  // DeviceBlockMask views were validated at upload
    const HostShadow shadow(m, p.stream);
    validate_block_mask(shadow.view, kName);
    s.kv_block_load = kv_block_load(shadow.view);
  } else if (!m.host_kv_load.empty()) {
    OMNI_REQUIRE(m.host_kv_load.size == m.k_blocks(), std::string(kName) + ".host_kv_load",
            fmt::format("{} entries (k_blocks)", m.k_blocks()), std::to_string(m.host_kv_load.size));
    s.kv_block_load.assign(m.host_kv_load.data, m.host_kv_load.data + m.host_kv_load.size);
  }
  s.batch = m.batch;
  s.heads = m.heads;
  s.hq = p.hq;
  s.block_q = m.block_q;
  s.block_k = m.block_k;
  s.q_blocks = m.q_blocks();
  s.k_blocks = m.k_blocks();
  s.kv[0] = rows_of(m.kv_partial, m.heads, s.q_blocks);
  s.kv[1] = rows_of(m.kv_full, m.heads, s.q_blocks);
  s.q[0] = rows_of(m.q_partial, m.heads, s.k_blocks);
  s.q[1] = rows_of(m.q_full, m.heads, s.k_blocks);
  s.element = m.element;
  if (m.host_element_mask) s.host_element_mask = &m.host_element_mask;
  p.sparse = s;
}

}  // namespace omniattn::detail
