// DDE ensembles on the GPU: one thread per trajectory, each with its own adaptive step and its
// own history ring in device memory (interleaved across trajectories, so reads of one slot
// coalesce). The thread body is solve_fixed_member, the same DELYAP_HD function the host mirror
// in _core runs (tests/test_fixed_storage.py compares that mirror with the regular solver).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>

#include "common.cuh"
#include "fixed_solve.hpp"

namespace py = pybind11;
using delyap::bindings::DArray;
using delyap::bindings::FixedSolve;

namespace delyap::cuda {
namespace {

template <class Batch>
__global__ void fixed_ensemble_kernel(Batch systems, FixedEnsembleArgs args, Index batch) {
  const Index b = Index(blockIdx.x) * blockDim.x + threadIdx.x;
  if (b >= batch) return;
  // Per-thread scratch in local memory (the hardware interleaves it across a warp).
  double scratch[fixed_scratch_doubles(Batch::kDim, Batch::kDelays)];
  solve_fixed_member<Batch::kDelays>(systems.at(b), args, b, scratch);
}

// Uploads the inputs, runs the kernel on `stream`, downloads into fs's numpy results.
// `device_params` maps the batch's host parameter pointers to device copies.
template <class Batch>
py::dict run_fixed_device(Batch systems, FixedSolve& fs, std::uintptr_t stream_handle,
                          int threads_per_block) {
  check_block_size(fixed_ensemble_kernel<Batch>, threads_per_block);
  check_free_memory(8.0 * double(fs.history_doubles() + fs.y.size() + fs.y_final.size()),
                    "history_capacity (history rings of every trajectory) and outputs");
  cudaStream_t stream = as_stream(stream_handle);
  const Index B = fs.batch;
  DeviceBuffer<double> history(fs.history_doubles());
  DeviceBuffer<double> hist_t(fs.hist_t.data(), fs.hist_t.size(), stream);
  DeviceBuffer<double> hist_x(fs.hist_x.data(), fs.hist_x.size(), stream);
  DeviceBuffer<double> hist_f(fs.hist_f.data(), fs.hist_f.size(), stream);
  DeviceBuffer<double> y0(fs.y0.data(), fs.y0.size(), stream);
  DeviceBuffer<double> t_eval(fs.t_eval.data(), fs.t_eval.size(), stream);
  DeviceBuffer<double> y(fs.y.size()), y_final(fs.y_final.size()), t_end(B);
  DeviceBuffer<int> status(B);
  DeviceBuffer<Index> stats(fs.stats.size());
  // Outputs are poisoned: what the kernel leaves unwritten reads as NaN / −1.
  y.poison(stream);
  y_final.poison(stream);
  t_end.poison(stream);
  status.poison(stream);
  stats.poison(stream);
  FixedSolve::Pointers p{history.get(), y.get(),      y_final.get(), t_end.get(),
                         status.get(),  stats.get(),  hist_t.get(),  hist_x.get(),
                         hist_f.get(),  y0.get(),     t_eval.get()};
  FixedEnsembleArgs args = fs.args(p);
  MappedFlag stop;
  args.cancel = stop.device();
  run_interruptible_on_device(stop, [&] {
    launch("fixed_ensemble_kernel", fixed_ensemble_kernel<Batch>, blocks_for(B, threads_per_block),
           threads_per_block, stream, systems, args, B);
    check_launch("fixed_ensemble_kernel", stream);
  });
  y.download(fs.y.mutable_data(), stream);
  y_final.download(fs.y_final.mutable_data(), stream);
  t_end.download(fs.t_end.mutable_data(), stream);
  status.download(fs.status.mutable_data(), stream);
  stats.download(fs.stats.mutable_data(), stream);
  check(cudaStreamSynchronize(stream), "download");
  return fs.to_dict();
}

py::dict solve_fixed_mackey_glass(const DArray& beta, const DArray& gamma, const DArray& n,
                                  const DArray& tau, const DArray& ht, const DArray& hx,
                                  const DArray& hf, const DArray& y0, double t0, double t_final,
                                  const DArray& t_eval, const py::dict& options, Index capacity,
                                  std::uintptr_t stream, int threads_per_block) {
  require_device();
  const Index batch = beta.ndim() == 1 ? beta.shape(0) : 0;
  FixedSolve fs(batch, 1, 1, ht, hx, hf, y0, t0, t_final, t_eval, options, capacity);
  MackeyGlassBatch host = bindings::mackey_glass_batch(batch, beta, gamma, n, tau);
  DeviceBuffer<double> d_beta(host.beta, batch, as_stream(stream)),
      d_gamma(host.gamma, batch, as_stream(stream)), d_n(host.n, batch, as_stream(stream)),
      d_tau(host.tau, batch, as_stream(stream));
  const MackeyGlassBatch dev{d_beta.get(), d_gamma.get(), d_n.get(), d_tau.get()};
  return run_fixed_device(dev, fs, stream, threads_per_block);
}

py::dict solve_fixed_linear(const DArray& A, const DArray& B, const DArray& tau, Index batch,
                            const DArray& ht, const DArray& hx, const DArray& hf,
                            const DArray& y0, double t0, double t_final, const DArray& t_eval,
                            const py::dict& options, Index capacity, std::uintptr_t stream,
                            int threads_per_block) {
  require_device();
  const LinearBatch host = bindings::linear_batch(batch, A, B, tau);
  FixedSolve fs(batch, host.d, host.nd, ht, hx, hf, y0, t0, t_final, t_eval, options, capacity);
  DeviceBuffer<double> d_A(A.data(), A.size(), as_stream(stream)),
      d_B(B.data(), B.size(), as_stream(stream)), d_tau(tau.data(), tau.size(), as_stream(stream));
  LinearBatch dev = host;
  dev.A = d_A.get();
  dev.B = d_B.get();
  dev.tau = d_tau.get();
  return run_fixed_device(dev, fs, stream, threads_per_block);
}

}  // namespace
}  // namespace delyap::cuda

void register_cuda_dde(py::module_& m) {
  using namespace delyap::cuda;
  m.def("solve_fixed_mackey_glass", &solve_fixed_mackey_glass, py::arg("beta"), py::arg("gamma"),
        py::arg("n"), py::arg("tau"), py::arg("hist_t"), py::arg("hist_x"), py::arg("hist_f"),
        py::arg("y0"), py::arg("t0"), py::arg("t_final"), py::arg("t_eval"), py::arg("options"),
        py::arg("capacity"), py::arg("stream") = 0, py::arg("threads_per_block") = 128,
        "Mackey–Glass ensemble, one GPU thread per trajectory.");
  m.def("solve_fixed_linear", &solve_fixed_linear, py::arg("A"), py::arg("B"), py::arg("tau"),
        py::arg("batch"), py::arg("hist_t"), py::arg("hist_x"), py::arg("hist_f"), py::arg("y0"),
        py::arg("t0"), py::arg("t_final"), py::arg("t_eval"), py::arg("options"),
        py::arg("capacity"), py::arg("stream") = 0, py::arg("threads_per_block") = 128,
        "Linear DDE ensemble (dim <= 8, n_delays <= 4), one GPU thread per trajectory.");
}
