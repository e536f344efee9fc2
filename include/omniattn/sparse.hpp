#pragma once
/// @file sparse.hpp
/// Static sparse patterns as BlockMasks (mask.hpp), token orders for grids, and token-level attention on a
/// CSR graph. Every generator returns a mask whose full blocks are exactly the blocks where its rule holds
/// for every pair, whose partial blocks carry the rule as the mask's ElementMask, and that lists no block
/// where the rule holds for no pair. Geometry: the mask's batch (rows are repeated over it), heads, token
/// counts and block sizes (64 or 128).
#include <array>
#include <cstdint>
#include <optional>
#include <vector>

#include "omniattn/attention.hpp"
#include "omniattn/mask.hpp"
#include "omniattn/tensor.hpp"

namespace omniattn::sparse {

using Geometry = BlockMask::Geometry;

/// Sliding window relative to the bottom-right diagonal d = i + Sk - Sq: keys in [d - left, d + right]
/// (-1: unbounded on that side). Causal: right = 0; symmetric: left = right.
BlockMask sliding_window(const Geometry& g, int64_t left, int64_t right);
/// StreamingLLM: the first `sinks` keys plus a window of `left` keys before the diagonal, causal.
BlockMask sinks_window(const Geometry& g, int64_t sinks, int64_t left);
/// Prefix-LM: keys j < prefix visible to every query, causal after that.
BlockMask prefix_lm(const Geometry& g, int64_t prefix);
/// Packed documents of the given lengths in one sequence (q_tokens = k_tokens = their sum): each query sees
/// the keys of its own document, causally when `causal`.
BlockMask documents(const Geometry& g, const std::vector<int64_t>& lengths, bool causal);
/// Block-level dilated pattern (self-attention, block_q = block_k): query block qb sees KV block kb when
/// |qb - kb| is a multiple of `dilation` below window_blocks · dilation (kb <= qb when causal, with the
/// diagonal block causal inside).
BlockMask dilated_blocks(const Geometry& g, int64_t window_blocks, int64_t dilation, bool causal);
/// PowerAttention (block level, causal, block_q = block_k): query block qb sees KV blocks qb - δ for δ = 0
/// and every power of two, plus the first `sink_blocks` blocks.
BlockMask power_of_two_blocks(const Geometry& g, int64_t sink_blocks = 0);
/// MoA / MASFormer: one (left, right, sinks) window per mask head (g.heads of them); -1 = unbounded.
BlockMask head_windows(const Geometry& g, const std::vector<std::array<int64_t, 3>>& windows);

/// NATTEN's neighborhood attention on a token grid (grid.kind = neighborhood; kernel, dilation, stride and
/// causality per axis; q_tokens = k_tokens = the grid's tokens). `token_order` (optional): the grid index of
/// the token at each sequence position, e.g. tile_order(), so 2-D/3-D windows fill dense blocks.
BlockMask neighborhood(const Geometry& g, const GridMask& grid, const std::vector<int32_t>& token_order = {});
/// Axial attention: each token sees the tokens of its rows along every axis (grid.kind = axial;
/// grid.causal[a]: only coordinates <= the query's along axis a).
BlockMask axial(const Geometry& g, const GridMask& grid, const std::vector<int32_t>& token_order = {});

/// A tile-shaped order of the grid's tokens (position -> grid index): grouped by dilation group first
/// (tokens of one residue class per axis together), then tiles of `tile` tokens per axis in row-major
/// order, row-major inside a tile (edge tiles are cut, nothing is padded).
std::vector<int32_t> tile_order(const GridMask& grid, const std::array<int64_t, 3>& tile);
/// A Hilbert-curve order of the grid's tokens (2-D or 3-D; any shape: the curve of the enclosing
/// power-of-two cube, skipping points outside the grid), position -> grid index.
std::vector<int32_t> hilbert_order(const GridMask& grid);
/// inverse[order[p]] = p.
std::vector<int32_t> inverse_order(const std::vector<int32_t>& order);
/// Reorders the token axis of a CPU tensor [B, S, H, D] or [S, H, D]: dst[.., p, ..] = src[.., order[p], ..]
/// (to sequence order with order = tile_order(...); back to grid order with its inverse_order).
void permute_tokens(const TensorView& src, const TensorView& dst, const std::vector<int32_t>& order);

/// Token-level sparse attention on a graph: query node i attends to the key nodes
/// col_indices[row_offsets[i] .. row_offsets[i+1]) (strictly increasing). q [Nq, Hq, D], k [Nk, Hkv, D],
/// v [Nk, Hkv, Dv], out [Nq, Hq, Dv], lse f32 [Hq, Nq]; f32/bf16/f16, all tensors on the CPU or all on one CUDA
/// device (the CUDA path validates the graph on the device and synchronizes the call's stream once for it);
/// row_offsets i32 [Nq + 1], col_indices i32 [nnz]. options: softmax_scale and softcap only (and cuda_stream).
/// A node without edges outputs 0, LSE -inf.
void graph_attention_forward(const TensorView& q, const TensorView& k, const TensorView& v,
                             const TensorView& row_offsets, const TensorView& col_indices,
                             const ForwardOutputs& outputs, const AttentionOptions& options = {});
/// Gradients of graph_attention_forward given its O and LSE and dO (dq, dk, dv shaped like q, k, v).
void graph_attention_backward(const TensorView& q, const TensorView& k, const TensorView& v,
                              const TensorView& row_offsets, const TensorView& col_indices, const TensorView& out,
                              const TensorView& lse, const TensorView& dout, const BackwardOutputs& grads,
                              const AttentionOptions& options = {});

}  // namespace omniattn::sparse
