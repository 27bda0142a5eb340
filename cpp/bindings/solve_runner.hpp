// Shared plumbing for every system's solve entry point: unpack the history and options,
// allocate outputs, release the GIL, run the ensemble, pack a dict for the Python layer.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <atomic>
#include <limits>
#include <optional>

#include "arrays.hpp"
#include "delyap/dde/ensemble.hpp"
#include "interruptible.hpp"

namespace delyap::bindings {

struct HistoryArgs {
  DArray t, x, f;  // (n,), (batch or 1, n, dim), same
  DArray y0;       // (batch or 1, dim)
  DArray jumps;    // (n_jumps,) times ≤ t0 where the history jumps (propagated like t0)
};

// How much of the state to keep at each output time (Python's `output=` argument).
struct OutputSpec {
  int mode = 0;  // Reduction
  std::vector<Index> components;
};

// The initial function, validated against the batch and state sizes.
inline InitialHistory initial_history(const HistoryArgs& h, Index batch, int dim) {
  if (batch <= 0) throw py::value_error("batch: no trajectories to solve");
  require_history(h.t, h.x, h.f, h.y0, batch, dim);
  const Index n_hist = h.t.shape(0);
  return InitialHistory{h.t.data(), n_hist, h.x.data(), h.f.data(),
                        h.x.shape(0) == 1 ? 0 : n_hist * dim};
}

// The output times: t_eval, or the two ends of the span.
inline DArray output_times(const std::optional<DArray>& t_eval, double t0, double t_final) {
  DArray te = t_eval ? *t_eval : DArray(std::vector<py::ssize_t>{2});
  if (!t_eval) {
    te.mutable_at(0) = t0;
    te.mutable_at(1) = t_final;
  }
  require_shape(te, "t_eval", {-1});
  return te;
}

// Values per output time, with the requested components checked.
inline int output_width(const OutputSpec& output, int dim) {
  if (output.mode < int(Reduction::Full) || output.mode > int(Reduction::PhasorCoherence))
    throw py::value_error("output: unknown reduction mode");
  for (Index c : output.components)
    if (c < 0 || c >= dim) throw py::value_error("output: component index out of range");
  return reduced_width(Reduction(output.mode), dim, Index(output.components.size()));
}

inline py::array_t<double> nan_array(std::vector<py::ssize_t> shape) {
  py::array_t<double> a(shape);
  std::fill(a.mutable_data(), a.mutable_data() + a.size(),
            std::numeric_limits<double>::quiet_NaN());
  return a;
}

// The per-trajectory results every runner returns.
struct TrajectoryResults {
  py::array_t<int> status;
  py::array_t<Index> stats;
  py::array_t<double> t_end;
  py::array_t<double> y_final;
  TrajectoryResults(Index batch, int dim)
      : status(batch), stats({batch, Index(kStatFields)}), t_end(batch),
        y_final({batch, Index(dim)}) {}
  void record(Index b, Status st, const SolveStats& s) {
    status.mutable_at(b) = int(st);
    write_stats(s, stats.mutable_data() + b * kStatFields);
    t_end.mutable_at(b) = s.t_final;
  }
  void into(py::dict& result) const {
    result["status"] = status;
    result["stats"] = stats;
    result["t_final"] = t_end;
    result["y_final"] = y_final;
  }
};

// Every accepted step of one trajectory (times, and states row by row) as result["t"], ["y"].
inline void put_steps(py::dict& result, const std::vector<double>& t,
                      const std::vector<double>& y, int dim) {
  const Index n = Index(t.size());
  py::array_t<double> t_out(n);
  py::array_t<double> y_out({Index(1), n, Index(dim)});
  std::copy(t.begin(), t.end(), t_out.mutable_data());
  std::copy(y.begin(), y.end(), y_out.mutable_data());
  result["t"] = t_out;
  result["y"] = y_out;
}

template <class MakeSystem>
py::dict run_solve(Index batch, int dim, const MakeSystem& make_system, const SolverOptions& opt,
                   const HistoryArgs& h, double t0, double t_final,
                   const std::optional<DArray>& t_eval, int threads,
                   const OutputSpec& output = OutputSpec{}) {
  const InitialHistory hist = initial_history(h, batch, dim);
  const Index y0_stride = h.y0.shape(0) == 1 ? 0 : dim;
  std::atomic<bool> cancel{false};
  py::dict result;
  TrajectoryResults res(batch, dim);

  if (!t_eval && batch == 1) {
    // Every accepted step of a single trajectory (scipy-like output when no t_eval is given).
    StepSink sink(dim);
    const auto sys = make_system(0);
    SolveStats st;
    Status status = Status::NotRun;
    run_interruptible(cancel, [&]() {
      Trajectory tr{h.y0.data(), t0, t_final, h.jumps.data(), Index(h.jumps.size())};
      TimeProgress<StepSink> watched{sink, t0, t_final, progress_counter()};
      status =
          solve_single(sys, opt, hist, 0, tr, watched, st, res.y_final.mutable_data(), cancel);
      if (watched.counter) watched.counter->fetch_add(1, std::memory_order_relaxed);  // the end
    });
    res.record(0, status, st);
    put_steps(result, sink.t, sink.y, dim);
  } else {
    const DArray te = output_times(t_eval, t0, t_final);
    const Index n_eval = te.shape(0);
    const int width = output_width(output, dim);
    py::array_t<double> y = nan_array({batch, n_eval, Index(width)});
    EnsembleOutput out{te.data(),          n_eval,           y.mutable_data(),
                       res.y_final.mutable_data(), res.status.mutable_data(),
                       res.stats.mutable_data(),   res.t_end.mutable_data(),
                       Reduction(output.mode),     output.components.data(),
                       Index(output.components.size())};
    run_interruptible(cancel, [&]() {
      solve_ensemble(batch, dim, make_system, opt, hist, h.y0.data(), y0_stride, t0, t_final, out,
                     threads, cancel, h.jumps.data(), Index(h.jumps.size()));
    });
    result["t"] = te;
    result["y"] = y;
  }
  res.into(result);
  return result;
}

// Jacobians of a compiled system at one point: (∂f/∂x, ∂f/∂x(t − τ_k)).
template <class System>
py::tuple jacobian_at(const System& sys, double t, const DArray& x, const DArray& xd) {
  const int dim = sys.dim(), nd = sys.n_delays();
  require_shape(x, "x", {dim});
  require_shape(xd, "x_delayed", {nd, dim});
  py::array_t<double> jx({dim, dim});
  py::array_t<double> jd({nd, dim, dim});
  sys.jacobian(t, x.data(), xd.data(), jx.mutable_data(), jd.mutable_data());
  return py::make_tuple(jx, jd);
}

template <class System>
py::array_t<double> rhs_at(const System& sys, double t, const DArray& x, const DArray& xd) {
  const int dim = sys.dim(), nd = sys.n_delays();
  require_shape(x, "x", {dim});
  require_shape(xd, "x_delayed", {nd, dim});
  py::array_t<double> out(dim);
  sys.rhs(t, x.data(), xd.data(), out.mutable_data());
  return out;
}

}  // namespace delyap::bindings
