// Argument handling shared by the fixed-storage ensemble solves: the CUDA module's kernels and
// the host mirror in _core that runs the same per-trajectory code (tests compare the two with
// the growing-buffer solver). Plain numpy arrays and a dict of options cross the module
// boundary, so the CUDA module needs no _core types.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <limits>
#include <string>
#include <vector>

#include "arrays.hpp"
#include "delyap/dde/fixed_ensemble.hpp"
#include "system_params.hpp"

namespace delyap::bindings {

inline SolverOptions options_from_dict(const py::dict& d) {
  SolverOptions o;
  o.method = Method(d["method"].cast<int>());
  o.rtol = d["rtol"].cast<double>();
  o.atol = d["atol"].cast<double>();
  o.dt = d["dt"].cast<double>();
  o.max_step = d["max_step"].cast<double>();
  o.min_step = d["min_step"].cast<double>();
  o.max_steps = d["max_steps"].cast<Index>();
  o.track_discontinuities = d["track_discontinuities"].cast<bool>();
  return o;
}

// Validated inputs and host result arrays of a fixed-storage ensemble solve.
struct FixedSolve {
  Index batch;
  int dim, n_delays;
  DArray hist_t, hist_x, hist_f, y0, t_eval;
  double t0, t_final;
  SolverOptions opt;
  Index capacity;  // history anchors per trajectory (a power of two)
  py::array_t<double> y, y_final, t_end;
  py::array_t<int> status;
  py::array_t<Index> stats;

  FixedSolve(Index b, int d, int nd, const DArray& ht, const DArray& hx, const DArray& hf,
             const DArray& y0_, double t0_, double tf, const DArray& te, const py::dict& options,
             Index cap)
      : batch(b), dim(d), n_delays(nd), hist_t(ht), hist_x(hx), hist_f(hf), y0(y0_), t_eval(te),
        t0(t0_), t_final(tf), opt(options_from_dict(options)) {
    if (batch <= 0) throw py::value_error("batch: no trajectories to solve");
    require_history(ht, hx, hf, y0_, b, d);
    const Index n_hist = ht.shape(0);
    require_shape(te, "t_eval", {-1});
    if (cap < n_hist + 2)
      throw py::value_error("history_capacity: must exceed the initial history's " +
                            std::to_string(n_hist) + " anchors");
    capacity = 4;
    while (capacity < cap) capacity <<= 1;
    y = py::array_t<double>(std::vector<py::ssize_t>{b, te.shape(0), Index(d)});
    std::fill(y.mutable_data(), y.mutable_data() + y.size(),
              std::numeric_limits<double>::quiet_NaN());
    y_final = py::array_t<double>(std::vector<py::ssize_t>{b, Index(d)});
    std::fill(y_final.mutable_data(), y_final.mutable_data() + y_final.size(),
              std::numeric_limits<double>::quiet_NaN());  // a trajectory stopped early
    t_end = py::array_t<double>(b);
    status = py::array_t<int>(b);
    for (Index i = 0; i < b; ++i) status.mutable_at(i) = int(Status::NotRun);
    stats = py::array_t<Index>(std::vector<py::ssize_t>{b, Index(kStatFields)});
  }

  int n_coef() const { return coefficients_for(tableau_for(opt.method)); }
  Index history_doubles() const {
    return InterleavedHistories::doubles(batch, dim, n_coef(), capacity);
  }

  // The kernel arguments with the given storage for histories and outputs (host or device
  // pointers); inputs are taken from `in` (same layout as the numpy inputs).
  struct Pointers {
    double *history, *y, *y_final, *t_end;
    int* status;
    Index* stats;
    const double *hist_t, *hist_x, *hist_f, *y0, *t_eval;
  };
  FixedEnsembleArgs args(const Pointers& p) const {
    FixedEnsembleArgs a;
    a.hist = InterleavedHistories::carve(p.history, batch, dim, n_coef(), capacity);
    a.hist_t = p.hist_t;
    a.n_hist = hist_t.shape(0);
    a.hist_x = p.hist_x;
    a.hist_f = p.hist_f;
    a.hist_stride = hist_x.shape(0) == 1 ? 0 : a.n_hist * dim;
    a.y0 = p.y0;
    a.y0_stride = y0.shape(0) == 1 ? 0 : dim;
    a.t0 = t0;
    a.t_final = t_final;
    a.t_eval = p.t_eval;
    a.n_eval = t_eval.shape(0);
    a.y = p.y;
    a.y_final = p.y_final;
    a.status = p.status;
    a.stats = p.stats;
    a.t_end = p.t_end;
    a.opt = opt;
    return a;
  }
  Pointers host_pointers(double* history) {
    return Pointers{history,           y.mutable_data(),   y_final.mutable_data(),
                    t_end.mutable_data(), status.mutable_data(), stats.mutable_data(),
                    hist_t.data(),     hist_x.data(),      hist_f.data(),
                    y0.data(),         t_eval.data()};
  }

  py::dict to_dict() const {
    py::dict r;
    r["t"] = t_eval;
    r["y"] = y;
    r["status"] = status;
    r["stats"] = stats;
    r["t_final"] = t_end;
    r["y_final"] = y_final;
    return r;
  }
};

}  // namespace delyap::bindings
