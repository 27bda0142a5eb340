// Host mirror of the CUDA ensemble kernel: runs solve_fixed_member (the kernel's per-thread
// body) for every trajectory on the CPU, on the same interleaved fixed-capacity storage. Tests
// compare it with the growing-buffer solver, so the CPU suite covers the code the GPU runs.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <atomic>
#include <string>
#include <vector>

#include "builtin_systems.hpp"
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

// solve_fixed_<name> of a registered built-in system: the host mirror of its CUDA kernel.
template <class System>
void register_fixed(py::module_& m, const std::string& name) {
  m.def(
      ("solve_fixed_" + name).c_str(),
      [name](const bindings::ParamArrays& p, const DArray& ht, const DArray& hx,
             const DArray& hf, const DArray& y0, double t0, double t_final,
             const DArray& t_eval, const py::dict& options, Index capacity, int threads) {
        const bindings::Builtin<System> sys(p, name);
        sys.check_device_limits(name);
        FixedSolve fs(sys.size, sys.dim, sys.n_delays, ht, hx, hf, y0, t0, t_final, t_eval,
                      options, capacity);
        return run_fixed_host(sys.batch, fs, threads);
      },
      py::arg("params"), py::arg("hist_t"), py::arg("hist_x"), py::arg("hist_f"), py::arg("y0"),
      py::arg("t0"), py::arg("t_final"), py::arg("t_eval"), py::arg("options"),
      py::arg("capacity"), py::arg("threads"),
      ("Host mirror of the CUDA " + name + " ensemble kernel (fixed history storage).").c_str());
}

}  // namespace

void register_fixed_solve(py::module_& m) {
#define DELYAP_REGISTER_FIXED(System, name) register_fixed<System>(m, #name);
  DELYAP_BUILTIN_SYSTEMS(DELYAP_REGISTER_FIXED)
#undef DELYAP_REGISTER_FIXED
}
