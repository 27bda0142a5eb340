// Solve entry points for delay-coupled oscillator networks on sparse digraphs. A batch sweeps
// the coupling strength (one trajectory per value) on a shared graph.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>
#include <optional>

#include "delyap/dde/rhs/network.hpp"
#include "dense_blocked.hpp"
#include "lyapunov_runner.hpp"
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

// vectors: 1 + the tangent vectors a Lyapunov run carries (each costs about one more sum over
// the edges).
std::unique_ptr<WorkerPool> rhs_pool(const NetworkArgs& a, int threads, Index vectors = 1) {
  const Index edges = a.indices.shape(0) * vectors;
  if (a.coupling.shape(0) != 1 || edges < kParallelRhsEdges) return nullptr;
  const int nt = resolve_threads(threads, edges / (kParallelRhsEdges / 2));
  return nt > 1 ? std::make_unique<WorkerPool>(nt) : nullptr;
}

// The tangent products' GEMM on dense graphs: the ISA-dispatched blocked kernel. Never polled
// (one product is milliseconds; the integrator checks Ctrl-C between steps).
bool dense_multiply(const double* A, Index d, const double* q, Index k, double* out) {
  auto never = [] { return false; };
  WorkPoll<decltype(never)> poll(never);
  return bindings::blocked_multiply_host(A, d, q, k, out, PollRef::of(poll));
}

KuramotoNetwork kuramoto_at(const NetworkArgs& a, const CsrGraph& g, Index b, WorkerPool* pool) {
  return KuramotoNetwork{g,
                         a.omega.data(),
                         a.inv_norm.data(),
                         a.tau.data(),
                         int(a.tau.shape(0)),
                         a.coupling.at(b),
                         {},
                         pool,
                         a.alpha,
                         {},
                         &dense_multiply,
                         {},
                         {}};
}

StuartLandauNetwork stuart_landau_at(const NetworkArgs& a, const CsrGraph& g, double lambda,
                                     Index b, WorkerPool* pool) {
  return StuartLandauNetwork{g,      a.omega.data(),      a.inv_norm.data(),
                             a.tau.data(), int(a.tau.shape(0)), lambda,
                             a.coupling.at(b), pool,  {}};
}

// The re-orthonormalisation's QR: blocked BLAS-3 (Eigen) from 16 directions on tall windows,
// the core's Householder loops below. Never polled: the integrator checks Ctrl-C between
// steps, and a stopped QR would read as a numerical failure.
struct NetworkTangentQr {
  bool operator()(double* w, Index rows, int k, double* r, double* work) const {
    if (k >= 16 && rows >= bindings::kBlockedQrMinDim) {
      auto never = [] { return false; };
      WorkPoll<decltype(never)> poll(never);
      return bindings::blocked_qr_host(w, rows, k, r, PollRef::of(poll));
    }
    return PortableTangentQr{}(w, rows, k, r, work);
  }
};

// The arguments every Lyapunov entry point shares (lyapunov.py's _lyapunov args).
struct LyapArgs {
  DArray t, x, f, y0;
  double t0, t_transient, t_total, renorm;
  int k, anchors;
  SolverOptions opt;
  int n_blocks;
  Index n_running;
  int threads;
};

template <class Make>
py::dict network_lyapunov(const NetworkArgs& a, int dim, const LyapArgs& l, const Make& make) {
  const DdeLyapunovProblem lp = bindings::dde_lyapunov_problem(l.t0, l.t_transient, l.t_total,
                                                               l.renorm, l.k, l.anchors);
  std::unique_ptr<WorkerPool> pool = rhs_pool(a, l.threads, 1 + l.k);
  const CsrGraph g = a.graph();
  return bindings::run_dde_lyapunov(
      a.coupling.shape(0), dim, [&](Index b) { return make(g, b, pool.get()); }, l.opt, l.t, l.x,
      l.f, l.y0, lp, l.n_blocks, l.n_running, l.threads, NetworkTangentQr{});
}

}  // namespace

void register_network_systems(py::module_& m) {
  py::class_<NetworkArgs>(m, "NetworkArgs")
      .def(py::init<IndexArray, IntArray, DArray, std::optional<ClassArray>, DArray, DArray, DArray,
                    DArray>(),
           py::arg("indptr"), py::arg("indices"), py::arg("weights"), py::arg("klass"),
           py::arg("tau"), py::arg("omega"), py::arg("inv_norm"), py::arg("coupling"))
      .def_readwrite("alpha", &NetworkArgs::alpha);

  m.def(
      "solve_kuramoto",
      [](const NetworkArgs& a, const HistoryArgs& h, double t0, double t_final,
         std::optional<DArray> t_eval, const SolverOptions& opt, int threads,
         const OutputSpec& output) {
        a.check();
        const CsrGraph g = a.graph();
        std::unique_ptr<WorkerPool> pool = rhs_pool(a, threads);
        auto make = [&a, g, &pool](Index b) { return kuramoto_at(a, g, b, pool.get()); };
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
          return stuart_landau_at(a, g, lambda, b, pool.get());
        };
        return bindings::run_solve(a.coupling.shape(0), 2 * g.n, make, opt, h, t0, t_final,
                                   t_eval, threads, output);
      },
      py::arg("network"), py::arg("lam"), py::arg("history"), py::arg("t0"), py::arg("t_final"),
      py::arg("t_eval"), py::arg("options"), py::arg("threads"), py::arg("output"));

  // Lyapunov spectra on the sparse tangent products (network.hpp's tangent_rhs).
  // The argument list of every lyapunov_* entry point (lyapunov.py's _lyapunov args).
  auto lyap_args = [](const DArray& t, const DArray& x, const DArray& f, const DArray& y0,
                      double t0, double t_transient, double t_total, double renorm, int k,
                      int anchors, const SolverOptions& opt, int n_blocks, Index n_running,
                      int threads) {
    return LyapArgs{t,       x,      f,   y0,       t0,         t_transient, t_total,
                    renorm,  k,      anchors, opt, n_blocks, n_running,  threads};
  };
  m.def(
      "lyapunov_kuramoto",
      [lyap_args](const NetworkArgs& a, const DArray& t, const DArray& x, const DArray& f,
                  const DArray& y0, double t0, double t_transient, double t_total, double renorm,
                  int k, int anchors, const SolverOptions& opt, int n_blocks, Index n_running,
                  int threads) {
        a.check();
        const LyapArgs l = lyap_args(t, x, f, y0, t0, t_transient, t_total, renorm, k, anchors,
                                     opt, n_blocks, n_running, threads);
        return network_lyapunov(a, a.n(), l, [&a](const CsrGraph& g, Index b, WorkerPool* p) {
          return kuramoto_at(a, g, b, p);
        });
      },
      py::arg("network"), py::arg("t"), py::arg("x"), py::arg("f"), py::arg("y0"),
      py::arg("t0"), py::arg("t_transient"), py::arg("t_total"), py::arg("renorm_interval"),
      py::arg("k"), py::arg("anchors_needed"), py::arg("options"), py::arg("n_blocks"),
      py::arg("n_running"), py::arg("threads"));
  m.def(
      "lyapunov_stuart_landau",
      [lyap_args](const NetworkArgs& a, double lambda, const DArray& t, const DArray& x,
                  const DArray& f, const DArray& y0, double t0, double t_transient,
                  double t_total, double renorm, int k, int anchors, const SolverOptions& opt,
                  int n_blocks, Index n_running, int threads) {
        a.check();
        const LyapArgs l = lyap_args(t, x, f, y0, t0, t_transient, t_total, renorm, k, anchors,
                                     opt, n_blocks, n_running, threads);
        return network_lyapunov(a, 2 * a.n(), l,
                                [&a, lambda](const CsrGraph& g, Index b, WorkerPool* p) {
                                  return stuart_landau_at(a, g, lambda, b, p);
                                });
      },
      py::arg("network"), py::arg("lam"), py::arg("t"), py::arg("x"), py::arg("f"),
      py::arg("y0"), py::arg("t0"), py::arg("t_transient"), py::arg("t_total"),
      py::arg("renorm_interval"), py::arg("k"), py::arg("anchors_needed"), py::arg("options"),
      py::arg("n_blocks"), py::arg("n_running"), py::arg("threads"));

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
          auto make = [&a, g, &lam](Index b) { return stuart_landau_at(a, g, *lam, b, nullptr); };
          return bindings::run_vector_solve(batch, 2 * g.n, make, opt, h, t0, t_final, t_eval,
                                            output, HostVectorExec{});
        }
        auto make = [&a, g](Index b) { return kuramoto_at(a, g, b, nullptr); };
        return bindings::run_vector_solve(batch, g.n, make, opt, h, t0, t_final, t_eval, output,
                                          HostVectorExec{});
      },
      py::arg("network"), py::arg("lam"), py::arg("history"), py::arg("t0"), py::arg("t_final"),
      py::arg("t_eval"), py::arg("options"), py::arg("output"));
}
