// `omniattn verify`: every backend against the float64 reference on random cases, forward and backward.
// A backend passes a tensor when max|ours - f64| <= 2 * max|naive same precision - f64| + rounding term
// (FlashAttention's rule); elements a backend leaves unwritten are NaN-poisoned and fail.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <chrono>

#include "accuracy.hpp"
#include "commands.hpp"
#include "core/problem.hpp"
#include "reference/reference.hpp"
#include "verify_case.hpp"

namespace omniattn::cli {
namespace {

// Outputs of one implementation on one case.
struct Outputs {
  HostArray out, lse, dq, dk, dv, dsink;
};

Outputs allocate(const VerifyCase& c, const CaseTensors& t, DType dtype) {
  Outputs o;
  o.out = HostArray(dtype, t.out_shape);
  o.lse = HostArray(DType::f32, t.lse_shape);
  o.dq = HostArray(dtype, t.q_shape);
  o.dk = HostArray(dtype, t.k_shape);
  o.dv = HostArray(dtype, t.v_shape);
  if (c.sink_logits) o.dsink = HostArray(DType::f32, {c.hq});
  for (HostArray* a : {&o.out, &o.lse, &o.dq, &o.dk, &o.dv, &o.dsink}) a->fill_nan();
  return o;
}

BackwardOutputs grads_of(const VerifyCase& c, const Outputs& o) {
  return {o.dq.view(), o.dk.view(), o.dv.view(),
          c.sink_logits ? std::optional<TensorView>(o.dsink.view()) : std::nullopt};
}

// Forward of the float64 oracle on float64 copies of the inputs, and of the naive implementation in the
// case's own precision (its error sets the tolerance).
struct ForwardReferences {
  Outputs f64, naive;
};
ForwardReferences run_forward_references(const VerifyCase& c, const CaseTensors& t) {
  ForwardReferences r{allocate(c, t, DType::f64), allocate(c, t, c.dtype)};
  const AttentionOptions o = t.options(Backend::reference);
  attention_forward(t.q.to(DType::f64).view(), t.k.to(DType::f64).view(), t.v.to(DType::f64).view(),
                    {r.f64.out.view(), r.f64.lse.view()}, o);
  detail::reference::forward_lowp(
      detail::make_forward_problem(t.q.view(), t.k.view(), t.v.view(), {r.naive.out.view(), r.naive.lse.view()}, o));
  return r;
}

// Backward of the oracle and of the naive implementation from the same O and LSE (the backend's own), so
// that the comparison measures the backward alone.
void run_backward_references(const VerifyCase& c, const CaseTensors& t, const HostArray& out, const HostArray& lse,
                             Outputs& f64, Outputs& naive) {
  const AttentionOptions o = t.options(Backend::reference);
  attention_backward(t.q.to(DType::f64).view(), t.k.to(DType::f64).view(), t.v.to(DType::f64).view(),
                     out.to(DType::f64).view(), lse.view(), t.dout.to(DType::f64).view(), grads_of(c, f64), o);
  detail::reference::backward_lowp(detail::make_backward_problem(t.q.view(), t.k.view(), t.v.view(), out.view(),
                                                                 lse.view(), t.dout.view(), grads_of(c, naive), o));
}

struct BackendVerdict {
  std::string skipped;  // why the backend did not run the case
  std::vector<ToleranceCheck> checks;
  bool pass() const {
    for (const auto& c : checks)
      if (!c.pass()) return false;
    return true;
  }
};

// Runs `backend` on the case (forward, then backward from its own forward outputs) and checks each tensor.
BackendVerdict check_backend(Backend backend, const VerifyCase& c, const CaseTensors& t, const ForwardReferences& fwd,
                             bool backward) {
  BackendVerdict verdict;
  Outputs ours = allocate(c, t, c.dtype);
  const AttentionOptions o = t.options(backend);
  try {
    attention_forward(t.q.view(), t.k.view(), t.v.view(), {ours.out.view(), ours.lse.view()}, o);
  } catch (const Error& e) {
    if (e.argument() != "options.backend") throw;
    verdict.skipped = "forward: " + e.given();
    return verdict;
  }
  verdict.checks.push_back(check_tolerance("out", ours.out, fwd.naive.out, fwd.f64.out, c.dtype));
  verdict.checks.push_back(check_tolerance("lse", ours.lse, fwd.naive.lse, fwd.f64.lse, DType::f32));
  if (!backward) return verdict;
  try {
    attention_backward(t.q.view(), t.k.view(), t.v.view(), ours.out.view(), ours.lse.view(), t.dout.view(),
                       grads_of(c, ours), o);
  } catch (const Error& e) {
    if (e.argument() != "options.backend") throw;
    verdict.skipped = "backward: " + e.given();
    return verdict;
  }
  Outputs f64 = allocate(c, t, DType::f64), naive = allocate(c, t, c.dtype);
  run_backward_references(c, t, ours.out, ours.lse, f64, naive);
  verdict.checks.push_back(check_tolerance("dq", ours.dq, naive.dq, f64.dq, c.dtype));
  verdict.checks.push_back(check_tolerance("dk", ours.dk, naive.dk, f64.dk, c.dtype));
  verdict.checks.push_back(check_tolerance("dv", ours.dv, naive.dv, f64.dv, c.dtype));
  if (c.sink_logits) verdict.checks.push_back(check_tolerance("dsink", ours.dsink, naive.dsink, f64.dsink, DType::f32));
  return verdict;
}

std::string check_summary(const std::vector<ToleranceCheck>& checks, bool all) {
  std::string s;
  const ToleranceCheck* worst = nullptr;
  for (const auto& c : checks) {
    const bool show = all || !c.pass();
    if (show)
      s += fmt::format(" {}: err {:.2e} bound {:.2e} (naive {:.2e}, max|f64| {:.2e});", c.tensor, c.error, c.bound,
                       c.naive, c.magnitude);
    const double ratio = c.bound > 0 ? c.error / c.bound : (c.error > 0 ? INFINITY : 0);
    if (!worst || ratio > (worst->bound > 0 ? worst->error / worst->bound : 0)) worst = &c;
  }
  if (s.empty() && worst) s = fmt::format(" worst {}: {:.2e} <= {:.2e}", worst->tensor, worst->error, worst->bound);
  if (!s.empty() && s.back() == ';') s.pop_back();
  return s;
}

std::vector<Backend> backends_to_verify(const std::vector<std::string>& names) {
  std::vector<Backend> out;
  for (const BackendStatus& b : list_backends()) {
    const bool named = std::find(names.begin(), names.end(), b.name) != names.end();
    if (names.empty() ? (b.available && b.backend != Backend::reference) : named) out.push_back(b.backend);
  }
  for (const auto& n : names) {
    const bool known = std::any_of(out.begin(), out.end(), [&](Backend b) { return to_string(b) == n; });
    if (!known) throw Error("--backends", "names of backends compiled in (see `omniattn info`)", n);
  }
  return out;
}

DType parse_verify_dtype(const std::string& s) {
  if (s == "f32") return DType::f32;
  if (s == "bf16") return DType::bf16;
  if (s == "f16") return DType::f16;
  throw Error("--dtypes", "f32, bf16 or f16", s);
}

}  // namespace

int run_verify(const VerifyOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  uint64_t seed = options.seed;
  if (seed == 0) seed = std::random_device{}() | (uint64_t{std::random_device{}()} << 32);
  std::vector<DType> dtypes;
  for (const auto& d : options.dtypes.empty() ? std::vector<std::string>{"f32", "bf16", "f16"} : options.dtypes)
    dtypes.push_back(parse_verify_dtype(d));
  const std::vector<Backend> backends = backends_to_verify(options.backends);
  const int cases = options.quick ? std::min(options.cases, 12) : options.cases;
  CaseLimits limits;
  if (options.quick) limits = {240, 1.5e7};
  if (backends.empty()) {
    fmt::print("no backend to verify: only the reference is available in this build\n");
    return 0;
  }
  std::string names;
  for (Backend b : backends) names += (names.empty() ? "" : ", ") + to_string(b);
  fmt::print("omniattn verify: {} against the float64 reference, {} cases, seed {}\n", names, cases, seed);

  int passed = 0, skipped = 0;
  std::vector<std::string> failures;
  for (int i = 0; i < cases; ++i) {
    if (options.only >= 0 && i != options.only) continue;
    const VerifyCase c = random_case(i, seed, dtypes, limits);
    const CaseTensors t = make_tensors(c);
    const bool backward = !options.forward_only;
    const ForwardReferences fwd = run_forward_references(c, t);
    for (Backend b : backends) {
      const BackendVerdict v = check_backend(b, c, t, fwd, backward);
      const std::string name = fmt::format("case {} ({} {})", i, backward ? "fwd+bwd" : "fwd", c.describe());
      if (!v.skipped.empty()) {
        ++skipped;
        fmt::print("{:<10} SKIP  {}: {}\n", to_string(b), name, v.skipped);
      } else if (v.pass()) {
        ++passed;
        fmt::print("{:<10} PASS  {} |{}\n", to_string(b), name, check_summary(v.checks, options.verbose));
      } else {
        failures.push_back(fmt::format("{} on {}", name, to_string(b)));
        fmt::print("{:<10} FAIL  {} |{}\n", to_string(b), name, check_summary(v.checks, false));
      }
      std::fflush(stdout);
    }
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  fmt::print("{} passed, {} failed, {} skipped (backend refused) in {:.1f} s\n", passed, failures.size(), skipped,
             seconds);
  if (failures.empty()) return 0;
  for (const auto& f : failures) fmt::print(stderr, "FAILED: {}\n", f);
  std::string flags = options.quick ? " --quick" : "";
  if (!options.dtypes.empty()) flags += fmt::format(" --dtypes {}", fmt::join(options.dtypes, ","));
  if (options.forward_only) flags += " --forward-only";
  fmt::print(stderr, "replay one case: omniattn verify --seed {} --cases {} --only N{}\n", seed, cases, flags);
  return 1;
}

}  // namespace omniattn::cli
