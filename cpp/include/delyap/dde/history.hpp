// History of a DDE solution as a ring buffer of anchors (t_i, x_i, f_i) and, per interval
// [t_i, t_{i+1}], polynomial coefficients c_{i,m} such that
//     x(t_i + θ h_i) = x_i + h_i Σ_m c_{i,m} θ^(m+1),   h_i = t_{i+1} − t_i,  θ ∈ [0, 1].
// Cubic Hermite data (3 coefficients) or a method's own continuous extension (DP5: 4) share
// this form, so reading the history is one Horner evaluation whatever the method.
// Memory is bounded by the delay window: anchors older than t − τmax are evicted.
// A repeated time (zero-length interval) encodes a jump, e.g. history ≠ y0 at t0.
// Storage may be interleaved with other trajectories' (InterleavedHistoryView: element e of this
// history is at p[e * stride]), so a device ensemble stores slot s of all trajectories side by
// side (structure of arrays) and a warp's reads of the same slot coalesce. Host buffers are
// contiguous (HistoryView), with the stride a compile-time 1 so their reads cost nothing extra.
// One large trajectory keeps its history in an executor's memory (HistoryViewT<ContiguousLayout,
// Exec>: a GPU thread per component, thread d of a read touching component d of every row).
#pragma once

#include "delyap/common/config.hpp"
#include "delyap/common/exec.hpp"
#include "delyap/dde/step_kernels.hpp"

namespace delyap {

// x(t_i + θh) = x_i + h Σ_m c_m θ^(m+1) from an interval's coefficients c (n_coef × dim);
// x and c are read with element stride `stride`, out is contiguous.
DELYAP_HD inline void eval_step_polynomial(const double* x, const double* c, int n_coef, int dim,
                                           double h, double theta, double* out,
                                           Index stride = 1) {
  for (int d = 0; d < dim; ++d)
    out[d] = polynomial_component(x, c, n_coef, dim, h, theta, d, stride);
}

// Element strides of a history's storage: contiguous (1), or a run-time stride.
struct ContiguousLayout {
  DELYAP_HD static constexpr Index stride() { return 1; }
};
struct InterleavedLayout {
  Index stride_ = 1;
  DELYAP_HD Index stride() const { return stride_; }
};

// The ring of anchor times and its bookkeeping, shared by every history view: slot i of the
// window, eviction, and where a read at time s falls.
template <class Layout>
struct HistoryRing : Layout {
  using Layout::stride;
  DELYAP_HD Layout layout() const { return *this; }  // the strides alone, for the loop functors
  double* t = nullptr;  // [cap], element stride stride()
  Index cap = 0;        // a power of two
  Index head = 0;
  Index size = 0;

  DELYAP_HD Index slot(Index i) const { return (head + i) & (cap - 1); }
  DELYAP_HD double time(Index i) const { return t[slot(i) * stride()]; }
  DELYAP_HD double last_time() const { return time(size - 1); }
  DELYAP_HD void pop_back() { --size; }

  // Drops anchors that no read at time ≥ t_min can need (keeps the interval containing t_min).
  DELYAP_HD void evict_before(double t_min) {
    while (size > 2 && time(1) <= t_min) {
      head = (head + 1) & (cap - 1);
      --size;
    }
  }

  // The interval that a read at time s uses. At an anchor time both neighbours contain s, and at
  // a jump (a repeated time) they disagree: a read that integrates forward from s takes the
  // right-hand limit (largest i ≤ size − 2 with t_i ≤ s), a read at the end of the lagged
  // window of a step (`left`) the left-hand limit (smallest i with t_{i+1} ≥ s). Both are the
  // first i ≤ size − 2 that is `past` s (or size − 2 when none is), a monotone predicate.
  // `hint`: where a search should start, e.g. the interval the same delay read last time (a
  // read cursor). The stages of a step move a lagged read by about one interval, so checking
  // the hint and a few neighbours finds it without the binary search; the hint is only a start,
  // so a stale one (eviction, growth, a rejected step, a provisional interval popped) costs a
  // search and never changes the answer.
  DELYAP_HD bool past(Index i, double s, bool left) const {
    const double end = time(i + 1);
    return left ? end >= s : end > s;
  }
  DELYAP_HD Index find_interval(double s, bool left = false, Index hint = -1) const {
    const Index last = size - 2;
    Index lo = 0, hi = last;  // the answer is in [lo, hi]; hi counts as past
    if (hint >= 0 && hint <= last) {
      Index i = hint;
      if (i == last || past(i, s, left)) {  // the answer is i or earlier
        for (int n = 0; n < kCursorScan; ++n, --i)
          if (i == 0 || !past(i - 1, s, left)) return i;
        hi = i;
      } else {  // later than i
        for (int n = 0; n < kCursorScan; ++n)
          if (++i == last || past(i, s, left)) return i;
        lo = i + 1;
      }
    }
    while (lo < hi) {
      const Index mid = (lo + hi) >> 1;
      if (past(mid, s, left)) hi = mid; else lo = mid + 1;
    }
    return lo;
  }
  static constexpr int kCursorScan = 3;  // neighbours of a hint checked before searching

  // How far a read may sit from a jump and still be a read *at* it: the lag of a step that
  // landed on d + τ is fl(fl(d + τ) − τ), an ulp or so off d, and a step that landed on a
  // crossing of a state-dependent lag is a root-finding tolerance (1e-12·(1 + |t| + h)) off.
  DELYAP_HD static double jump_tolerance(double s) {
    return 1e-11 * (1.0 + (s < 0 ? -s : s));
  }

  enum class Read { Interval, PastEnd, TooOld };
  // Where a read at s falls: past the last anchor (the first iterate of a step longer than the
  // delay extrapolates there), older than the window (a delay beyond the declared maximum), or
  // interval *i (s is clamped onto the window's start when a rounding error short of it). A
  // read within jump_tolerance of a jump is moved onto it and takes the side `left` asks for,
  // whichever side rounding put it on. `cursor` (optional): a search hint (find_interval), and
  // where the interval found is left for the next read.
  DELYAP_HD Read locate(double* s, Index* i, bool left = false, Index* cursor = nullptr) const {
    const double t_last = last_time();
    const double tol = jump_tolerance(*s);
    if (*s > t_last) {
      // A left read a rounding error past the last anchor (a lag that lands on t0 during the
      // first step, with y0 ≠ history) is the left limit there, not an extrapolation.
      if (!left || *s - t_last > tol) return Read::PastEnd;
      *s = t_last;
    }
    const double t_first = time(0);
    if (*s < t_first) {
      const double slack = 1e-12 * (1.0 + (t_first < 0 ? -t_first : t_first));
      if (*s < t_first - slack) return Read::TooOld;
      *s = t_first;
    }
    Index k = find_interval(*s, left, cursor ? *cursor : -1);
    // A jump at d is a zero-length interval (d, d). Left reads want the interval ending at its
    // first anchor, right reads the one starting at its second.
    if (left && k >= 2 && time(k - 1) == time(k) && *s - time(k) <= tol) {
      *s = time(k);  // just past a jump: its left limit
      k -= 2;
    } else if (!left && k + 2 < size && time(k + 1) == time(k + 2) && time(k + 1) - *s <= tol) {
      *s = time(k + 1);  // just short of a jump: its right limit (the zero-length interval)
      k += 1;
    }
    if (cursor) *cursor = k;
    *i = k;
    return Read::Interval;
  }
};

// Non-owning view over the buffer storage. Its per-component loops run on `exec`
// (common/exec.hpp): SerialExec for the CPU solvers and the one-thread-per-trajectory GPU
// kernels (the same code on host and device; the loops compile to plain ones), or an executor
// with memory of its own for one large trajectory (a GPU thread per component): x, f and coef
// then live in the executor's memory and the anchor times t on the host, where the driver's
// step control and the interval search read them. Pointers handed to push_* and eval are in
// the executor's memory.
template <class Layout, class Exec = SerialExec>
struct HistoryViewT : HistoryRing<Layout> {
  using Ring = HistoryRing<Layout>;
  using Ring::cap;
  using Ring::find_interval;
  using Ring::head;
  using Ring::layout;
  using Ring::size;
  using Ring::slot;
  using Ring::stride;
  using Ring::t;
  using Ring::time;
  double* x = nullptr;     // [cap * dim]
  double* f = nullptr;     // [cap * dim]
  double* coef = nullptr;  // [cap * n_coef * dim], interval starting at that slot
  int dim = 0;
  int n_coef = 3;
  Exec exec;

  // Anchor i's state and derivative: component d at [d * stride()].
  DELYAP_HD const double* state(Index i) const { return x + slot(i) * dim * stride(); }
  DELYAP_HD const double* deriv(Index i) const { return f + slot(i) * dim * stride(); }
  DELYAP_HD const double* coefficients(Index i) const {
    return coef + slot(i) * n_coef * dim * stride();
  }

  DELYAP_HD void push_anchor(double ti, const double* xi, const double* fi) {
    const Index s = slot(size);
    t[s * stride()] = ti;
    exec.for_each(dim, StoreAnchor<Layout>{x + s * dim * stride(), f + s * dim * stride(), xi,
                                           fi, layout()});
    ++size;
  }

  // Appends the interval [last anchor, t1] with its coefficients c (n_coef × dim, row per m).
  DELYAP_HD void push_interval(const double* c, double t1, const double* x1, const double* f1) {
    double* dst = coef + slot(size - 1) * n_coef * dim * stride();
    exec.for_each(Index(n_coef) * dim, StridedStore<Layout>{dst, c, layout()});
    push_anchor(t1, x1, f1);
  }

  // x(s) on interval i (s may lie slightly outside it). At its end anchor the stored state
  // itself, as at its start (θ = 0): the polynomial at θ = 1 rounds a few ulps away from it, so
  // an output at a step's end would differ from the state the next step starts from.
  DELYAP_HD void eval_interval(Index i, double s, double* out) const {
    const double h = time(i + 1) - time(i);
    if (!(h > 0.0) || s == time(i + 1)) {
      exec.for_each(dim, StridedLoad<Layout>{out, state(i + 1), layout()});
      return;
    }
    exec.for_each(dim, StridedPolynomialRead<Layout>{state(i), coefficients(i), n_coef, dim, h,
                                                     (s - time(i)) / h, out, layout()});
  }

  // x'(s) on interval i: Σ_m (m+1) c_m θ^m.
  DELYAP_HD void eval_interval_derivative(Index i, double s, double* out) const {
    const double h = time(i + 1) - time(i);
    if (!(h > 0.0)) {
      exec.for_each(dim, StridedLoad<Layout>{out, deriv(i + 1), layout()});
      return;
    }
    exec.for_each(dim, StridedPolynomialDerivative<Layout>{coefficients(i), n_coef, dim,
                                                           (s - time(i)) / h, out, layout()});
  }

  // x(s) for s in the window (Ring::locate); false when s is older than the window.
  // With `derivative`, x'(s) is written there too (neutral equations). `left`: at a jump, the
  // left-hand limit (Ring::find_interval). `cursor`: the caller's read cursor (Ring::locate).
  DELYAP_HD bool eval(double s, double* out, double* derivative = nullptr, bool left = false,
                      Index* cursor = nullptr) const {
    Index i = 0;
    const typename Ring::Read where = this->locate(&s, &i, left, cursor);
    if (where == Ring::Read::TooOld) return false;
    if (where == Ring::Read::PastEnd) {
      const double* xl = state(size - 1);
      const double* fl = deriv(size - 1);
      const double ds = s - this->last_time();
      exec.for_each(dim, StridedExtrapolation<Layout>{xl, fl, ds, out, layout()});
      if (derivative) exec.for_each(dim, StridedLoad<Layout>{derivative, fl, layout()});
      return true;
    }
    eval_interval(i, s, out);
    if (derivative) eval_interval_derivative(i, s, derivative);
    return true;
  }
};

using HistoryView = HistoryViewT<ContiguousLayout>;
using InterleavedHistoryView = HistoryViewT<InterleavedLayout>;

// Cubic Hermite coefficients (3 × dim) for the form above.
DELYAP_HD inline void hermite_coefficients(const double* x0, const double* f0, const double* x1,
                                           const double* f1, double h, int dim, int n_coef,
                                           double* c) {
  const HermiteCoefficients row{x0, f0, x1, f1, h, dim, n_coef, c};
  for (int d = 0; d < dim; ++d) row(d);
}

}  // namespace delyap
