// Lyapunov entry points: i.i.d. random matrix products, DDE spectra of the built-in systems,
// and the Householder QR used by both (exposed for tests).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <atomic>
#include <string>
#include <vector>

#include "builtin_systems.hpp"
#include "delyap/dde/system_traits.hpp"
#include "delyap/lyap/iid_product.hpp"
#include "dense_blocked.hpp"
#include "lyapunov_runner.hpp"
#include "scipy_blas.hpp"
#include "system_params.hpp"

namespace py = pybind11;
using namespace delyap;
using delyap::bindings::DArray;
using delyap::bindings::require_shape;

namespace {

py::dict iid_product(const DArray& matrices, const DArray& cumulative, int k, Index steps,
                     Index transient, int renorm_interval, uint64_t seed, int n_blocks,
                     Index n_running, int threads, uint64_t stream_offset) {
  require_shape(matrices, "matrices", {-1, -1, -1, -1});
  const Index P = matrices.shape(0);
  const int M = int(matrices.shape(1)), d = int(matrices.shape(2));
  require_shape(matrices, "matrices", {P, M, d, d});
  require_shape(cumulative, "probabilities", {P, M});
  if (k < 1 || k > d) throw py::value_error("n_exponents: must be between 1 and the dimension");
  if (steps < 1) throw py::value_error("steps: must be positive");
  bindings::LyapunovOutputs out(P, k, n_blocks, n_running);
  py::array_t<double> vectors({P, Index(d), Index(k)});  // columns are the directions
  const Index n_total = (steps + renorm_interval - 1) / renorm_interval;
  std::atomic<bool> cancel{false};
  const double* mats = matrices.data();
  const double* cum = cumulative.data();
  double* vec = vectors.mutable_data();
  const bindings::HostDense dense = bindings::host_dense(d);  // needs the GIL
  bindings::run_interruptible(cancel, [&]() {
    parallel_for(P, threads, cancel, [&](Index i) {
      IidProductProblem p{mats + i * M * d * d, cum + i * M, M, d, k, steps, transient,
                          renorm_interval, seed, stream_offset + uint64_t(i)};
      LyapunovAccumulator acc = out.accumulator(i, n_total);
      std::vector<double> scratch(2 * Index(d) * k + Index(k) * k + d + 2 * Index(k));
      std::vector<double> q(Index(d) * k);
      auto is_cancelled = [&cancel]() { return cancel.load(std::memory_order_relaxed); };
      const Status st = run_iid_product(p, acc, q.data(), scratch.data(), is_cancelled, dense);
      out.finish(i, acc, st);
      // q is column-major d × k; the output is row-major (d, k).
      for (int c = 0; c < k; ++c)
        for (int r = 0; r < d; ++r) vec[i * d * k + r * k + c] = q[c * d + r];
    });
  });
  py::dict res = out.to_dict();
  res["vectors"] = vectors;
  return res;
}

// Thin QR of a (n × k, k ≤ n) by `qr(colmajor, n, k, r)`, returned as numpy (Q, R): the test
// hooks of the portable and the blocked kernels.
template <class Qr>
py::tuple thin_qr(const DArray& a, Qr&& qr) {
  require_shape(a, "a", {-1, -1});
  const Index n = a.shape(0), k = a.shape(1);
  if (k > n) throw py::value_error("a: needs at least as many rows as columns");
  std::vector<double> colmajor(n * k), r(k * k);
  for (Index i = 0; i < n; ++i)
    for (Index j = 0; j < k; ++j) colmajor[j * n + i] = a.at(i, j);
  qr(colmajor.data(), n, k, r.data());
  py::array_t<double> q({n, k}), rr({k, k});
  for (Index i = 0; i < n; ++i)
    for (Index j = 0; j < k; ++j) q.mutable_at(i, j) = colmajor[j * n + i];
  for (Index i = 0; i < k; ++i)
    for (Index j = 0; j < k; ++j) rr.mutable_at(i, j) = r[j * k + i];
  return py::make_tuple(q, rr);
}

// lyapunov_<name> of a registered built-in system.
template <class System>
void register_lyapunov_of(py::module_& m, const std::string& name) {
  m.def(
      ("lyapunov_" + name).c_str(),
      [name](const bindings::ParamArrays& p, const DArray& ht, const DArray& hx,
             const DArray& hf, const DArray& y0, double t0, double t_transient, double t_total,
             double renorm, int k, int anchors, const SolverOptions& opt, int n_blocks,
             Index n_running, int threads) {
        const bindings::Builtin<System> sys(p, name);
        // The tangent integration reads the delayed tangent at fixed lags.
        for (Index b = 0; b < sys.size; ++b)
          if (dependent_delays(sys.at(b)))
            throw py::value_error(name + ": Lyapunov spectra need constant delays");
        return bindings::run_dde_lyapunov(
            sys.size, sys.dim, [&sys](Index b) { return sys.at(b); }, opt, ht, hx, hf, y0,
            bindings::dde_lyapunov_problem(t0, t_transient, t_total, renorm, k, anchors), n_blocks, n_running,
            threads);
      },
      py::arg("params"), py::arg("t"), py::arg("x"), py::arg("f"), py::arg("y0"), py::arg("t0"),
      py::arg("t_transient"), py::arg("t_total"), py::arg("renorm_interval"), py::arg("k"),
      py::arg("anchors_needed"), py::arg("options"), py::arg("n_blocks"), py::arg("n_running"),
      py::arg("threads"), ("Lyapunov spectra of a batch of " + name + " systems.").c_str());
}

}  // namespace

void register_lyapunov(py::module_& m) {
  py::module_ testing = m.def_submodule("_testing");  // test-only entry points (module.cpp)
  testing.def(
      "philox4x32",
      [](uint64_t seed, uint64_t stream, uint64_t counter) {
        const Philox4x32 r = philox4x32(seed, stream, counter);
        return py::make_tuple(r.v[0], r.v[1], r.v[2], r.v[3]);
      },
      py::arg("seed"), py::arg("stream"), py::arg("counter"),
      "Philox4x32-10 block for key = seed, counter = (counter, stream).");
  testing.def(
      "philox_uniforms",
      [](uint64_t seed, uint64_t stream, long long n) {
        py::array_t<double> out(2 * n);
        for (long long i = 0; i < n; ++i)
          uniform2(seed, stream, uint64_t(i), out.mutable_data() + 2 * i,
                   out.mutable_data() + 2 * i + 1);
        return out;
      },
      py::arg("seed"), py::arg("stream"), py::arg("n"),
      "The first 2n uniforms of (seed, stream), as the CUDA module draws them.");
  m.def("iid_product", &iid_product, py::arg("matrices"), py::arg("cumulative"), py::arg("k"),
        py::arg("steps"), py::arg("transient"), py::arg("renorm_interval"), py::arg("seed"),
        py::arg("n_blocks"), py::arg("n_running"), py::arg("threads"),
        py::arg("stream_offset") = 0,
        "Problem i draws from Philox stream stream_offset + i: a sub-batch run elsewhere (a "
        "Dask chunk) passes its global offset and reproduces the whole batch's results.");
  m.def("blocked_linalg_isa", &bindings::blocked_linalg_isa,
        "Which build of the blocked products and QR runs here (x86-64-v4/v3 or portable).");
  testing.def(
      "householder_qr",
      [](const DArray& a) {
        return thin_qr(a, [](double* q, Index n, Index k, double* r) {
          std::vector<double> work(n + k);
          householder_qr(q, n, n, int(k), r, work.data());
        });
      },
      py::arg("a"), "Thin QR (Q, R) with positive diag(R), by the core's Householder routine.");
  testing.def(
      "blocked_qr",
      [](const DArray& a, bool scipy) {
        const FortranLapack* f = scipy ? bindings::scipy_lapack() : nullptr;
        if (scipy && !f) throw py::value_error("scipy: its BLAS/LAPACK is not available");
        return thin_qr(a, [f](double* q, Index n, Index k, double* r) {
          auto never = [] { return false; };
          WorkPoll<decltype(never)> poll(never);
          if (f)
            bindings::lapack_qr_host(*f, q, n, k, r, PollRef::of(poll));
          else
            bindings::blocked_qr_host(q, n, k, r, PollRef::of(poll));
        });
      },
      py::arg("a"), py::arg("scipy") = false,
      "Thin QR (Q, R) with positive diag(R), by the blocked host kernel on Eigen or on scipy's "
      "LAPACK.");
  testing.def(
      "dense_backend",
      [](int d, int k) {
        const bindings::HostDense dense = bindings::host_dense(d);
        const char* product = dense.on_lapack(d, k) ? "scipy" : "eigen";
        const char* qr = dense.qr_on_lapack(k) ? "scipy" : "eigen";
        return py::make_tuple(d < bindings::kBlockedMultiplyMinDim ? "portable" : product,
                              d < bindings::kBlockedQrMinDim ? "portable" : qr);
      },
      py::arg("d"), py::arg("k"),
      "Which kernels iid_product runs for d × k directions: (product, QR), each 'portable', 'eigen' "
      "or 'scipy'.");
#define DELYAP_REGISTER_LYAPUNOV(System, name) register_lyapunov_of<System>(m, #name);
  DELYAP_BUILTIN_SYSTEMS(DELYAP_REGISTER_LYAPUNOV)
#undef DELYAP_REGISTER_LYAPUNOV
}
