// Solve entry points for delay-coupled oscillator networks on sparse digraphs. A batch sweeps
// the coupling strength (one trajectory per value) on a shared graph.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>
#include <optional>

#include "delyap/dde/rhs/network.hpp"
#include "network_args.hpp"
#include "solve_runner.hpp"
#include "vector_runner.hpp"

namespace py = pybind11;
using namespace delyap;
using delyap::bindings::DArray;
using delyap::bindings::HistoryArgs;
using delyap::bindings::OutputSpec;
using delyap::bindings::NetworkArgs;
using delyap::bindings::require_shape;
using IndexArray = delyap::bindings::IndexArray;
using IntArray = delyap::bindings::IntArray;
using ClassArray = delyap::bindings::ClassArray;

namespace {

// One large trajectory gets its right-hand side split over the threads (a K-sweep batch is
// already parallel over trajectories). Small graphs stay serial: waking the pool costs a few
// microseconds per evaluation, so it pays from about 2·10⁴ edges on.
constexpr Index kParallelRhsEdges = 20000;

std::unique_ptr<WorkerPool> rhs_pool(const NetworkArgs& a, int threads) {
  const Index edges = a.indices.shape(0);
  if (a.coupling.shape(0) != 1 || edges < kParallelRhsEdges) return nullptr;
  const int nt = resolve_threads(threads, edges / (kParallelRhsEdges / 2));
  return nt > 1 ? std::make_unique<WorkerPool>(nt) : nullptr;
}

}  // namespace

void register_network_systems(py::module_& m) {
  py::class_<NetworkArgs>(m, "NetworkArgs")
      .def(py::init<IndexArray, IntArray, DArray, std::optional<ClassArray>, DArray, DArray, DArray,
                    DArray>(),
           py::arg("indptr"), py::arg("indices"), py::arg("weights"), py::arg("klass"),
           py::arg("tau"), py::arg("omega"), py::arg("inv_norm"), py::arg("coupling"));

  m.def(
      "solve_kuramoto",
      [](const NetworkArgs& a, const HistoryArgs& h, double t0, double t_final,
         std::optional<DArray> t_eval, const SolverOptions& opt, int threads,
         const OutputSpec& output) {
        a.check();
        const CsrGraph g = a.graph();
        std::unique_ptr<WorkerPool> pool = rhs_pool(a, threads);
        auto make = [&a, g, &pool](Index b) {
          return KuramotoNetwork{g,
                                 a.omega.data(),
                                 a.inv_norm.data(),
                                 a.tau.data(),
                                 int(a.tau.shape(0)),
                                 a.coupling.at(b),
                                 {},
                                 pool.get()};
        };
        return bindings::run_solve(a.coupling.shape(0), g.n, make, opt, h, t0, t_final, t_eval,
                                   threads, output);
      },
      py::arg("network"), py::arg("history"), py::arg("t0"), py::arg("t_final"),
      py::arg("t_eval"), py::arg("options"), py::arg("threads"), py::arg("output"));

  m.def(
      "solve_stuart_landau",
      [](const NetworkArgs& a, double lambda, const HistoryArgs& h, double t0, double t_final,
         std::optional<DArray> t_eval, const SolverOptions& opt, int threads,
         const OutputSpec& output) {
        a.check();
        const CsrGraph g = a.graph();
        std::unique_ptr<WorkerPool> pool = rhs_pool(a, threads);
        auto make = [&a, g, lambda, &pool](Index b) {
          return StuartLandauNetwork{g,     a.omega.data(), a.inv_norm.data(), a.tau.data(),
                                     int(a.tau.shape(0)), lambda, a.coupling.at(b), pool.get()};
        };
        return bindings::run_solve(a.coupling.shape(0), 2 * g.n, make, opt, h, t0, t_final,
                                   t_eval, threads, output);
      },
      py::arg("network"), py::arg("lam"), py::arg("history"), py::arg("t0"), py::arg("t_final"),
      py::arg("t_eval"), py::arg("options"), py::arg("threads"), py::arg("output"));

  // The GPU driver's CPU twin (vector_runner.hpp with HostVectorExec): the same per-component
  // code on host memory, for Kuramoto (lam None) or Stuart–Landau. For tests; bitwise equal to
  // the regular solver with one thread.
  py::module_ testing = m.def_submodule("_testing");  // test-only entry points (module.cpp)
  testing.def(
      "solve_network_vector",
      [](const NetworkArgs& a, std::optional<double> lam, const HistoryArgs& h, double t0,
         double t_final, std::optional<DArray> t_eval, const SolverOptions& opt,
         const OutputSpec& output) {
        a.check();
        const CsrGraph g = a.graph();
        const Index batch = a.coupling.shape(0);
        if (lam) {
          auto make = [&a, g, &lam](Index b) {
            return StuartLandauNetwork{g, a.omega.data(), a.inv_norm.data(), a.tau.data(),
                                       int(a.tau.shape(0)), *lam, a.coupling.at(b), nullptr};
          };
          return bindings::run_vector_solve(batch, 2 * g.n, make, opt, h, t0, t_final, t_eval,
                                            output, HostVectorExec{});
        }
        auto make = [&a, g](Index b) {
          return KuramotoNetwork{g,           a.omega.data(),       a.inv_norm.data(),
                                 a.tau.data(), int(a.tau.shape(0)), a.coupling.at(b), {}, nullptr};
        };
        return bindings::run_vector_solve(batch, g.n, make, opt, h, t0, t_final, t_eval, output,
                                          HostVectorExec{});
      },
      py::arg("network"), py::arg("lam"), py::arg("history"), py::arg("t0"), py::arg("t_final"),
      py::arg("t_eval"), py::arg("options"), py::arg("output"));
}
