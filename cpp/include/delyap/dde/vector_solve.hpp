// One large trajectory with its state in an executor's memory (common/exec.hpp): the driver,
// stepper and step control are the CPU's own (integrate.hpp, stepper.hpp) and only the
// per-component loops run on the executor. With a device executor the history, the stages and
// the dense output stay in GPU memory; the host sees one scalar per error norm. With
// HostVectorExec the same code runs on the CPU, bit for bit the regular solver, which is how
// the tests cover it.
// Systems here have constant delays and are retarded (not neutral): their lags are known on
// the host without reading the state.
#pragma once

#include <atomic>
#include <vector>

#include "delyap/dde/ensemble.hpp"
#include "delyap/dde/history_buffer.hpp"

namespace delyap {

// The initial function's anchors (host arrays) into an executor-memory history: x and f are
// uploaded once, then loaded by the drivers' shared push_initial_history on the executor.
template <class Exec>
void load_initial_history(HistoryBufferT<Exec>& buf, const InitialHistory& h, Index b,
                          int dim, Exec exec) {
  buf.ensure(h.n + 8);
  auto& v = buf.view();
  const Index values = h.n * dim;
  typename Exec::template Array<double> stage(2 * values + Index(v.n_coef) * dim);
  double* x_d = stage.get();
  double* f_d = x_d + values;
  exec.upload(x_d, h.x + b * h.stride, values);
  exec.upload(f_d, h.f + b * h.stride, values);
  push_initial_history(v, h.t, h.n, x_d, f_d, dim, f_d + values, exec);
}

// One trajectory of a large system with its state on the executor. Returns its status; fills
// stats and x_final (host). Failures of the executor itself (a CUDA error) are thrown.
template <class System, class Exec, class Sink>
Status solve_vector(const System& sys, const SolverOptions& opt, const InitialHistory& hist,
                    Index b, const Trajectory& tr, Sink& sink, SolveStats& stats,
                    double* x_final, const std::atomic<bool>& cancel, Exec exec) {
  static_assert(!detail::has_delays<System>::value && !detail::has_neutral<System>::value,
                "solve_vector: constant delays and retarded equations only");
  const Tableau& tab = tableau_for(opt.method);
  const int dim = sys.dim(), nd = sys.n_delays();
  HistoryBufferT<Exec> buffer(exec, dim, coefficients_for(tab));
  load_initial_history(buffer, hist, b, dim, exec);
  std::vector<double> disc = propagated_discontinuities(sys, opt, tab, tr);

  // The trajectory's scratch, then y0, in executor memory.
  const Index run_size = TrajectoryScratch::doubles(dim, nd);
  typename Exec::template Array<double> scratch(run_size + Index(dim));
  TrajectoryScratch s = TrajectoryScratch::carve(scratch.get(), dim, nd);
  std::vector<double> taus(static_cast<size_t>(nd));
  s.ws.taus = taus.data();  // the lags are read on the host
  double* y0 = scratch.get() + run_size;
  exec.upload(y0, tr.y0, dim);

  IntegrationProblem p{tr.t0, tr.t_final, y0, disc.data(), Index(disc.size())};
  auto is_cancelled = [&cancel]() { return cancel.load(std::memory_order_relaxed); };
  return run_trajectory(sys, tab, opt, buffer, s, p, sink, stats, x_final, is_cancelled, exec);
}

}  // namespace delyap
