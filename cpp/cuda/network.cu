// Delay-coupled Kuramoto and Stuart–Landau networks at large N on the GPU: one trajectory at
// a time with its state, stages and history in device memory (dde/vector_solve.hpp with the
// device executor, vector_exec.cuh). The host runs the CPU's method-of-steps driver and step
// control on scalars: each step queues its per-component loops and the right-hand side as
// kernels and reads back only the error norm. The right-hand sides are one thread per delayed
// value (sin, cos) and one per node (CSR in-edges); the per-element maths is delayed_sin_cos,
// kuramoto_rate and stuart_landau_rates (dde/rhs/network.hpp), which the CPU right-hand sides
// run too. The same driver with the host executor is delyap._testing.solve_network_vector, which the CPU
// tests compare bit for bit with the regular solver.
// The driver's DELYAP_HD templates are instantiated here with host-only executor and history
// types (their methods launch kernels); nvcc warns that the device side would call host code,
// which never happens: only their host side runs.
#pragma nv_diag_suppress 20014
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <memory>
#include <optional>

#include "common.cuh"
#include "delyap/dde/rhs/network.hpp"
#include "fixed_solve.hpp"
#include "network_args.hpp"
#include "vector_exec.cuh"
#include "vector_runner.hpp"

namespace py = pybind11;
using delyap::bindings::DArray;

namespace delyap::cuda {
namespace {

__global__ void sin_cos_kernel(const double* xd, Index m_total, double* sc) {
  const Index m = Index(blockIdx.x) * blockDim.x + threadIdx.x;
  if (m < m_total) delayed_sin_cos(m, xd, sc);
}

__global__ void kuramoto_kernel(CsrGraph g, const double* omega, const double* inv_norm,
                                double coupling, const double* x, const double* sc, double cos_a,
                                double sin_a, double* out) {
  const int i = int(blockIdx.x * blockDim.x + threadIdx.x);
  if (i < g.n) out[i] = kuramoto_rate(i, g, omega, inv_norm, coupling, x, sc, cos_a, sin_a);
}

__global__ void stuart_landau_kernel(CsrGraph g, const double* omega, const double* inv_norm,
                                     double lambda, double coupling, const double* x,
                                     const double* xd, double* out) {
  const int i = int(blockIdx.x * blockDim.x + threadIdx.x);
  if (i < g.n) stuart_landau_rates(i, g, omega, inv_norm, lambda, coupling, x, xd, out);
}

// The graph and node data, uploaded once.
struct DeviceNetwork {
  DeviceBuffer<Index> indptr;
  DeviceBuffer<int> indices;
  DeviceBuffer<double> weights;
  DeviceBuffer<unsigned char> klass;
  DeviceBuffer<double> omega, inv_norm;
  int n = 0;
  bool has_klass = false;
  CsrGraph graph() const {
    return CsrGraph{indptr.get(), indices.get(), weights.get(),
                    has_klass ? klass.get() : nullptr, n};
  }
};

// A System whose right-hand side reads and writes device memory: two launches, no copies.
struct KuramotoDevice {
  std::shared_ptr<const DeviceNetwork> net;
  const double* tau;  // host: the distinct delays
  int n_classes;
  double coupling;
  std::shared_ptr<DeviceBuffer<double>> sc;  // (sin, cos) of the delayed phases
  cudaStream_t stream;
  double alpha;  // Sakaguchi phase lag

  int dim() const { return net->n; }
  int n_delays() const { return n_classes; }
  double delay(int k) const { return tau[k]; }

  bool rhs(double, const double* x, const double* xd, double* out) const {
    const int N = net->n;
    const Index M = Index(n_classes) * N;
    launch("sin_cos_kernel", sin_cos_kernel, blocks_for(M, 256), 256, stream, xd, M, sc->get());
    launch("kuramoto_kernel", kuramoto_kernel, blocks_for(N, 128), 128, stream, net->graph(),
           net->omega.get(), net->inv_norm.get(), coupling, x, sc->get(), std::cos(alpha),
           std::sin(alpha), out);
    return true;
  }
};

using bindings::ClassArray;
using bindings::IndexArray;
using bindings::IntArray;

// Stuart–Landau: one launch per evaluation, one thread per node.
struct StuartLandauDevice {
  std::shared_ptr<const DeviceNetwork> net;
  const double* tau;
  int n_classes;
  double lambda;
  double coupling;
  cudaStream_t stream;

  int dim() const { return 2 * net->n; }
  int n_delays() const { return n_classes; }
  double delay(int k) const { return tau[k]; }

  bool rhs(double, const double* x, const double* xd, double* out) const {
    launch("stuart_landau_kernel", stuart_landau_kernel, blocks_for(net->n, 128), 128, stream,
           net->graph(), net->omega.get(), net->inv_norm.get(), lambda, coupling, x, xd, out);
    return true;
  }
};

// Kuramoto (lam absent) or Stuart–Landau (lam given) networks, one trajectory per coupling.
py::dict solve_network(const IndexArray& indptr, const IntArray& indices, const DArray& weights,
                       const std::optional<ClassArray>& klass, const DArray& tau,
                       const DArray& omega, const DArray& inv_norm, const DArray& coupling,
                       std::optional<double> lam, const DArray& hist_t, const DArray& hist_x,
                       const DArray& hist_f, const DArray& y0, const DArray& jumps, double t0,
                       double t_final, const std::optional<DArray>& t_eval,
                       const py::dict& options, int output_mode,
                       const std::vector<Index>& components, std::uintptr_t stream_handle,
                       double alpha) {
  require_device();
  if (lam && alpha != 0.0) throw py::value_error("alpha: Stuart–Landau networks have no phase lag");
  const bindings::NetworkArgs args{indptr, indices, weights, klass, tau, omega, inv_norm,
                                   coupling, alpha};
  args.check();
  const int N = args.n();
  const Index E = indices.shape(0);
  cudaStream_t stream = as_stream(stream_handle);
  int device = 0;
  check(cudaGetDevice(&device), "cudaGetDevice");
  auto net = std::make_shared<DeviceNetwork>();
  net->indptr = DeviceBuffer<Index>(indptr.data(), N + 1, stream);
  net->indices = DeviceBuffer<int>(indices.data(), E, stream);
  net->weights = DeviceBuffer<double>(weights.data(), E, stream);
  if (klass) net->klass = DeviceBuffer<unsigned char>(klass->data(), E, stream);
  net->omega = DeviceBuffer<double>(omega.data(), N, stream);
  net->inv_norm = DeviceBuffer<double>(inv_norm.data(), N, stream);
  net->n = N;
  net->has_klass = klass.has_value();
  check(cudaStreamSynchronize(stream), "upload graph");

  const int n_classes = int(tau.shape(0));
  const int dim = lam ? 2 * N : N;
  // Resident: the history (at least 64 slots, or the initial history's anchors, of
  // (2 + coefficients)·dim), stages and scratch, and the device rows of the dense output.
  const double slots = std::max(64.0, double(hist_t.shape(0) + 8));
  const double out_rows = t_eval ? double(t_eval->shape(0)) : 0.0;
  const double out_width = output_mode == 0   ? double(dim)
                           : output_mode == 1 ? double(components.size())
                                              : 0.0;
  check_free_memory(8.0 * (dim * (slots * 6 + 20 + 4.0 * n_classes) + out_rows * out_width),
                    "solve_dde(device='cuda')");
  bindings::HistoryArgs h{hist_t, hist_x, hist_f, y0, jumps};
  bindings::OutputSpec out_spec{output_mode, components};
  const SolverOptions opt = bindings::options_from_dict(options);
  auto select_device = [device]() { check(cudaSetDevice(device), "cudaSetDevice"); };
  if (lam) {
    auto make = [&](Index b) {
      return StuartLandauDevice{net, tau.data(), n_classes, *lam, coupling.at(b), stream};
    };
    return bindings::run_vector_solve(coupling.shape(0), dim, make, opt, h, t0, t_final, t_eval,
                                      out_spec, CudaExec(stream), select_device);
  }
  auto sc = std::make_shared<DeviceBuffer<double>>(2 * Index(n_classes) * N);
  auto make = [&](Index b) {
    return KuramotoDevice{net, tau.data(), n_classes, coupling.at(b), sc, stream, alpha};
  };
  return bindings::run_vector_solve(coupling.shape(0), dim, make, opt, h, t0, t_final, t_eval,
                                    out_spec, CudaExec(stream), select_device);
}

}  // namespace
}  // namespace delyap::cuda

void register_cuda_network(py::module_& m) {
  m.def("solve_network", &delyap::cuda::solve_network, py::arg("indptr"), py::arg("indices"),
        py::arg("weights"), py::arg("klass"), py::arg("tau"), py::arg("omega"),
        py::arg("inv_norm"), py::arg("coupling"), py::arg("lam"), py::arg("hist_t"),
        py::arg("hist_x"), py::arg("hist_f"), py::arg("y0"), py::arg("jumps"), py::arg("t0"),
        py::arg("t_final"), py::arg("t_eval"), py::arg("options"), py::arg("output_mode"),
        py::arg("components"), py::arg("stream") = 0, py::arg("alpha") = 0.0,
        "Kuramoto (lam None, Sakaguchi lag alpha) or Stuart–Landau networks with state and history in device "
        "memory.");
}
