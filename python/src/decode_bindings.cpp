// omniattn._C.decode and omniattn._C.kv_cache_append (include/omniattn/decode.hpp, kv_cache.hpp).
#include <nanobind/nanobind.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>

#include <optional>
#include <string>

#include "bindings.hpp"
#include "dlpack_view.hpp"
#include "omniattn/decode.hpp"
#include "omniattn/kv_cache.hpp"

namespace nb = nanobind;
using namespace nb::literals;

namespace omniattn::python {
namespace {

DecodeSchedule parse_schedule(const std::string& name) {
  if (name == "auto" || name == "automatic") return DecodeSchedule::automatic;
  if (name == "no_split") return DecodeSchedule::no_split;
  if (name == "split_kv") return DecodeSchedule::split_kv;
  if (name == "stream_k") return DecodeSchedule::stream_k;
  throw nb::value_error(
      ("schedule: expected 'auto', 'no_split', 'split_kv' or 'stream_k', given '" + name + "'").c_str());
}

KVCache make_cache(const TensorView& k, const TensorView& v, const TensorView& seq_lens,
                   const std::optional<Array>& block_table, std::optional<TensorView> host_seq_lens,
                   const std::optional<Array>& host_block_table) {
  return KVCache{k, v, to_view(block_table, "block_table"), seq_lens, to_view(host_block_table, "host_block_table"),
                 host_seq_lens};
}

void decode(const Array& q, const Array& k_cache, const Array& v_cache, const Array& seq_lens,
            const std::optional<Array>& block_table, const OutArray& out, const std::optional<OutArray>& lse,
            bool causal, int64_t window_left, int64_t window_right, int64_t sinks, double softcap,
            std::optional<double> scale, const std::optional<Array>& alibi_slopes,
            const std::optional<Array>& sink_logits, const std::string& backend, const std::string& schedule,
            int num_splits, int num_ctas, const std::optional<Array>& host_seq_lens,
            const std::optional<Array>& host_block_table, uintptr_t stream) {
  const AttentionOptions o = make_options(causal, window_left, window_right, sinks, softcap, scale, alibi_slopes,
                                          sink_logits, std::nullopt, std::nullopt, std::nullopt, backend, false,
                                          stream);
  const DecodeConfig config{parse_schedule(schedule), num_splits, num_ctas};
  const TensorView qv = to_view(q, "q");
  const KVCache cache = make_cache(to_view(k_cache, "k_cache"), to_view(v_cache, "v_cache"),
                                   to_view(seq_lens, "cache_seqlens"), block_table,
                                   to_view(host_seq_lens, "host_seq_lens"), host_block_table);
  const DecodeOutputs outs{to_view(out, "out"), to_view(lse, "lse")};
  nb::gil_scoped_release unlocked;
  attention_decode(qv, cache, outs, o, config);
}

void append(const OutArray& k_cache, const OutArray& v_cache, const OutArray& seq_lens, const Array& k,
            const Array& v, const std::optional<Array>& block_table, const std::optional<Array>& rotary_cos,
            const std::optional<Array>& rotary_sin, bool interleaved, const std::optional<OutArray>& q,
            bool advance_lengths, const std::optional<OutArray>& host_seq_lens,
            const std::optional<Array>& host_block_table, uintptr_t stream) {
  // host_seq_lens is advanced with seq_lens (AppendOptions::advance_lengths): the caller passes a writable array.
  const KVCache cache = make_cache(to_view(k_cache, "k_cache"), to_view(v_cache, "v_cache"),
                                   to_view(seq_lens, "cache_seqlens"), block_table,
                                   to_view(host_seq_lens, "host_seq_lens"), host_block_table);
  AppendOptions o;
  if (rotary_cos || rotary_sin) {
    if (!rotary_cos || !rotary_sin) throw nb::value_error("rotary_cos, rotary_sin: expected both or neither");
    o.rotary = Rotary{to_view(*rotary_cos, "rotary_cos"), to_view(*rotary_sin, "rotary_sin"),
                      interleaved ? RotaryStyle::interleaved : RotaryStyle::half_split};
  }
  if (q) o.q = to_view(*q, "q");
  o.advance_lengths = advance_lengths;
  o.cuda_stream = reinterpret_cast<void*>(stream);
  const TensorView kv = to_view(k, "k"), vv = to_view(v, "v");
  nb::gil_scoped_release unlocked;
  kv_cache_append(cache, kv, vv, o);
}

}  // namespace

void bind_decode(nb::module_& m) {
  m.def("decode", &decode, "q"_a, "k_cache"_a, "v_cache"_a, "seq_lens"_a, "block_table"_a.none(), "out"_a,
        "lse"_a.none(), nb::kw_only(), "causal"_a = false, "window_left"_a = -1, "window_right"_a = -1,
        "sinks"_a = 0, "softcap"_a = 0.0, "scale"_a = nb::none(), "alibi_slopes"_a = nb::none(),
        "sink_logits"_a = nb::none(), "backend"_a = "auto", "schedule"_a = "auto", "num_splits"_a = 0,
        "num_ctas"_a = 0, "host_seq_lens"_a = nb::none(), "host_block_table"_a = nb::none(), "stream"_a = 0,
        "Writes out (and lse) of q against the KV cache (attention_decode).");
  m.def("kv_cache_append", &append, "k_cache"_a, "v_cache"_a, "seq_lens"_a, "k"_a, "v"_a,
        "block_table"_a.none(), nb::kw_only(), "rotary_cos"_a = nb::none(), "rotary_sin"_a = nb::none(),
        "interleaved"_a = false, "q"_a = nb::none(), "advance_lengths"_a = true, "host_seq_lens"_a = nb::none(),
        "host_block_table"_a = nb::none(), "stream"_a = 0,
        "Appends k/v at seq_lens (rotating k, and q in place, when rotary tables are given).");
}

}  // namespace omniattn::python
