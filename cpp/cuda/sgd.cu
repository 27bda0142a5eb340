// SGD Lyapunov maps on the GPU: one thread block per (η, B) configuration, running
// run_gram_product (lyap/gram_product.hpp) with a BlockGroup — the same DELYAP_HD code the CPU
// runs with a SerialGroup. The block's threads split each step's gather and row update; the
// leader draws the batch from the same Philox stream (seed, configuration index) as the CPU
// and does the QR, so a GPU map reproduces the CPU map for a seed up to rounding.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <optional>
#include <vector>

#include "common.cuh"
#include "delyap/lyap/gram_product.hpp"
#include "gram_args.hpp"
#include "lyapunov_runner.hpp"

namespace py = pybind11;
using delyap::bindings::DArray;

namespace delyap::cuda {
namespace {

struct GramMapArgs {
  const double* K;       // update rows (n_rows × dim)
  const double* gather;  // reduced coordinates: U (n_rows × dim); else null
  Index n_rows;
  int dim, outputs, k;
  const double* lr;      // per configuration
  const int* batch;      // per configuration
  Sampling sampling;
  Index steps, transient;
  int renorm_interval;
  const uint64_t* seed;    // per configuration: its Philox key …
  const uint64_t* stream;  // … and stream (the CPU uses seed, configuration index)
  // Scratch, per configuration (stride in elements): doubles and 32-bit words.
  double* scratch;
  Index scratch_stride;
  uint32_t* words;
  Index words_stride;
  int max_rows;          // max batch · outputs over the configurations
  // Accumulator storage (LyapunovOutputs layout) and results.
  int n_blocks;
  Index n_running, n_total;
  double *block_sum, *block_time, *sums, *running, *running_t, *exponents, *stderr_;
  int* status;
  const volatile int* stop;  // host-mapped: Ctrl-C
};

__global__ void gram_map_kernel(GramMapArgs a) {
  const Index c = blockIdx.x;
  const int k = a.k;
  GramProblem p{a.K,       a.gather,        a.n_rows, a.dim,           a.outputs,
                a.lr[c],   a.batch[c],      a.sampling, k,             a.steps,
                a.transient, a.renorm_interval, a.seed[c], a.stream[c]};
  double* m = a.scratch + c * a.scratch_stride;
  GramScratch s = GramScratch::carve(m, a.words + c * a.words_stride, a.dim, k, a.max_rows,
                                     a.n_rows / a.outputs);
  LyapunovAccumulator acc{k,
                          a.n_total,
                          a.n_blocks,
                          a.block_sum + c * a.n_blocks * k,
                          a.block_time + c * a.n_blocks,
                          a.sums + c * k,
                          0.0,
                          a.n_running,
                          a.running + c * a.n_running * k,
                          a.running_t + c * a.n_running};
  __shared__ int status;
  const volatile int* stop = a.stop;
  auto cancelled = [stop]() { return *stop != 0; };  // read by work done (common/work_poll.hpp)
  const Status st =
      run_gram_product(BlockGroup{}, p, acc, s, &status, cancelled, PortableRowUpdate{});
  if (threadIdx.x == 0) {
    acc.finish(a.exponents + c * k, a.stderr_ + c * k);
    a.status[c] = int(st);
  }
}

py::dict gram_lyapunov(const DArray& K, const std::optional<DArray>& basis,
                       const std::optional<DArray>& eigenvalues, int outputs, const DArray& lr,
                       const py::array_t<int, py::array::c_style>& batch, int sampling, int k,
                       Index steps, Index transient, int renorm_interval,
                       const py::array_t<uint64_t, py::array::c_style>& seeds,
                       const py::array_t<uint64_t, py::array::c_style>& streams,
                       int n_blocks, Index n_running, std::uintptr_t stream_handle,
                       int threads_per_block) {
  using bindings::require_shape;
  require_device();
  cudaStream_t stream = as_stream(stream_handle);
  require_shape(seeds, "seeds", {lr.shape(0)});
  require_shape(streams, "streams", {lr.shape(0)});
  const bindings::GramArgs args(K, basis, eigenvalues, outputs, lr, batch, sampling, k);
  const Index n = args.n, C = lr.shape(0);
  const int dim = args.dim, max_b = args.max_batch;
  const int max_rows = max_b * outputs;
  check_block_size(gram_map_kernel, threads_per_block);
  const Index n_total = (steps + renorm_interval - 1) / renorm_interval;

  DeviceBuffer<double> d_K(args.update_rows, size_t(n) * dim, stream);
  DeviceBuffer<double> d_U(basis ? basis->data() : nullptr, basis ? basis->size() : 0, stream);
  DeviceBuffer<double> d_lr(lr.data(), C, stream);
  DeviceBuffer<int> d_batch(batch.data(), C, stream);
  DeviceBuffer<uint64_t> d_seeds(seeds.data(), C, stream), d_streams(streams.data(), C, stream);
  const Index scratch_stride = GramScratch::doubles_for(dim, k, max_rows);
  const Index words_stride = GramScratch::words_for(n / outputs, max_rows);
  DeviceBuffer<double> d_scratch(C * scratch_stride);
  DeviceBuffer<uint32_t> d_words(C * words_stride);

  bindings::LyapunovOutputs out(C, k, n_blocks, n_running);
  DeviceBuffer<double> d_block_sum(out.block_sum.size()), d_block_time(out.block_time.size()),
      d_sums(out.sums.size()), d_running(out.running.size()), d_running_t(out.running_t.size()),
      d_exp(out.exponents.size()), d_se(out.stderr_.size());
  DeviceBuffer<int> d_status(C);
  // Poisoned: unrecorded running checkpoints stay NaN, as on the CPU; anything else the kernel
  // failed to write shows up as NaN / −1.
  for (auto* b : {&d_block_sum, &d_block_time, &d_sums, &d_running, &d_running_t, &d_exp, &d_se})
    b->poison(stream);
  d_status.poison(stream);

  GramMapArgs a{d_K.get(),
                basis ? d_U.get() : nullptr,
                n,
                dim,
                outputs,
                k,
                d_lr.get(),
                d_batch.get(),
                Sampling(sampling),
                steps,
                transient,
                renorm_interval,
                d_seeds.get(),
                d_streams.get(),
                d_scratch.get(),
                scratch_stride,
                d_words.get(),
                words_stride,
                max_rows,
                n_blocks,
                n_running,
                n_total,
                d_block_sum.get(),
                d_block_time.get(),
                d_sums.get(),
                d_running.get(),
                d_running_t.get(),
                d_exp.get(),
                d_se.get(),
                d_status.get(),
                nullptr};
  MappedFlag stop;
  a.stop = stop.device();
  run_interruptible_on_device(stop, [&] {
    launch("gram_map_kernel", gram_map_kernel, unsigned(C), threads_per_block, stream, a);
    check_launch("gram_map_kernel", stream);
  });
  d_exp.download(out.exponents.mutable_data(), stream);
  d_se.download(out.stderr_.mutable_data(), stream);
  d_running.download(out.running.mutable_data(), stream);
  d_running_t.download(out.running_t.mutable_data(), stream);
  d_block_sum.download(out.block_sum.mutable_data(), stream);
  d_block_time.download(out.block_time.mutable_data(), stream);
  d_status.download(out.status.mutable_data(), stream);
  check(cudaStreamSynchronize(stream), "download");
  return out.to_dict();
}

}  // namespace
}  // namespace delyap::cuda

void register_cuda_sgd(py::module_& m) {
  m.def("gram_lyapunov", &delyap::cuda::gram_lyapunov, py::arg("K"), py::arg("basis"),
        py::arg("eigenvalues"), py::arg("outputs"), py::arg("lr"), py::arg("batch"),
        py::arg("sampling"), py::arg("k"), py::arg("steps"), py::arg("transient"),
        py::arg("renorm_interval"), py::arg("seeds"), py::arg("streams"), py::arg("n_blocks"),
        py::arg("n_running"),
        py::arg("stream") = 0, py::arg("threads_per_block") = 128,
        "SGD Lyapunov exponents of many (lr, batch) configurations, one block each.");
}
