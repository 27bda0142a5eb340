// Parameter packs of the built-in systems as they arrive from Python (broadcast arrays), and
// how trajectory b's system is built from them. Shared by the solve and Lyapunov entry points.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "arrays.hpp"
#include "delyap/dde/rhs/linear.hpp"
#include "delyap/dde/rhs/mackey_glass.hpp"

namespace delyap::bindings {

// ---- Mackey–Glass ---------------------------------------------------------------------------
struct MackeyGlassParams {
  DArray beta, gamma, n, tau, tau_state;  // each (batch,)
  double window = 0.0;                    // declared max_delay (state-dependent lags)
  Index batch() const { return beta.shape(0); }
  MackeyGlass at(Index b) const {
    if (b < 0 || b >= batch()) throw py::index_error("index: trajectory out of range");
    return MackeyGlass{beta.at(b), gamma.at(b), n.at(b), tau.at(b), tau_state.at(b), window};
  }
  void check() const {
    const Index B = batch();
    for (auto* p : {&beta, &gamma, &n, &tau, &tau_state})
      require_shape(*p, "mackey_glass parameter", {B});
  }
};

// ---- Linear: x' = A x + Σ B_k x(t − τ_k) ---------------------------------------------------
struct LinearParams {
  DArray A;    // (1 or batch, dim, dim)
  DArray B;    // (1 or batch, n_delays, dim, dim)
  DArray tau;  // (1 or batch, n_delays)
  Index batch;
  int dim() const { return int(A.shape(1)); }
  int n_delays() const { return int(tau.shape(1)); }
  void check() const {
    const int d = dim(), nd = n_delays();
    require_shape(A, "A", {-1, d, d});
    require_shape(B, "B", {-1, nd, d, d});
    require_shape(tau, "tau", {-1, nd});
    for (const py::array* a : {(const py::array*)&A, (const py::array*)&B, (const py::array*)&tau})
      if (a->shape(0) != 1 && a->shape(0) != batch)
        throw py::value_error("linear: parameter batch sizes do not match");
  }
  LinearDde at(Index b) const {
    if (b < 0 || b >= batch) throw py::index_error("index: trajectory out of range");
    const int d = dim(), nd = n_delays();
    const Index ba = A.shape(0) == 1 ? 0 : b, bb = B.shape(0) == 1 ? 0 : b,
                bt = tau.shape(0) == 1 ? 0 : b;
    return LinearDde{A.data() + ba * d * d, B.data() + bb * nd * d * d, tau.data() + bt * nd, d,
                     nd};
  }
};

}  // namespace delyap::bindings
