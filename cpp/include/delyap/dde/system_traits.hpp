// Optional capabilities of a system, detected at compile time so that the common case (a few
// constant delays, retarded equation) pays nothing for the general one:
//   bool dependent_delays() const;                          delays vary with (t, x)
//   bool delays(double t, const double* x, double* tau) const;   fills all n_delays lags
//   double max_delay() const;                               declared bound for dependent delays
//   bool neutral() const;                                   f also reads x'(t − τ_k)
//   bool rhs_neutral(t, x, xd, xd_dot, out) const;          the neutral right-hand side
//   void tangent_rhs(t, x, xd, k, V, Vd, vd_stride, out) const;
//                                                           k Jacobian-vector products at once
//       (out_j = ∂f/∂x·v_j + Σ_m ∂f/∂x(t−τ_m)·v_j(t−τ_m); v_j = V + j·D, its delayed value
//       for lag m at Vd + m·vd_stride + j·D, out_j = out + j·D): the tangent equations of a
//       large sparse system at the cost of ~one right-hand side per vector, where the dense
//       Jacobian (D² per vector) is unaffordable
#pragma once

#include "delyap/common/config.hpp"

#include <cmath>
#include <type_traits>
#include <utility>

namespace delyap {

namespace detail {
template <class S, class = void>
struct has_delays : std::false_type {};
template <class S>
struct has_delays<S, std::void_t<decltype(std::declval<const S&>().delays(
                         0.0, (const double*)nullptr, (double*)nullptr))>> : std::true_type {};

template <class S, class = void>
struct has_neutral : std::false_type {};
template <class S>
struct has_neutral<S, std::void_t<decltype(std::declval<const S&>().rhs_neutral(
                          0.0, (const double*)nullptr, (const double*)nullptr,
                          (const double*)nullptr, (double*)nullptr))>> : std::true_type {};

template <class S, class = void>
struct has_tangent_rhs : std::false_type {};
template <class S>
struct has_tangent_rhs<S, std::void_t<decltype(std::declval<const S&>().tangent_rhs(
                              0.0, (const double*)nullptr, (const double*)nullptr, 0,
                              (const double*)nullptr, (const double*)nullptr, Index(0),
                              (double*)nullptr))>> : std::true_type {};
}  // namespace detail

template <class S>
DELYAP_HD bool dependent_delays(const S& sys) {
  if constexpr (detail::has_delays<S>::value) return sys.dependent_delays();
  else return false;
}

template <class S>
DELYAP_HD bool is_neutral(const S& sys) {
  if constexpr (detail::has_neutral<S>::value) return sys.neutral();
  else return false;
}

// The lags at (t, x); false when the system's delay function failed. Constant lags come from
// delay(k) even for a system that could make them depend on the state: they must not wait for
// (or be spoiled by) the stage state they do not depend on.
template <class S>
DELYAP_HD bool delays_at(const S& sys, double t, const double* x, double* tau) {
  if constexpr (detail::has_delays<S>::value) {
    if (sys.dependent_delays()) return sys.delays(t, x, tau);
  }
  for (int k = 0; k < sys.n_delays(); ++k) tau[k] = sys.delay(k);
  return true;
}

// The history window: the declared bound for dependent delays, else the largest constant lag.
template <class S>
DELYAP_HD double window_of(const S& sys) {
  if constexpr (detail::has_delays<S>::value) {
    if (sys.dependent_delays()) return sys.max_delay();
  }
  double m = 0.0;
  for (int k = 0; k < sys.n_delays(); ++k) m = std::fmax(m, sys.delay(k));
  return m;
}

template <class S>
DELYAP_HD bool call_rhs(const S& sys, double t, const double* x, const double* xd, const double* xd_dot,
              double* out) {
  if constexpr (detail::has_neutral<S>::value) {
    if (sys.neutral()) return sys.rhs_neutral(t, x, xd, xd_dot, out);
  }
  return sys.rhs(t, x, xd, out);
}

}  // namespace delyap
