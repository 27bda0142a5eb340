// Solve entry points for each system: build per-trajectory system objects from (broadcast)
// parameter arrays and hand them to the shared runner.
#include <pybind11/functional.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <exception>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "builtin_systems.hpp"
#include "interruptible.hpp"
#include "lyapunov_runner.hpp"
#include "solve_runner.hpp"
#include "system_params.hpp"

namespace py = pybind11;
using namespace delyap;
using delyap::bindings::DArray;
using delyap::bindings::HistoryArgs;
using delyap::bindings::OutputSpec;
using delyap::bindings::require_shape;
using delyap::bindings::Builtin;
using delyap::bindings::ParamArrays;

namespace {

// The parameter names of a built-in system, in the order its arrays are passed.
template <class System>
std::string parameter_list() {
  std::string s;
  for (const char* p : System::kParameters) s += (s.empty() ? "" : ", ") + std::string(p);
  return s;
}

// solve_<name>, <name>_rhs and <name>_jacobian of a registered built-in system.
template <class System>
void register_solve(py::module_& m, const std::string& name) {
  const std::string params = "params: the arrays [" + parameter_list<System>() + "]";
  // The order in which the Python class passes its arrays (tests check the two agree).
  py::tuple names(std::size(System::kParameters));
  for (std::size_t i = 0; i < std::size(System::kParameters); ++i)
    names[i] = py::str(System::kParameters[i]);
  m.attr("BUILTIN_PARAMETERS")[name.c_str()] = names;
  m.def(
      ("solve_" + name).c_str(),
      [name](const ParamArrays& p, const HistoryArgs& h, double t0, double t_final,
             std::optional<DArray> t_eval, const SolverOptions& opt, int threads,
             const OutputSpec& output) {
        const Builtin<System> sys(p, name);
        return bindings::run_solve(sys.size, sys.dim, [&sys](Index b) { return sys.at(b); },
                                   opt, h, t0, t_final, t_eval, threads, output);
      },
      py::arg("params"), py::arg("history"), py::arg("t0"), py::arg("t_final"),
      py::arg("t_eval"), py::arg("options"), py::arg("threads"), py::arg("output"),
      ("Solve a batch of " + name + " systems; " + params + ".").c_str());
  m.def(
      (name + "_rhs").c_str(),
      [name](const ParamArrays& p, Index b, double t, const DArray& x, const DArray& xd) {
        return bindings::rhs_at(Builtin<System>(p, name).checked_at(b), t, x, xd);
      },
      py::arg("params"), py::arg("index"), py::arg("t"), py::arg("x"), py::arg("x_delayed"),
      ("f(t, x, x_delayed) of trajectory `index`; " + params + ".").c_str());
  m.def(
      (name + "_jacobian").c_str(),
      [name](const ParamArrays& p, Index b, double t, const DArray& x, const DArray& xd) {
        return bindings::jacobian_at(Builtin<System>(p, name).checked_at(b), t, x, xd);
      },
      py::arg("params"), py::arg("index"), py::arg("t"), py::arg("x"), py::arg("x_delayed"),
      ("(df/dx, df/dx_delayed) of trajectory `index`; " + params + ".").c_str());
}

// ---- Python right-hand side -----------------------------------------------------------------
// The whole batch is one state of size batch·dim stepped in lockstep (one adaptive step for
// all), so f is called once per stage with every trajectory: f(t, x[batch, dim],
// x_delayed[batch, n_delays, dim]) -> [batch, dim].
struct PythonSystem {
  py::object f;
  int batch, d, nd;
  const double* tau;
  std::shared_ptr<std::exception_ptr> error;
  py::object tau_fn;        // None: constant delays `tau`; else τ(t, x) for one trajectory
  double declared_window;   // max_delay for dependent delays
  bool is_neutral;          // f(t, x, x_delayed, x_delayed_dot)
  py::object jac = py::none();  // jac(t, x, x_delayed) -> (∂f/∂x, ∂f/∂x_τ) for Lyapunov spectra

  int dim() const { return batch * d; }
  int n_delays() const { return nd; }
  double delay(int k) const { return tau[k]; }
  bool dependent_delays() const { return !tau_fn.is_none(); }
  double max_delay() const { return declared_window; }
  bool neutral() const { return is_neutral; }

  bool delays(double t, const double* x, double* out) const {  // tau_fn given (delays_at)
    if (bindings::interrupt_requested()) return false;
    py::gil_scoped_acquire gil;
    try {
      py::array_t<double> xa({batch, d});
      std::copy(x, x + Index(batch) * d, xa.mutable_data());
      auto r = py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(
          tau_fn(t, xa));
      if (!r || r.size() != nd)
        throw py::value_error("tau(t, x) must return " + std::to_string(nd) + " delays");
      std::copy(r.data(), r.data() + nd, out);
      return true;
    } catch (...) {
      *error = std::current_exception();
      return false;
    }
  }

  bool rhs(double t, const double* x, const double* xd, double* out) const {
    return call(t, x, xd, nullptr, out);
  }

  // Single-trajectory Jacobians from the user's callable: (dim, dim) and (n_delays, dim, dim).
  void jacobian(double t, const double* x, const double* xd, double* jx, double* jd) const {
    if (bindings::interrupt_requested()) {  // poisons the step as an error does: run stops
      for (Index i = 0; i < Index(d) * d; ++i) jx[i] = NAN;
      return;
    }
    py::gil_scoped_acquire gil;
    try {
      py::array_t<double> xa({batch, d});
      std::copy(x, x + Index(batch) * d, xa.mutable_data());
      py::tuple r = jac(t, xa, delayed_array(xd));
      if (r.size() != 2) throw py::value_error("jac must return (df_dx, df_dx_delayed)");
      auto a = py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(r[0]);
      auto b = py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(r[1]);
      if (!a || a.size() != Index(d) * d)
        throw py::value_error("jac: df_dx must have shape (" + std::to_string(d) + ", " +
                              std::to_string(d) + ")");
      if (!b || b.size() != Index(nd) * d * d)
        throw py::value_error("jac: df_dx_delayed must have shape (" + std::to_string(nd) + ", " +
                              std::to_string(d) + ", " + std::to_string(d) + ")");
      std::copy(a.data(), a.data() + a.size(), jx);
      std::copy(b.data(), b.data() + b.size(), jd);
    } catch (...) {
      if (!*error) *error = std::current_exception();
      for (Index i = 0; i < Index(d) * d; ++i) jx[i] = NAN;  // poisons the step: run stops
    }
  }
  bool rhs_neutral(double t, const double* x, const double* xd, const double* xdd,
                   double* out) const {
    return call(t, x, xd, xdd, out);
  }

 private:
  py::object delayed_array(const double* v) const {
    py::array_t<double> a({nd, batch, d});
    std::copy(v, v + Index(nd) * batch * d, a.mutable_data());
    return a.attr("transpose")(1, 0, 2);
  }

  // Each call may be slow, so a Ctrl-C is honoured between stages, not only between steps
  // (the step then fails as a raising f would; the caller re-raises the KeyboardInterrupt).
  bool call(double t, const double* x, const double* xd, const double* xdd, double* out) const {
    if (bindings::interrupt_requested()) return false;
    py::gil_scoped_acquire gil;
    try {
      py::array_t<double> xa({batch, d});
      std::copy(x, x + Index(batch) * d, xa.mutable_data());
      py::object r = xdd ? f(t, xa, delayed_array(xd), delayed_array(xdd))
                         : f(t, xa, delayed_array(xd));
      const std::string expected =
          "expected shape (" + std::to_string(batch) + ", " + std::to_string(d) + ")";
      py::array raw = py::array::ensure(r);
      if (!raw || raw.dtype().kind() == 'O' || raw.dtype().kind() == 'c' ||
          raw.dtype().kind() == 'U' || raw.dtype().kind() == 'S')
        throw py::type_error("f must return an array of floats (real, " + expected + "), got " +
                             std::string(py::repr(r)).substr(0, 80));
      auto ra = py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(raw);
      const bool flat_ok = ra.ndim() == 1 && batch == 1 && ra.shape(0) == d;
      if (!flat_ok && !(ra.ndim() == 2 && ra.shape(0) == batch && ra.shape(1) == d)) {
        std::string shape = "(";
        for (py::ssize_t k = 0; k < ra.ndim(); ++k)
          shape += (k ? ", " : "") + std::to_string(ra.shape(k));
        throw py::value_error("f returned shape " + shape + (ra.ndim() == 1 ? ",)" : ")") +
                              ", " + expected);
      }
      std::copy(ra.data(), ra.data() + Index(batch) * d, out);
      return true;
    } catch (...) {
      *error = std::current_exception();
      return false;
    }
  }
};

py::dict solve_python(py::object f, int batch, int dim, const DArray& tau, py::object tau_fn,
                      double max_delay, bool neutral, const HistoryArgs& h, double t0,
                      double t_final, std::optional<DArray> t_eval, const SolverOptions& opt,
                      const OutputSpec& output) {
  require_shape(tau, "tau", {-1});
  // History and y0 arrive per trajectory; the core sees one flat state of size batch·dim.
  auto flat = [batch, dim](const DArray& a) {
    return DArray(a.attr("transpose")(1, 0, 2).attr("reshape")(1, a.shape(1), batch * dim));
  };
  HistoryArgs hf{h.t, flat(h.x), flat(h.f), DArray(h.y0.attr("reshape")(1, batch * dim)),
                 h.jumps};
  auto error = std::make_shared<std::exception_ptr>();
  PythonSystem sys{f, batch, dim, int(tau.shape(0)), tau.data(), error, tau_fn, max_delay,
                   neutral};
  py::dict r = bindings::run_solve(1, batch * dim, [&sys](Index) { return sys; }, opt, hf, t0,
                                   t_final, t_eval, 1, output);
  if (*error) std::rethrow_exception(*error);
  return r;
}

}  // namespace

py::dict lyapunov_python(py::object f, py::object jac, int dim, const DArray& tau,
                         const DArray& ht, const DArray& hx, const DArray& hf, const DArray& y0,
                         double t_transient, double t_total, double renorm, int k, int anchors,
                         const SolverOptions& opt, int n_blocks, Index n_running) {
  require_shape(tau, "tau", {-1});
  auto error = std::make_shared<std::exception_ptr>();
  PythonSystem sys{f, 1, dim, int(tau.shape(0)), tau.data(), error, py::none(), 0.0, false, jac};
  const DdeLyapunovProblem lp =
      bindings::dde_lyapunov_problem(0.0, t_transient, t_total, renorm, k, anchors);
  py::dict r = bindings::run_dde_lyapunov(1, dim, [&sys](Index) { return sys; }, opt, ht, hx, hf,
                                          y0, lp, n_blocks, n_running, 1);
  if (*error) std::rethrow_exception(*error);
  return r;
}

void register_dde_systems(py::module_& m) {
  m.def("lyapunov_python", &lyapunov_python, py::arg("f"), py::arg("jac"), py::arg("dim"),
        py::arg("tau"), py::arg("t"), py::arg("x"), py::arg("f_hist"), py::arg("y0"),
        py::arg("t_transient"), py::arg("t_total"), py::arg("renorm_interval"), py::arg("k"),
        py::arg("anchors_needed"), py::arg("options"), py::arg("n_blocks"),
        py::arg("n_running"));
  py::class_<OutputSpec>(m, "OutputSpec")
      .def(py::init<int, std::vector<Index>>(), py::arg("mode") = 0,
           py::arg("components") = std::vector<Index>{});
  py::class_<HistoryArgs>(m, "HistoryArgs")
      .def(py::init<DArray, DArray, DArray, DArray, DArray>(), py::arg("t"), py::arg("x"),
           py::arg("f"), py::arg("y0"), py::arg("jumps"));

  m.def("solve_python", &solve_python, py::arg("f"), py::arg("batch"), py::arg("dim"),
        py::arg("tau"), py::arg("tau_fn"), py::arg("max_delay"), py::arg("neutral"),
        py::arg("history"), py::arg("t0"), py::arg("t_final"),
        py::arg("t_eval"), py::arg("options"), py::arg("output"));

  // The registry: every built-in system's entry points and parameter names.
  m.attr("BUILTIN_PARAMETERS") = py::dict();
#define DELYAP_REGISTER_SOLVE(System, name) register_solve<System>(m, #name);
  DELYAP_BUILTIN_SYSTEMS(DELYAP_REGISTER_SOLVE)
#undef DELYAP_REGISTER_SOLVE
}
