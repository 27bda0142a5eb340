// DDE ensembles on the GPU: one thread per trajectory, each with its own adaptive step and its
// own history ring in device memory (interleaved across trajectories, so reads of one slot
// coalesce). The thread body is solve_fixed_member, the same DELYAP_HD function the host mirror
// in _core runs (tests/test_fixed_storage.py compares that mirror with the regular solver).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <vector>

#include "builtin_systems.hpp"
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

// solve_fixed_<name> of a registered built-in system: its parameter arrays are copied to the
// device and the pack is built on those copies, with the strides checked on the host arrays.
template <class System>
void register_fixed_device(py::module_& m, const std::string& name) {
  m.def(
      ("solve_fixed_" + name).c_str(),
      [name](const bindings::ParamArrays& p, const DArray& ht, const DArray& hx,
             const DArray& hf, const DArray& y0, double t0, double t_final,
             const DArray& t_eval, const py::dict& options, Index capacity,
             std::uintptr_t stream, int threads_per_block) {
        require_device();
        const bindings::Builtin<System> host(p, name);
        host.check_device_limits(name);
        FixedSolve fs(host.size, host.dim, host.n_delays, ht, hx, hf, y0, t0, t_final, t_eval,
                      options, capacity);
        std::vector<DeviceBuffer<double>> copies;
        std::vector<const double*> pointers;
        copies.reserve(p.size());
        for (const DArray& a : p) {
          copies.emplace_back(a.data(), std::size_t(a.size()), as_stream(stream));
          pointers.push_back(copies.back().get());
        }
        using Batch = BatchOf<System>;
        const Batch dev = bindings::BatchArrays<Batch>::make(p, pointers.data());
        return run_fixed_device(dev, fs, stream, threads_per_block);
      },
      py::arg("params"), py::arg("hist_t"), py::arg("hist_x"), py::arg("hist_f"), py::arg("y0"),
      py::arg("t0"), py::arg("t_final"), py::arg("t_eval"), py::arg("options"),
      py::arg("capacity"), py::arg("stream") = 0, py::arg("threads_per_block") = 128,
      (name + " ensemble, one GPU thread per trajectory.").c_str());
}

}  // namespace
}  // namespace delyap::cuda

void register_cuda_dde(py::module_& m) {
  using namespace delyap::cuda;
#define DELYAP_REGISTER_DEVICE(System, name) register_fixed_device<delyap::System>(m, #name);
  DELYAP_BUILTIN_SYSTEMS(DELYAP_REGISTER_DEVICE)
#undef DELYAP_REGISTER_DEVICE
}
