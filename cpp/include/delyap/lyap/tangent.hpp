// Tangent (variational) equations of a DDE and the re-orthonormalisation of tangent functions.
//
// The augmented state is [x, δ_1, …, δ_k] (dimension D(1 + k)); each δ_j obeys
//     δ_j'(t) = ∂f/∂x · δ_j(t) + Σ_m ∂f/∂x(t − τ_m) · δ_j(t − τ_m),
// integrated with the trajectory by the same stepper, so the tangent "vectors" are functions on
// [t − τmax, t] held in the same history ring buffer. They are orthonormalised in the inner
// product ⟨u, v⟩ = u(t)·v(t) + ∫ u(s)·v(s) ds over the stored window, computed exactly for the
// cubic Hermite interpolants of the anchors with the per-interval mass matrix
//     (q/420)·[[156, 22q, 54, −13q], [22q, 4q², 13q, −3q²], [54, 13q, 156, −22q],
//              [−13q, −3q², −22q, 4q²]]  on (x0, f0, x1, f1).
// Writing M = (q/420)·S·M0·S with S = diag(1, q, 1, q) and M0 = L0 L0ᵀ, each interval and
// component contributes the four rows √(q/420)·L0ᵀ(x0, q f0, x1, q f1) to a tall matrix W whose
// Euclidean geometry is that inner product; Householder QR of W gives R, and every stored
// tangent datum (anchors, derivatives, interval coefficients, current state) is mapped by R⁻¹.
#pragma once

#include <cmath>

#include "delyap/dde/history.hpp"
#include "delyap/dde/system_traits.hpp"
#include "delyap/lyap/householder.hpp"
#include "delyap/lyap/qr_window.hpp"

namespace delyap {

// The tangent equations use the system's tangent_rhs (k sparse Jacobian-vector products,
// system_traits.hpp) when it has one, else its dense Jacobians (D² per vector: small systems).
template <class System>
struct TangentSystem {
  const System& base;
  int k;
  double* scratch;  // scratch_doubles(base) doubles

  static constexpr bool matrix_free = detail::has_tangent_rhs<System>::value;
  // The dense path holds ∂f/∂x and the n_delays ∂f/∂x(t − τ_m) (D² each); both hold the
  // delayed base states.
  static Index scratch_doubles(const System& s) {
    const Index D = s.dim(), nd = s.n_delays();
    return (matrix_free ? 0 : D * D * (1 + nd)) + nd * D;
  }

  DELYAP_HD int base_dim() const { return base.dim(); }
  DELYAP_HD int dim() const { return base.dim() * (1 + k); }
  DELYAP_HD int n_delays() const { return base.n_delays(); }
  DELYAP_HD double delay(int m) const { return base.delay(m); }

  DELYAP_HD bool rhs(double t, const double* X, const double* Xd, double* out) const {
    const int D = base.dim(), nd = base.n_delays(), Da = dim();
    double* jx = scratch;
    double* jd = jx + (matrix_free ? 0 : D * D);
    double* xd = jd + (matrix_free ? 0 : Index(nd) * D * D);
    for (int m = 0; m < nd; ++m)
      for (int i = 0; i < D; ++i) xd[m * D + i] = Xd[Index(m) * Da + i];
    if (!base.rhs(t, X, xd, out)) return false;
    if constexpr (matrix_free) {
      base.tangent_rhs(t, X, xd, k, X + D, Xd + D, Index(Da), out + D);
    } else {
      base.jacobian(t, X, xd, jx, jd);
      for (int j = 0; j < k; ++j) {
        const double* dj = X + D * (1 + j);
        double* oj = out + D * (1 + j);
        for (int i = 0; i < D; ++i) {
          double s = 0.0;
          for (int l = 0; l < D; ++l) s += jx[i * D + l] * dj[l];
          for (int m = 0; m < nd; ++m) {
            const double* jm = jd + (Index(m) * D + i) * D;
            const double* ddj = Xd + Index(m) * Da + D * (1 + j);
            for (int l = 0; l < D; ++l) s += jm[l] * ddj[l];
          }
          oj[i] = s;
        }
      }
    }
    return true;
  }
};

// The QR of the re-orthonormalisation: the core's Householder routine (any k, host and
// device). Hosts with many directions pass a blocked BLAS-3 one of the same contract
// (lyap/blocked_linalg.hpp: w rows × k column-major, R k × k column-major with diag ≥ 0).
struct PortableTangentQr {
  DELYAP_HD bool operator()(double* w, Index rows, int k, double* r, double* work) const {
    householder_qr(w, rows, rows, k, r, work);
    return true;
  }
};

// Lower Cholesky factor of the constant Hermite mass matrix M0 (row-major 4 × 4).
DELYAP_HD inline void hermite_mass_cholesky(double* L) {
  const double M0[16] = {156, 22, 54, -13, 22, 4, 13, -3, 54, 13, 156, -22, -13, -3, -22, 4};
  for (int i = 0; i < 16; ++i) L[i] = 0.0;
  for (int j = 0; j < 4; ++j) {
    double s = M0[j * 4 + j];
    for (int p = 0; p < j; ++p) s -= L[j * 4 + p] * L[j * 4 + p];
    L[j * 4 + j] = std::sqrt(s);
    for (int i = j + 1; i < 4; ++i) {
      double t = M0[i * 4 + j];
      for (int p = 0; p < j; ++p) t -= L[i * 4 + p] * L[j * 4 + p];
      L[i * 4 + j] = t / L[j * 4 + j];
    }
  }
}

// Intervals whose integral enters the inner product: every stored one for a DDE, none for an
// ODE (no delay: the tangent vectors are just their current values, the Euclidean product, so
// the exponents of a full spectrum sum exactly to the mean divergence).
DELYAP_HD inline Index tangent_intervals(const HistoryView& h, bool has_window) {
  return has_window ? h.size - 1 : 0;
}

// Rows of W the current window needs: D per anchor-free point + 4·D per interval.
DELYAP_HD inline Index tangent_rows(const HistoryView& h, int D, bool has_window = true) {
  return Index(D) * (1 + 4 * tangent_intervals(h, has_window));
}

// Re-orthonormalises the k tangent functions stored in `h` (augmented dim D(1+k)).
// w: tangent_rows × k, r: k × k, work: rows + k, tinv: k × k, tmp: k. Writes log R_jj to logs.
// NonFinite: an R_jj is not finite. LostDirection: a function kept less than kWindowKept of
// its size orthogonal to the ones before it (qr_window.hpp): the interval since the last
// re-orthonormalisation merged it with them (a delayed coupling that vanishes leaves only
// dim independent functions on the window; a huge spread of exponents over one interval does
// the same in rounding), so log R_jj would be noise or −∞. An interval of integration is
// never "one product": no exemption as in window_logs. `start`: the first
// re-orthonormalisation of the random initial functions, whose logs are not used: it only
// makes the start frame orthonormal (a sweep's small-τ member may hold fewer grid points in its
// window than functions, a rank-deficient start the transient forgets), so it is not checked.
template <class Qr = PortableTangentQr>
DELYAP_HD Status reorthonormalize(HistoryView& h, int D, int k, double* w, double* r, double* work,
                                double* tinv, double* tmp, double* logs, bool has_window = true,
                                const Qr& qr = Qr{}, bool start = false) {
  const int Da = h.dim;
  const Index rows = tangent_rows(h, D, has_window);
  const Index n_intervals = tangent_intervals(h, has_window);
  double L[16];
  hermite_mass_cholesky(L);
  // Build W column by column (column j = tangent function j).
  for (int j = 0; j < k; ++j) {
    double* col = w + Index(j) * rows;
    const double* xl = h.state(h.size - 1) + D * (1 + j);
    for (int i = 0; i < D; ++i) col[i] = xl[i];
    Index row = D;
    for (Index a = 0; a < n_intervals; ++a) {
      const double q = h.time(a + 1) - h.time(a);
      const double s = q > 0 ? std::sqrt(q / 420.0) : 0.0;
      const double* x0 = h.state(a) + D * (1 + j);
      const double* f0 = h.deriv(a) + D * (1 + j);
      const double* x1 = h.state(a + 1) + D * (1 + j);
      const double* f1 = h.deriv(a + 1) + D * (1 + j);
      for (int i = 0; i < D; ++i) {
        const double u[4] = {x0[i], q * f0[i], x1[i], q * f1[i]};
        for (int c = 0; c < 4; ++c) {  // (L0ᵀ u)_c = Σ_p L[p][c] u_p
          double acc = 0.0;
          for (int p = c; p < 4; ++p) acc += L[p * 4 + c] * u[p];
          col[row + c] = s * acc;
        }
        row += 4;
      }
    }
  }
  column_scales(w, rows, k, logs);
  if (!qr(w, rows, k, r, work)) return Status::NonFinite;
  for (int j = 0; j < k; ++j)
    if (!is_finite(r[j * k + j]) || !is_finite(logs[j])) return Status::NonFinite;
  for (int j = 0; j < k; ++j) {
    const double rjj = r[j * k + j];
    if (!start && !direction_kept(rjj, logs[j])) return Status::LostDirection;
    if (!(rjj > 0.0)) return Status::NonFinite;  // a start with an exact zero: R⁻¹ is infinite
    logs[j] = std::log(rjj);
  }
  // T = R⁻¹ (upper triangular, column-major), by back substitution per column.
  for (int c = 0; c < k; ++c)
    for (int i = k - 1; i >= 0; --i) {
      double s = (i == c) ? 1.0 : 0.0;
      for (int p = i + 1; p <= c; ++p) s -= r[p * k + i] * tinv[c * k + p];
      tinv[c * k + i] = i <= c ? s / r[i * k + i] : 0.0;
    }
  // Map every stored tangent datum: δ_new_j = Σ_i δ_i T_ij (anchors, derivatives, coefficients).
  auto transform = [&](double* v) {  // v: one anchor's augmented vector of size Da
    for (int d = 0; d < D; ++d) {
      for (int i = 0; i < k; ++i) tmp[i] = v[D * (1 + i) + d];
      for (int j = 0; j < k; ++j) {
        double s = 0.0;
        for (int i = 0; i <= j; ++i) s += tmp[i] * tinv[j * k + i];
        v[D * (1 + j) + d] = s;
      }
    }
  };
  for (Index a = 0; a < h.size; ++a) {
    const Index sl = h.slot(a);
    transform(h.x + sl * Da);
    transform(h.f + sl * Da);
    if (a + 1 < h.size)
      for (int m = 0; m < h.n_coef; ++m) transform(h.coef + (sl * h.n_coef + m) * Da);
  }
  return Status::Success;
}

}  // namespace delyap
