// delyap._core: the only place that knows Python. Each area registers its own functions.
#include <pybind11/pybind11.h>

#include "delyap/dde/trajectory.hpp"

#include "delyap/common/status.hpp"
#include "delyap/dde/options.hpp"
#include "delyap/dde/tableau.hpp"

namespace py = pybind11;
using namespace delyap;

void register_dde_systems(py::module_& m);
void register_lyapunov(py::module_& m);
void register_sgd(py::module_& m);
void register_network_systems(py::module_& m);
void register_fixed_solve(py::module_& m);
void register_neural(py::module_& m);
void register_progress(py::module_& m);
void register_layer_spectrum(py::module_& m);

namespace {

py::dict tableau_dict(const Tableau& t) {
  py::dict d;
  py::list c, a, b, e, dense;
  for (int i = 0; i < t.stages; ++i) {
    c.append(t.c[i]);
    b.append(t.b[i]);
    e.append(t.e[i]);
    py::list row, drow;
    for (int j = 0; j < t.stages; ++j) row.append(t.a[i][j]);
    for (int m = 0; m < t.n_dense; ++m) drow.append(t.dense[i][m]);
    a.append(row);
    dense.append(drow);
  }
  d["name"] = t.name;
  d["stages"] = t.stages;
  d["order"] = t.order;
  d["error_order"] = t.error_order;
  d["fsal"] = t.fsal;
  d["c"] = c;
  d["a"] = a;
  d["b"] = b;
  d["e"] = e;
  d["dense"] = dense;
  return d;
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "delyap's compiled core (private; use the delyap package)";
  m.attr("__version__") = DELYAP_VERSION;

  py::enum_<Method>(m, "Method")
      .value("Euler", Method::Euler)
      .value("RK4", Method::RK4)
      .value("BS3", Method::BS3)
      .value("DP5", Method::DP5);

  py::dict names;
  for (int s = 0; s <= int(Status::kLast); ++s) names[py::int_(s)] = status_name(Status(s));
  m.attr("STATUS_NAMES") = names;
  py::tuple stat_fields(kStatFields);
  for (int i = 0; i < kStatFields; ++i) stat_fields[i] = py::str(kStatFieldNames[i]);
  m.attr("STAT_FIELDS") = stat_fields;  // the columns of every result's stats rows

  py::class_<SolverOptions>(m, "SolverOptions")
      .def(py::init<>())
      .def_readwrite("method", &SolverOptions::method)
      .def_readwrite("rtol", &SolverOptions::rtol)
      .def_readwrite("atol", &SolverOptions::atol)
      .def_readwrite("dt", &SolverOptions::dt)
      .def_readwrite("max_step", &SolverOptions::max_step)
      .def_readwrite("min_step", &SolverOptions::min_step)
      .def_readwrite("max_steps", &SolverOptions::max_steps)
      .def_readwrite("track_discontinuities", &SolverOptions::track_discontinuities)
      .def_readwrite("max_overlap_iterations", &SolverOptions::max_overlap_iterations)
      .def_readwrite("overlap_tol", &SolverOptions::overlap_tol)
      .def_readwrite("safety", &SolverOptions::safety)
      .def_readwrite("min_factor", &SolverOptions::min_factor)
      .def_readwrite("max_factor", &SolverOptions::max_factor);

  // Entry points for tests only, kept out of the public module (python/delyap/_testing.py).
  py::module_ testing = m.def_submodule(
      "_testing", "Test-only entry points of the core; not part of the API (delyap._testing).");
  testing.def("tableau", [](Method meth) { return tableau_dict(tableau_for(meth)); },
              py::arg("method"), "The Butcher tableau the core uses for a method.");

  register_dde_systems(m);
  register_lyapunov(m);
  register_sgd(m);
  register_network_systems(m);
  register_fixed_solve(m);
  register_neural(m);
  register_progress(m);
  register_layer_spectrum(m);
}
