// One benchmark case, end to end. The FLOP count is the harness's one formula: 2 flops per multiply-add of
// each matmul over the (query, key) pairs the mask leaves visible:
//   forward  4·pairs·D            (S = Q·Kᵀ and O = P·V; with Dv ≠ D: 2·pairs·(D + Dv))
//   backward 2·pairs·(3·D + 2·Dv)  (S recomputed, dP = dO·Vᵀ, dV = Pᵀ·dO, dQ = dS·K, dK = dSᵀ·Q) = 2.5 × forward
// so a square causal problem counts about half the pairs of a full one.
// Accuracy: the float64 reference runs on the last `check_rows` query rows with all keys. Causal and windows
// are aligned bottom-right, so those rows see exactly the keys they see in the full problem; comparing our
// last rows with it measures our error at a fraction of the reference's cost.
#include "bench_case.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <vector>

#include "accuracy.hpp"
#include "core/problem.hpp"
#include "device_array.hpp"

namespace omniattn::cli {

AttentionOptions BenchCase::options() const {
  AttentionOptions o;
  if (mask == "causal") {
    o.causal = true;
  } else if (mask == "window") {
    o.causal = true;
    o.window_left = window;
  } else if (mask != "none") {
    throw Error("--masks", "none, causal or window", mask);
  }
  return o;
}

std::string BenchCase::name() const {
  return fmt::format("{} {} {} B{} H{}/{} S{}x{} D{}{}", op, mask == "window" ? fmt::format("window{}", window) : mask,
                     to_string(dtype), batch, hq, hkv, sq, sk, d, dv == d ? "" : fmt::format("/{}", dv));
}

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Median wall time in ms of `call` (each run waits for the device), after `warmup` untimed runs.
template <class Call>
double time_median_ms(const TimingSettings& s, Call&& call) {
  const int total = s.warmup + s.repeats;
  std::vector<double> times;
  for (int i = 0; i < total; ++i) {
    if (s.progress) s.progress(s.progress_context, i, total);
    synchronize(s.device);
    const auto t0 = std::chrono::steady_clock::now();
    call();
    synchronize(s.device);
    const auto t1 = std::chrono::steady_clock::now();
    if (i >= s.warmup) times.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
  }
  return median(std::move(times));
}

// The backend that would run this forward call, or why none but the reference would.
std::string chosen_forward_backend(const TensorView& q, const TensorView& k, const TensorView& v,
                                   const ForwardOutputs& outs, const AttentionOptions& o, std::string& refusals) {
  for (const auto& [backend, why] : explain_forward(q, k, v, outs, o)) {
    if (o.backend != Backend::automatic && backend != o.backend) continue;
    if (!why) return to_string(backend);
    refusals += fmt::format("{}{}: {}", refusals.empty() ? "" : "; ", to_string(backend), *why);
  }
  return "";
}

struct Inputs {
  HostArray q, k, v, dout;  // host copies: the reference reads these
};

// Float64 forward of the last `rows` query rows of every sequence (all keys), and optionally their dQ.
struct SliceReference {
  HostArray out, dq;
};
SliceReference reference_on_last_rows(const BenchCase& c, const Inputs& in, int64_t rows, bool backward) {
  AttentionOptions o = c.options();
  o.backend = Backend::reference;
  const HostArray q = in.q.slice(1, c.sq - rows, rows).to(DType::f64);
  const HostArray k = in.k.to(DType::f64), v = in.v.to(DType::f64);
  SliceReference ref;
  ref.out = HostArray(DType::f64, {c.batch, rows, c.hq, c.dv});
  HostArray lse(DType::f32, {c.batch, c.hq, rows});
  attention_forward(q.view(), k.view(), v.view(), {ref.out.view(), lse.view()}, o);
  if (backward) {
    const HostArray dout = in.dout.slice(1, c.sq - rows, rows).to(DType::f64);
    ref.dq = HostArray(DType::f64, q.shape());
    HostArray dk(DType::f64, k.shape()), dv(DType::f64, v.shape());  // partial sums: not compared
    attention_backward(q.view(), k.view(), v.view(), ref.out.view(), lse.view(), dout.view(),
                       {ref.dq.view(), dk.view(), dv.view(), std::nullopt}, o);
  }
  return ref;
}

}  // namespace

BenchResult run_case(const BenchCase& c, const TimingSettings& s) {
  BenchResult r;
  AttentionOptions o = c.options();
  o.backend = s.backend;
  std::mt19937_64 gen(s.seed);
  Inputs in;
  in.q = HostArray(c.dtype, {c.batch, c.sq, c.hq, c.d});
  in.k = HostArray(c.dtype, {c.batch, c.sk, c.hkv, c.d});
  in.v = HostArray(c.dtype, {c.batch, c.sk, c.hkv, c.dv});
  in.q.fill_normal(gen);
  in.k.fill_normal(gen);
  in.v.fill_normal(gen);
  const DeviceArray q(in.q, s.device), k(in.k, s.device), v(in.v, s.device);
  const DeviceArray out(HostArray(c.dtype, {c.batch, c.sq, c.hq, c.dv}), s.device);
  const DeviceArray lse(HostArray(DType::f32, {c.batch, c.hq, c.sq}), s.device);
  const ForwardOutputs fwd_outs{out.view(), lse.view()};

  const auto problem = detail::make_forward_problem(q.view(), k.view(), v.view(), fwd_outs, o);
  const double pairs = problem.visible_pairs();  // summed over batch and heads
  r.density = pairs / (static_cast<double>(c.batch * c.hq) * static_cast<double>(c.sq * c.sk));

  std::string refusals;
  r.backend = chosen_forward_backend(q.view(), k.view(), v.view(), fwd_outs, o, refusals);
  if (r.backend.empty()) {
    r.skipped = "no backend runs it: " + refusals;
    return r;
  }
  if (r.backend == "reference" && !s.allow_reference) {
    r.skipped = "only the (slow) reference backend runs it: " + refusals;
    return r;
  }

  const double esize = static_cast<double>(dtype_size(c.dtype));
  const double q_el = static_cast<double>(in.q.numel()), k_el = static_cast<double>(in.k.numel()),
               v_el = static_cast<double>(in.v.numel()), o_el = static_cast<double>(c.batch * c.sq * c.hq * c.dv),
               lse_bytes = 4.0 * static_cast<double>(c.batch * c.hq * c.sq);
  double flops = 0, bytes = 0;
  const int64_t rows = std::min(s.check_rows, c.sq);

  if (c.op == "fwd") {
    r.ms = time_median_ms(s, [&] { attention_forward(q.view(), k.view(), v.view(), fwd_outs, o); });
    flops = 2.0 * pairs * static_cast<double>(c.d + c.dv);
    bytes = esize * (q_el + k_el + v_el + o_el) + lse_bytes;
    if (rows > 0) {
      const SliceReference ref = reference_on_last_rows(c, in, rows, false);
      r.rel_err = relative_error(out.download().slice(1, c.sq - rows, rows), ref.out);
    }
  } else if (c.op == "bwd") {
    in.dout = HostArray(c.dtype, {c.batch, c.sq, c.hq, c.dv});
    in.dout.fill_normal(gen);
    const DeviceArray dout(in.dout, s.device);
    const DeviceArray dq(HostArray(c.dtype, in.q.shape()), s.device), dk(HostArray(c.dtype, in.k.shape()), s.device),
        dv(HostArray(c.dtype, in.v.shape()), s.device);
    attention_forward(q.view(), k.view(), v.view(), fwd_outs, o);
    const BackwardOutputs grads{dq.view(), dk.view(), dv.view(), std::nullopt};
    try {
      r.ms = time_median_ms(
          s, [&] { attention_backward(q.view(), k.view(), v.view(), out.view(), lse.view(), dout.view(), grads, o); });
    } catch (const Error& e) {
      if (e.argument() != "options.backend") throw;
      r.skipped = "no backend runs its backward: " + e.given();
      return r;
    }
    flops = 2.0 * pairs * static_cast<double>(3 * c.d + 2 * c.dv);
    bytes = esize * 2 * (q_el + k_el + v_el + o_el) + lse_bytes;
    if (rows > 0) {
      const SliceReference ref = reference_on_last_rows(c, in, rows, true);
      r.rel_err = relative_error(dq.download().slice(1, c.sq - rows, rows), ref.dq);
    }
  } else {
    throw Error("--ops", "fwd or bwd", c.op);
  }
  r.tflops = flops / (r.ms * 1e-3) / 1e12;
  r.tbps = bytes / (r.ms * 1e-3) / 1e12;
  return r;
}

}  // namespace omniattn::cli
