// Neural DDE / ODE forward and discrete adjoint (delyap/nn/neural_dde.hpp) for delyap.nn.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "arrays.hpp"
#include "delyap/lyap/blocked_linalg.hpp"
#include "delyap/nn/neural_dde.hpp"
#include "delyap/parallel/parallel_for.hpp"
#include "delyap/parallel/worker_pool.hpp"
#include "interruptible.hpp"
#include "scipy_blas.hpp"

namespace py = pybind11;
using namespace delyap;
using delyap::bindings::DArray;
using delyap::bindings::require_shape;

namespace {

// Hands a vector to numpy without a copy (the array owns it).
template <class Alloc>
DArray to_array(std::vector<double, Alloc>&& v, std::vector<py::ssize_t> shape) {
  using Vec = std::vector<double, Alloc>;
  auto* p = new Vec(std::move(v));
  py::capsule owner(p, [](void* q) { delete static_cast<Vec*>(q); });
  return DArray(shape, p->data(), owner);
}

nn::Field field_of(const DArray& W, const DArray& Wd, const DArray& b, const DArray& Wout,
                   const DArray& tau, const std::optional<DArray>& w_time,
                   const std::optional<DArray>& W_hidden, const std::optional<DArray>& b_hidden,
                   int activation, bool use_blas, bool small_kernels) {
  require_shape(W, "W", {-1, -1});
  const py::ssize_t H = W.shape(0), D = W.shape(1);
  require_shape(tau, "tau", {-1});
  const py::ssize_t nd = tau.shape(0);
  require_shape(Wd, "W_delay", {nd, H, D});
  require_shape(b, "b", {H});
  require_shape(Wout, "W_out", {D, H});
  if (w_time) require_shape(*w_time, "w_time", {H});
  if (W_hidden.has_value() != b_hidden.has_value())
    throw py::value_error("W_hidden, b_hidden: give both (stacked hidden layers) or neither");
  // W_hidden's rank checked before its shape(0) is read (a 0-d array: IndexError, no name).
  if (W_hidden) require_shape(*W_hidden, "W_hidden", {-1, H, H});
  const py::ssize_t n_stack = W_hidden ? W_hidden->shape(0) : 0;
  if (W_hidden) require_shape(*b_hidden, "b_hidden", {n_stack, H});
  if (activation < 0 || activation > 3) throw py::value_error("activation: unknown code");
  for (py::ssize_t k = 0; k < nd; ++k)
    if (!(tau.at(k) > 0.0)) throw py::value_error("tau: delays must be positive");
  nn::Field f;
  f.dim = int(D);
  f.hidden = int(H);
  f.n_delays = int(nd);
  f.W = W.data();
  f.Wd = Wd.data();
  f.b = b.data();
  f.Wout = Wout.data();
  f.wt = w_time ? w_time->data() : nullptr;
  f.n_stack = int(n_stack);
  f.Vh = W_hidden ? W_hidden->data() : nullptr;
  f.ch = b_hidden ? b_hidden->data() : nullptr;
  f.act = nn::Activation(activation);
  f.small_kernels = small_kernels;
  // scipy's OpenBLAS dgemm when scipy is there (needs the GIL: called before the work starts).
  if (const FortranLapack* blas = use_blas ? bindings::scipy_lapack() : nullptr)
    f.gemm.dgemm = blas->dgemm;
  return f;
}

// Row ranges for `threads` workers (each at least a few rows, so GEMMs stay GEMMs).
std::vector<Index> row_chunks(Index batch, int threads) {
  const int nt = resolve_threads(threads, std::max<Index>(1, batch / 8));
  std::vector<Index> edges(size_t(nt + 1));
  for (int c = 0; c <= nt; ++c) edges[size_t(c)] = batch * c / nt;
  return edges;
}

// Row ranges of a fixed-step pass of `flops` in all: `threads` workers, or for threads <= 0 as
// many as the work pays for (up to all cores). A thread's start and its cold caches cost tens
// of µs, so each gets at least kMinChunkFlops (≈ 0.5 ms at the small kernels' rate): 2 × 32
// at batch 256 with 4 RK4 steps (1.6 MFlop forward) took 40 % more CPU and 30 % more wall
// time on two threads than on one.
constexpr double kMinChunkFlops = 4e6;
std::vector<Index> pass_chunks(Index batch, int threads, double flops) {
  if (threads <= 0)
    threads = resolve_threads(0, std::max<Index>(1, Index(flops / kMinChunkFlops)));
  return row_chunks(batch, threads);
}

py::dict neural_forward(const DArray& h0, const DArray& W, const DArray& Wd, const DArray& b,
                        const DArray& Wout, const DArray& tau, int activation, Method method,
                        double t_final, double rtol, double atol, double dt,
                        const std::optional<DArray>& grid, Index max_steps, int threads,
                        bool use_blas, double activation_bytes, bool small_kernels,
                        const std::optional<DArray>& w_time, const std::optional<DArray>& W_hidden,
                        const std::optional<DArray>& b_hidden) {
  const nn::Field f = field_of(W, Wd, b, Wout, tau, w_time, W_hidden, b_hidden, activation,
                               use_blas, small_kernels);
  require_shape(h0, "h0", {-1, f.dim});
  const Index B = h0.shape(0);
  const Tableau& tab = tableau_for(method);
  if (!(t_final > 0.0)) throw py::value_error("t_final: must be positive");
  // (a NaN budget would keep every activation, an infinite one overflows the step count)
  if (!(activation_bytes >= 0.0 && activation_bytes < 1e18))
    throw py::value_error("activation_bytes: expected a finite byte budget >= 0");
  const double tau_min = nn::min_delay(tau.data(), f.n_delays);
  nn::Trace tr;
  tr.batch = B;
  tr.dim = f.dim;
  tr.stages = tab.stages;
  tr.layers = f.layers();
  std::vector<double> g;
  const bool fixed = grid.has_value() || !tab.adaptive();
  if (grid) {
    require_shape(*grid, "grid", {-1});
    g.assign(grid->data(), grid->data() + grid->size());
    if (g.size() < 2 || g.front() != 0.0)
      throw py::value_error("grid: need at least two times, starting at 0");
    for (size_t i = 1; i < g.size(); ++i)
      if (!(g[i] > g[i - 1])) throw py::value_error("grid: times must increase");
  } else if (fixed) {
    if (!(dt > 0.0)) throw py::value_error("dt: a fixed-step method needs dt > 0");
    g = nn::fixed_grid(t_final, dt);
  }
  if (fixed) {
    for (size_t i = 1; i < g.size(); ++i)
      if (g[i] - g[i - 1] > tau_min * (1.0 + 1e-12))
        throw py::value_error("dt: steps must not exceed the smallest delay (" +
                              std::to_string(tau_min) + "); reads would reach the running step");
    tr.resize(Index(g.size()) - 1);
    std::copy(g.begin(), g.end(), tr.tp);
    if (nn::derivative_from_value(f.act)) tr.keep_activations(f.hidden, activation_bytes);
  } else {
    tr.resize(0);
    // Adaptive: room for the activations of as many steps as the budget holds (a rejected
    // step's are overwritten by its retry).
    if (nn::derivative_from_value(f.act)) tr.keep_activations_upto(f.hidden, activation_bytes);
  }
  std::copy(h0.data(), h0.data() + B * f.dim, tr.x(0, 0));
  SolverOptions opt;
  opt.rtol = rtol;
  opt.atol = atol;
  opt.dt = dt;
  opt.max_steps = max_steps;
  // OpenBLAS on one thread while the pass runs (scipy_blas.hpp says why)
  const bindings::SingleThreadedBlas one_blas_thread(f.gemm.dgemm != nullptr);
  if (!fixed) {
    // One pool for the whole pass: each step's stages run on the row blocks in parallel.
    // Each step ends in a barrier, so a block needs enough work to pay for it: at least
    // 16384 activations (2 x 32 at batch 256 ran 12 % slower on two blocks than on one).
    const Index blocks = std::max<Index>(1, B * f.hidden / 16384);
    const std::vector<Index> edges =
        row_chunks(B, int(std::min<Index>(blocks, resolve_threads(threads, B))));
    bindings::run_interruptible_pass(
        edges.size() == 2, [&](std::atomic<bool>&, auto& cancelled) {
      WorkPoll<std::remove_reference_t<decltype(cancelled)>> poll(cancelled);
      WorkerPool pool(int(edges.size()) - 1);
      nn::forward_adaptive(f, tab, tau.data(), t_final, opt, tr, poll, edges,
                           [&pool](Index n, const std::function<void(Index, Index)>& body) {
                             pool.run(n, body);
                           });
    });
  } else {
    const std::vector<Index> edges =
        pass_chunks(B, threads, double(tr.steps()) * tab.stages * f.flops(B));
    bindings::run_interruptible_pass(
        edges.size() == 2, [&](std::atomic<bool>& cancel, auto& cancelled) {
      parallel_for(Index(edges.size()) - 1, int(edges.size()) - 1, cancel, [&](Index c) {
        WorkPoll<std::remove_reference_t<decltype(cancelled)>> poll(cancelled);
        nn::forward_on_grid(f, tab, tau.data(), tr, edges[size_t(c)],
                            edges[size_t(c + 1)] - edges[size_t(c)], poll);
      });
    });
  }
  const Index N = tr.steps();
  std::vector<double> y(tr.x(N, 0), tr.x(N, 0) + B * f.dim);
  py::dict out;
  out["y"] = to_array(std::move(y), {B, f.dim});
  out["t"] = to_array(std::move(tr.t), {N + 1});
  out["X"] = to_array(std::move(tr.X), {N + 1, B, f.dim});
  out["K"] = to_array(std::move(tr.K), {N, tab.stages, B, f.dim});
  if (tr.Ap) {
    double* a = tr.A.release();
    py::capsule owner(a, &nn::BufferPool::release_fn);
    out["A"] = DArray({N, Index(tab.stages), Index(f.layers()), B, Index(f.hidden)}, a, owner);
  } else {
    out["A"] = py::none();
  }
  out["rejected"] = tr.rejected;
  return out;
}

py::dict neural_backward(const DArray& W, const DArray& Wd, const DArray& b, const DArray& Wout,
                         const DArray& tau, int activation, Method method, const DArray& t,
                         const DArray& X, const DArray& K, const DArray& grad_y, int threads,
                         bool use_blas, const std::optional<DArray>& A, bool small_kernels,
                         const std::optional<DArray>& w_time, const std::optional<DArray>& W_hidden,
                         const std::optional<DArray>& b_hidden) {
  const nn::Field f = field_of(W, Wd, b, Wout, tau, w_time, W_hidden, b_hidden, activation,
                               use_blas, small_kernels);
  const Tableau& tab = tableau_for(method);
  require_shape(t, "t", {-1});
  const Index N = t.shape(0) - 1;
  require_shape(X, "X", {N + 1, -1, f.dim});
  const Index B = X.shape(1);
  require_shape(K, "K", {N, tab.stages, B, f.dim});
  require_shape(grad_y, "grad_y", {B, f.dim});
  nn::Trace tr;  // a view of the arrays: the backward only reads them
  tr.batch = B;
  tr.dim = f.dim;
  tr.stages = tab.stages;
  tr.layers = f.layers();
  tr.n_steps = N;
  tr.tp = const_cast<double*>(t.data());
  tr.Xp = const_cast<double*>(X.data());
  tr.Kp = const_cast<double*>(K.data());
  if (A) {
    if (!nn::derivative_from_value(f.act))
      throw py::value_error("A: stored activations are not used with softplus");
    require_shape(*A, "A", {N, tab.stages, f.layers(), B, f.hidden});
    tr.Ap = const_cast<double*>(A->data());
  }
  std::vector<double> gh0(size_t(B * f.dim));
  // The adjoint costs about twice the forward.
  const std::vector<Index> edges =
      pass_chunks(B, threads, 2.0 * double(N) * tab.stages * f.flops(B));
  std::vector<nn::FieldGrad> parts(edges.size() - 1, nn::FieldGrad(f));
  // OpenBLAS on one thread while the pass runs (scipy_blas.hpp says why)
  const bindings::SingleThreadedBlas one_blas_thread(f.gemm.dgemm != nullptr);
  bindings::run_interruptible_pass(
      edges.size() == 2, [&](std::atomic<bool>& cancel, auto& cancelled) {
    parallel_for(Index(parts.size()), int(parts.size()), cancel, [&](Index c) {
      const Index r0 = edges[size_t(c)], rows = edges[size_t(c + 1)] - r0;
      WorkPoll<std::remove_reference_t<decltype(cancelled)>> poll(cancelled);
      nn::Pass p(f, tab, tau.data(), r0, rows);
      p.backward(tr, grad_y.data() + r0 * f.dim, gh0.data() + r0 * f.dim, parts[size_t(c)],
                 poll);
    });
  });
  nn::FieldGrad g = parts[0];
  for (size_t c = 1; c < parts.size(); ++c) g.add(parts[c]);  // in chunk order: deterministic
  py::dict out;
  out["h0"] = to_array(std::move(gh0), {B, f.dim});
  out["W"] = to_array(std::move(g.W), {f.hidden, f.dim});
  out["W_delay"] = to_array(std::move(g.Wd), {f.n_delays, f.hidden, f.dim});
  out["b"] = to_array(std::move(g.b), {f.hidden});
  out["W_out"] = to_array(std::move(g.Wout), {f.dim, f.hidden});
  out["tau"] = to_array(std::move(g.tau), {f.n_delays});
  if (f.wt) {
    out["w_time"] = to_array(std::move(g.wt), {f.hidden});
  } else {
    out["w_time"] = py::none();
  }
  if (f.Vh) {
    out["W_hidden"] = to_array(std::move(g.Vh), {f.n_stack, f.hidden, f.hidden});
    out["b_hidden"] = to_array(std::move(g.ch), {f.n_stack, f.hidden});
  } else {
    out["W_hidden"] = py::none();
    out["b_hidden"] = py::none();
  }
  return out;
}

// The interpolant's read weights at θ (neural_dde.hpp: read_weights), so that the torch
// evaluation path (delyap.nn.odeint_dde) reads delayed states exactly as the core does.
py::tuple neural_read_weights(Method method, double theta) {
  const Tableau& tab = tableau_for(method);
  nn::Read r;
  nn::read_weights(tab, theta, &r);
  return py::make_tuple(std::vector<double>(r.w, r.w + tab.stages), r.w_end,
                        std::vector<double>(r.dw, r.dw + tab.stages), r.dw_end);
}

}  // namespace

void register_neural(py::module_& m) {
  m.def("neural_forward", &neural_forward, py::arg("h0"), py::arg("W"), py::arg("W_delay"),
        py::arg("b"), py::arg("W_out"), py::arg("tau"), py::arg("activation"), py::arg("method"),
        py::arg("t_final"), py::arg("rtol"), py::arg("atol"), py::arg("dt"), py::arg("grid"),
        py::arg("max_steps"), py::arg("threads"), py::arg("use_blas") = true,
        py::arg("activation_bytes") = 0.0, py::arg("small_kernels") = true,
        py::arg("w_time") = py::none(), py::arg("W_hidden") = py::none(),
        py::arg("b_hidden") = py::none(),
        "Batched neural DDE forward pass; returns y and the stored pass (t, X, K, and A, the "
        "activations (steps, stages, layers, batch, hidden), when they fit in activation_bytes; "
        "else None). use_blas: layer products through scipy's BLAS when available (False: "
        "Eigen; tests). small_kernels: at dim <= 8 the layer products through delyap's own "
        "kernels instead (False: BLAS/Eigen; tests). w_time: the time input's weights "
        "(hidden,), adding w_time*t to the pre-activations (None: an autonomous field). "
        "W_hidden (n, hidden, hidden), b_hidden (n, hidden): n stacked hidden layers "
        "a_l = act(W_hidden[l-1] a_{l-1} + b_hidden[l-1]) after the first (None: one layer).");
  m.def("neural_backward", &neural_backward, py::arg("W"), py::arg("W_delay"), py::arg("b"),
        py::arg("W_out"), py::arg("tau"), py::arg("activation"), py::arg("method"), py::arg("t"),
        py::arg("X"), py::arg("K"), py::arg("grad_y"), py::arg("threads"),
        py::arg("use_blas") = true, py::arg("A") = py::none(), py::arg("small_kernels") = true,
        py::arg("w_time") = py::none(), py::arg("W_hidden") = py::none(),
        py::arg("b_hidden") = py::none(),
        "Discrete adjoint of a stored neural DDE pass (step sequence held fixed); A: the "
        "forward's stored activations (None: recomputed). use_blas, small_kernels, w_time, "
        "W_hidden, b_hidden: as neural_forward (their gradients are None without them).");
  m.def("neural_read_weights", &neural_read_weights, py::arg("method"), py::arg("theta"),
        "Weights (w, w_end, dw, dw_end) of a delayed read at θ within a stored step.");
}
