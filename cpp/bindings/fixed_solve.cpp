// Host mirror of the CUDA ensemble kernel: runs solve_fixed_member (the kernel's per-thread
// body) for every trajectory on the CPU, on the same interleaved fixed-capacity storage. Tests
// compare it with the growing-buffer solver, so the CPU suite covers the code the GPU runs.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <atomic>
#include <vector>

#include "delyap/parallel/parallel_for.hpp"
#include "fixed_solve.hpp"
#include "interruptible.hpp"

namespace py = pybind11;
using namespace delyap;
using delyap::bindings::DArray;
using delyap::bindings::FixedSolve;

namespace {

template <class Batch>
py::dict run_fixed_host(const Batch& systems, FixedSolve& fs, int threads) {
  std::vector<double> history(fs.history_doubles());
  const FixedEnsembleArgs a = fs.args(fs.host_pointers(history.data()));
  std::atomic<bool> cancel{false};
  bindings::run_interruptible(cancel, [&]() {
    parallel_for(fs.batch, threads, cancel, [&](Index b) {
      double scratch[fixed_scratch_doubles(Batch::kDim, Batch::kDelays)];
      solve_fixed_member<Batch::kDelays>(systems.at(b), a, b, scratch);
    });
  });
  return fs.to_dict();
}

py::dict solve_fixed_mackey_glass(const DArray& beta, const DArray& gamma, const DArray& n,
                                  const DArray& tau, const DArray& ht, const DArray& hx,
                                  const DArray& hf, const DArray& y0, double t0, double t_final,
                                  const DArray& t_eval, const py::dict& options, Index capacity,
                                  int threads) {
  const Index batch = beta.ndim() == 1 ? beta.shape(0) : 0;
  FixedSolve fs(batch, 1, 1, ht, hx, hf, y0, t0, t_final, t_eval, options, capacity);
  return run_fixed_host(bindings::mackey_glass_batch(batch, beta, gamma, n, tau), fs, threads);
}

py::dict solve_fixed_linear(const DArray& A, const DArray& B, const DArray& tau, Index batch,
                            const DArray& ht, const DArray& hx, const DArray& hf,
                            const DArray& y0, double t0, double t_final, const DArray& t_eval,
                            const py::dict& options, Index capacity, int threads) {
  const LinearBatch systems = bindings::linear_batch(batch, A, B, tau);
  FixedSolve fs(batch, systems.d, systems.nd, ht, hx, hf, y0, t0, t_final, t_eval, options,
                capacity);
  return run_fixed_host(systems, fs, threads);
}

}  // namespace

void register_fixed_solve(py::module_& m) {
  m.def("solve_fixed_mackey_glass", &solve_fixed_mackey_glass, py::arg("beta"),
        py::arg("gamma"), py::arg("n"), py::arg("tau"), py::arg("hist_t"), py::arg("hist_x"),
        py::arg("hist_f"), py::arg("y0"), py::arg("t0"), py::arg("t_final"), py::arg("t_eval"),
        py::arg("options"), py::arg("capacity"), py::arg("threads"),
        "Host mirror of the CUDA Mackey–Glass ensemble kernel (fixed history storage).");
  m.def("solve_fixed_linear", &solve_fixed_linear, py::arg("A"), py::arg("B"), py::arg("tau"),
        py::arg("batch"), py::arg("hist_t"), py::arg("hist_x"), py::arg("hist_f"), py::arg("y0"),
        py::arg("t0"), py::arg("t_final"), py::arg("t_eval"), py::arg("options"),
        py::arg("capacity"), py::arg("threads"),
        "Host mirror of the CUDA linear-DDE ensemble kernel (fixed history storage).");
}
