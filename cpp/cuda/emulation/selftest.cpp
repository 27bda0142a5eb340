// Kernels with the bugs the emulator is there to expose, so tests/test_cuda_emulation.py can
// check that it does: a reduction missing its barriers, a barrier inside divergent code, a copy
// in the wrong direction, a write one element past the end of a device buffer, a host pointer
// passed to a kernel. Built only into delyap._cuda_emulated.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>

#include "common.cuh"

namespace py = pybind11;

namespace delyap::cuda {
namespace {

constexpr int kThreads = 128;

// A block tree sum; with `barriers` false it lacks the __syncthreads() between the levels.
template <bool barriers>
__global__ void block_sum_kernel(const double* x, double* out) {
  __shared__ double acc[kThreads];
  acc[threadIdx.x] = x[threadIdx.x];
  if (barriers) __syncthreads();
  for (int w = kThreads / 2; w > 0; w >>= 1) {
    if (int(threadIdx.x) < w) acc[threadIdx.x] += acc[threadIdx.x + w];
    if (barriers) __syncthreads();
  }
  if (threadIdx.x == 0) *out = acc[0];
}

// Odd threads wait at a barrier the even ones never reach.
__global__ void divergent_barrier_kernel(double* out) {
  if (threadIdx.x % 2 == 1) __syncthreads();
  out[threadIdx.x] = 1.0;
}

template <class T>
__global__ void write_kernel(T* out, int n) {
  const int i = int(blockIdx.x * blockDim.x + threadIdx.x);
  if (i <= n) out[i] = T(1);  // one past the end: the bug
}

double block_sum(const py::array_t<double, py::array::c_style>& x, bool barriers) {
  if (x.size() != kThreads) throw py::value_error("x: needs 128 values");
  DeviceBuffer<double> d_x(x.data(), kThreads, nullptr), d_out(1);
  launch("block_sum_kernel", barriers ? block_sum_kernel<true> : block_sum_kernel<false>, 1u,
         kThreads, nullptr, d_x.get(), d_out.get());
  check_launch("block_sum_kernel", nullptr);
  double out = 0.0;
  d_out.download(&out, nullptr);
  return out;
}

void selftest(const std::string& bug) {
  if (bug == "divergent_barrier") {
    DeviceBuffer<double> out(kThreads);
    launch("divergent_barrier_kernel", divergent_barrier_kernel, 1u, kThreads, nullptr,
           out.get());
  } else if (bug == "copy_direction") {
    double host[4] = {0, 0, 0, 0}, other[4] = {1, 2, 3, 4};
    check(cudaMemcpy(host, other, sizeof host, cudaMemcpyHostToDevice), "cudaMemcpy");
  } else if (bug == "out_of_bounds") {
    DeviceBuffer<double> out(100);
    launch("write_kernel", write_kernel<double>, 1u, kThreads, nullptr, out.get(), 100);
  } else if (bug == "out_of_bounds_int") {
    DeviceBuffer<int> out(101);
    launch("write_kernel", write_kernel<int>, 1u, kThreads, nullptr, out.get(), 101);
  } else if (bug == "host_pointer") {
    double host[kThreads];
    double* host_ptr = host;
    launch("write_kernel", write_kernel<double>, 1u, kThreads, nullptr, host_ptr, kThreads - 1);
  } else {
    throw py::value_error("bug: one of divergent_barrier, copy_direction, out_of_bounds, "
                          "out_of_bounds_int, host_pointer");
  }
}

}  // namespace
}  // namespace delyap::cuda

void register_emulation_selftest(py::module_& m) {
  m.def("block_sum", &delyap::cuda::block_sum, py::arg("x"), py::arg("barriers"),
        "Emulator self-test: a one-block tree sum of 128 values, with or without barriers.");
  m.def("selftest", &delyap::cuda::selftest, py::arg("bug"),
        "Emulator self-test: runs a kernel or copy with the named bug.");
}
