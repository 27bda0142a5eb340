// Solve entry points for delay-coupled oscillator networks on sparse digraphs. A batch sweeps
// the coupling strength (one trajectory per value) on a shared graph.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <optional>

#include "delyap/dde/rhs/network.hpp"
#include "solve_runner.hpp"

namespace py = pybind11;
using namespace delyap;
using delyap::bindings::DArray;
using delyap::bindings::HistoryArgs;
using delyap::bindings::OutputSpec;
using delyap::bindings::require_shape;

namespace {

using IndexArray = py::array_t<Index, py::array::c_style>;
using IntArray = py::array_t<int, py::array::c_style>;
using ClassArray = py::array_t<unsigned char, py::array::c_style>;

struct NetworkArgs {
  IndexArray indptr;
  IntArray indices;
  DArray weights;
  std::optional<ClassArray> klass;
  DArray tau;        // distinct delays (n_classes,)
  DArray omega;      // (N,)
  DArray inv_norm;   // (N,)
  DArray coupling;   // (batch,)

  int n() const { return int(indptr.shape(0)) - 1; }
  CsrGraph graph() const {
    return CsrGraph{indptr.data(), indices.data(), weights.data(),
                    klass ? klass->data() : nullptr, n()};
  }
  void check() const {
    const int N = n();
    if (N < 1) throw py::value_error("adjacency: no nodes");
    const Index E = indices.shape(0);
    require_shape(weights, "adjacency weights", {E});
    if (klass) require_shape(*klass, "edge delay classes", {E});
    require_shape(omega, "omega", {N});
    require_shape(inv_norm, "normalisation", {N});
    require_shape(tau, "tau", {-1});
    require_shape(coupling, "coupling", {-1});
    if (indptr.at(0) != 0 || indptr.at(N) != E)
      throw py::value_error("adjacency: indptr does not match the edge count");
    for (int i = 0; i < N; ++i)
      if (indptr.at(i + 1) < indptr.at(i)) throw py::value_error("adjacency: indptr decreases");
    for (Index e = 0; e < E; ++e) {
      if (indices.at(e) < 0 || indices.at(e) >= N)
        throw py::value_error("adjacency: column index out of range");
      if (klass && klass->at(e) >= tau.shape(0))
        throw py::value_error("edge delay classes: class index out of range");
    }
  }
};

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
        auto make = [&a, g](Index b) {
          return KuramotoNetwork{g, a.omega.data(), a.inv_norm.data(), a.tau.data(),
                                 int(a.tau.shape(0)), a.coupling.at(b), {}};
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
        auto make = [&a, g, lambda](Index b) {
          return StuartLandauNetwork{g,     a.omega.data(), a.inv_norm.data(), a.tau.data(),
                                     int(a.tau.shape(0)), lambda, a.coupling.at(b)};
        };
        return bindings::run_solve(a.coupling.shape(0), 2 * g.n, make, opt, h, t0, t_final,
                                   t_eval, threads, output);
      },
      py::arg("network"), py::arg("lam"), py::arg("history"), py::arg("t0"), py::arg("t_final"),
      py::arg("t_eval"), py::arg("options"), py::arg("threads"), py::arg("output"));
}
