// Solve entry for large systems whose state lives on an executor (dde/vector_solve.hpp): the
// CUDA module runs it with the device executor, _core with HostVectorExec (the CPU twin the
// tests compare bit for bit with the regular solver). A batch (a coupling sweep) runs one
// trajectory after another, each using the whole executor. Returns the same dict as run_solve.
#pragma once

#include <functional>

#include "delyap/dde/vector_solve.hpp"
#include "solve_runner.hpp"

namespace delyap::bindings {

// make_system(b) gives trajectory b's system; `on_worker` runs first on the solver thread
// (a CUDA caller selects its device there).
template <class Exec, class MakeSystem>
py::dict run_vector_solve(Index batch, int dim, const MakeSystem& make_system,
                          const SolverOptions& opt, const HistoryArgs& h, double t0,
                          double t_final, const std::optional<DArray>& t_eval,
                          const OutputSpec& output, Exec exec,
                          const std::function<void()>& on_worker = {}) {
  const InitialHistory hist = initial_history(h, batch, dim);
  const Index y0_stride = h.y0.shape(0) == 1 ? 0 : dim;
  std::atomic<bool> cancel{false};
  py::dict result;
  TrajectoryResults res(batch, dim);
  auto trajectory = [&](Index b) {
    return Trajectory{h.y0.data() + b * y0_stride, t0, t_final, h.jumps.data(),
                      Index(h.jumps.size())};
  };
  for (Index b = 0; b < batch; ++b) res.status.mutable_at(b) = int(Status::NotRun);

  if (!t_eval && batch == 1) {
    StepSinkT<Exec> sink(dim, exec);
    SolveStats st;
    Status status = Status::NotRun;
    run_interruptible(cancel, [&]() {
      if (on_worker) on_worker();
      TimeProgress<StepSinkT<Exec>> watched{sink, t0, t_final, progress_counter()};
      status = solve_vector(make_system(0), opt, hist, 0, trajectory(0), watched, st,
                            res.y_final.mutable_data(), cancel, exec);
      if (watched.counter) watched.counter->fetch_add(1, std::memory_order_relaxed);  // the end
    });
    res.record(0, status, st);
    put_steps(result, sink.t, sink.y, dim);
  } else {
    const DArray te = output_times(t_eval, t0, t_final);
    const Index n_eval = te.shape(0);
    const int width = output_width(output, dim);
    const Reduction mode = Reduction(output.mode);
    const Index n_comp = Index(output.components.size());
    py::array_t<double> y = nan_array({batch, n_eval, Index(width)});
    double* y_all = y.mutable_data();
    run_interruptible(cancel, [&]() {
      if (on_worker) on_worker();
      // Device rows for the state or its components; an order parameter is written on the
      // host directly. Rows past a failure stay NaN.
      const bool on_exec = mode == Reduction::Full || mode == Reduction::Components;
      typename Exec::template Array<double> y_exec(on_exec ? n_eval * width : 0);
      typename Exec::template Array<double> scratch(mode == Reduction::Full ? 0 : dim);
      typename Exec::template Array<Index> comps(n_comp);
      if (n_comp) exec.upload(comps.get(), output.components.data(), n_comp);
      // One item per finished trajectory of a batch, thousandths of the span for a single one
      // (as the host ensemble counts).
      std::atomic<Index>* const progress = progress_counter();
      for (Index b = 0; b < batch && !cancel.load(); ++b) {
        double* y_b = y_all + b * n_eval * width;
        EvalSinkT<Exec> sink{te.data(), n_eval,        y_exec.get(), dim, mode,
                             comps.get(), n_comp, scratch.get(), y_b,          exec};
        SolveStats st;
        TimeProgress<EvalSinkT<Exec>> watched{sink, t0, t_final, batch == 1 ? progress : nullptr};
        const Status status = solve_vector(make_system(b), opt, hist, b, trajectory(b), watched,
                                           st, res.y_final.mutable_data() + b * dim, cancel,
                                           exec);
        if (on_exec && sink.next > 0) exec.download(y_b, y_exec.get(), sink.next * width);
        res.record(b, status, st);
        if (progress) progress->fetch_add(1, std::memory_order_relaxed);
      }
    });
    result["t"] = te;
    result["y"] = y;
  }
  res.into(result);
  return result;
}

}  // namespace delyap::bindings
