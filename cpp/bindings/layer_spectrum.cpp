// Depth-wise Lyapunov spectra of random deep networks over a (σ_w, σ_b) grid (layer_product.hpp).
// Bindings only: argument checks, the GIL-free parallel loop over grid points, numpy outputs.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <atomic>
#include <cmath>
#include <vector>

#include "delyap/lyap/layer_product.hpp"
#include "dense_blocked.hpp"
#include "interruptible.hpp"
#include "scipy_blas.hpp"

namespace py = pybind11;
using namespace delyap;

namespace {

using DArray = py::array_t<double, py::array::c_style | py::array::forcecast>;

RandomNetworkProblem make_problem(int width, int depth, int k, int n_inputs, double input_scale,
                                  int activation, uint64_t seed, uint64_t stream) {
  if (width < 1) throw py::value_error("width: must be positive");
  if (depth < 1) throw py::value_error("depth: must be positive");
  if (k < 1 || k > width) throw py::value_error("n_exponents: must be between 1 and width");
  if (n_inputs < 1) throw py::value_error("n_inputs: must be positive");
  if (activation < 0 || activation > 2) throw py::value_error("activation: unknown code");
  return RandomNetworkProblem{width, depth, k, n_inputs, input_scale,
                              LayerActivation(activation), seed, stream};
}

// Grid points (σ_w[g], σ_b[g]) on the common draws of (seed, stream 0), split into one
// contiguous chunk per worker (each worker draws the layers once for its chunk). Returns logs
// (P, n_inputs, k) summed over layers, and status (P,).
py::dict random_network_sweep(const DArray& sigma_w, const DArray& sigma_b, int width,
                              int depth, int k, int n_inputs, double input_scale,
                              int activation, uint64_t seed, int threads) {
  if (sigma_w.ndim() != 1 || sigma_b.ndim() != 1 || sigma_w.shape(0) != sigma_b.shape(0))
    throw py::value_error("sigma_w, sigma_b: expected two 1-D arrays of the same length");
  const Index P = sigma_w.shape(0);
  const RandomNetworkProblem p =
      make_problem(width, depth, k, n_inputs, input_scale, activation, seed, 0);
  py::array_t<double> logs({P, Index(n_inputs), Index(k)});
  py::array_t<int> status(P);
  const double* sw = sigma_w.data();
  const double* sb = sigma_b.data();
  double* out = logs.mutable_data();
  int* st = status.mutable_data();
  for (Index g = 0; g < P; ++g) st[g] = int(Status::NotRun);
  const int workers = resolve_threads(threads, P);
  std::atomic<bool> cancel{false};
  const bindings::HostDense dense = bindings::host_dense(width);  // needs the GIL
  bindings::run_interruptible(cancel, [&]() {
    parallel_for(workers, workers, cancel, [&](Index w) {
      const Index g0 = P * w / workers, g1 = P * (w + 1) / workers;
      const int n_pts = int(g1 - g0);
      std::vector<double> scratch(random_network_scratch(width, k, n_inputs, n_pts));
      std::vector<Status> chunk_status(n_pts, Status::NotRun);
      auto is_cancelled = [&cancel]() { return cancel.load(std::memory_order_relaxed); };
      const Status s = run_random_networks(p, sw + g0, sb + g0, n_pts, out + g0 * n_inputs * k,
                                           chunk_status.data(), scratch.data(), is_cancelled,
                                           dense);
      for (int g = 0; g < n_pts; ++g)
        st[g0 + g] = int(s == Status::Success ? chunk_status[g] : s);
    });
  });
  py::dict res;
  res["logs"] = logs;
  res["status"] = status;
  return res;
}

// The network, inputs and start frame a sweep draws for (σ_w, σ_b): for tests that rebuild
// it as a torch model.
py::dict random_network_draws(int width, int depth, int k, int n_inputs, double sigma_w,
                              double sigma_b, double input_scale, uint64_t seed,
                              uint64_t stream) {
  const RandomNetworkProblem p =
      make_problem(width, depth, k, n_inputs, input_scale, 0, seed, stream);
  const Index N = width;
  py::array_t<double> W({Index(depth), N, N}), b({Index(depth), N});
  py::array_t<double> x({Index(n_inputs), N}), q0({N, Index(k)});
  const double scale = sigma_w / std::sqrt(double(N));
  for (int l = 0; l < depth; ++l) {
    double* Wl = W.mutable_data() + l * N * N;
    double* bl = b.mutable_data() + l * N;
    draw_layer(p, l, Wl, bl);
    for (Index i = 0; i < N * N; ++i) Wl[i] *= scale;
    for (Index i = 0; i < N; ++i) bl[i] *= sigma_b;
  }
  draw_inputs(p, x.mutable_data());
  std::vector<double> q(N * k), r(Index(k) * k), work(N + k);
  random_start(q.data(), N, k, seed, stream);
  householder_qr(q.data(), N, N, k, r.data(), work.data());
  for (Index i = 0; i < N; ++i)
    for (int c = 0; c < k; ++c) q0.mutable_at(i, c) = q[Index(c) * N + i];
  py::dict res;
  res["weights"] = W;
  res["biases"] = b;
  res["inputs"] = x;
  res["q0"] = q0;
  return res;
}

}  // namespace

void register_layer_spectrum(py::module_& m) {
  m.def("random_network_sweep", &random_network_sweep, py::arg("sigma_w"), py::arg("sigma_b"),
        py::arg("width"), py::arg("depth"), py::arg("k"), py::arg("n_inputs"),
        py::arg("input_scale"), py::arg("activation"), py::arg("seed"), py::arg("threads"),
        "Σ_l log R_ii of the layer-Jacobian QR of random networks, one per (σ_w, σ_b) pair, all "
        "scaling the same draws: dict(logs (P, n_inputs, k), status (P,)).");
  m.def("random_network_draws", &random_network_draws, py::arg("width"), py::arg("depth"),
        py::arg("k"), py::arg("n_inputs"), py::arg("sigma_w"), py::arg("sigma_b"),
        py::arg("input_scale"), py::arg("seed"), py::arg("stream"),
        "The weights (L, N, N), biases (L, N), inputs (n, N) and start frame q0 (N, k) that "
        "random_network_sweep uses for (sigma_w, sigma_b) (stream 0).");
}
