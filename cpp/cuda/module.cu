// delyap._cuda: the CUDA extension. Launchers only: the per-element maths is the same
// DELYAP_HD code the CPU core runs, so the CPU tests cover it.
#include <cuda_runtime.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "common.cuh"
#include "delyap/common/rng.hpp"

namespace py = pybind11;
using delyap::cuda::check;
using delyap::cuda::DeviceBuffer;

void register_cuda_dde(py::module_& m);
void register_cuda_sgd(py::module_& m);
void register_cuda_network(py::module_& m);
#if defined(DELYAP_CUDA_EMULATION)
void register_emulation_selftest(py::module_& m);  // emulation/selftest.cpp
#endif

namespace {

__global__ void uniform_kernel(uint64_t seed, uint64_t stream, long long n, double* out) {
  const long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x;
  if (i >= n) return;
  double u0, u1;
  delyap::uniform2(seed, stream, static_cast<uint64_t>(i), &u0, &u1);
  out[2 * i] = u0;
  out[2 * i + 1] = u1;
}

// The first 2n uniforms of (seed, stream), computed on the device; the CPU path
// (delyap._core) draws the same numbers.
py::array_t<double> philox_uniforms(uint64_t seed, uint64_t stream, long long n) {
  if (n <= 0) throw py::value_error("n: must be positive");
  delyap::cuda::require_device();
  DeviceBuffer<double> dev(2 * n);
  dev.poison(0);
  delyap::cuda::launch("uniform_kernel", uniform_kernel, delyap::cuda::blocks_for(n, 256), 256,
                       nullptr, seed, stream, n, dev.get());
  delyap::cuda::check_launch("uniform_kernel", 0);
  py::array_t<double> out(2 * n);
  dev.download(out.mutable_data(), 0);
  check(cudaDeviceSynchronize(), "philox_uniforms");
  return out;
}

// The copy ceiling: device-to-device bandwidth (read + write bytes per second) of
// cudaMemcpy on `n_bytes`, best of `repeats`, for the GPU benchmark's bandwidth column.
double copy_bandwidth(long long n_bytes, int repeats) {
  if (n_bytes <= 0 || repeats <= 0) throw py::value_error("n_bytes, repeats: must be positive");
  delyap::cuda::require_device();
  DeviceBuffer<char> a(n_bytes), b(n_bytes);
  check(cudaMemset(a.get(), 1, n_bytes), "cudaMemset");
  cudaEvent_t start, stop;
  check(cudaEventCreate(&start), "cudaEventCreate");
  check(cudaEventCreate(&stop), "cudaEventCreate");
  float best = 1e30f;
  for (int r = 0; r < repeats; ++r) {
    check(cudaEventRecord(start), "cudaEventRecord");
    check(cudaMemcpy(b.get(), a.get(), n_bytes, cudaMemcpyDeviceToDevice), "cudaMemcpy");
    check(cudaEventRecord(stop), "cudaEventRecord");
    check(cudaEventSynchronize(stop), "cudaEventSynchronize");
    float ms = 0;
    check(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime");
    if (ms < best) best = ms;
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  return 2.0 * double(n_bytes) / (best * 1e-3);
}

py::dict device_properties() {
  delyap::cuda::require_device();
  int dev = 0;
  check(cudaGetDevice(&dev), "cudaGetDevice");
  cudaDeviceProp p;
  check(cudaGetDeviceProperties(&p, dev), "cudaGetDeviceProperties");
  py::dict d;
  d["name"] = std::string(p.name);
  d["sm_count"] = p.multiProcessorCount;
  d["compute_capability"] = py::make_tuple(p.major, p.minor);
  d["global_memory_bytes"] = static_cast<long long>(p.totalGlobalMem);
  return d;
}

}  // namespace

// The CPU emulation build (emulation/cuda_runtime.h) is the module delyap._cuda_emulated.
#if defined(DELYAP_CUDA_EMULATION)
#define DELYAP_CUDA_MODULE _cuda_emulated
#else
#define DELYAP_CUDA_MODULE _cuda
#endif

PYBIND11_MODULE(DELYAP_CUDA_MODULE, m) {
  m.doc() = "delyap's CUDA kernels (private; delyap.has_cuda() tells whether they can run)";
#if defined(DELYAP_CUDA_EMULATION)
  m.attr("emulated") = true;
  register_emulation_selftest(m);
#else
  m.attr("emulated") = false;
#endif
  m.def("device_count", &delyap::cuda::device_count,
        "Number of CUDA devices the runtime sees (0 without).");
  m.def("philox_uniforms", &philox_uniforms, py::arg("seed"), py::arg("stream"), py::arg("n"));
  m.def("copy_bandwidth", &copy_bandwidth, py::arg("n_bytes") = 1LL << 30,
        py::arg("repeats") = 5, "Device-to-device copy bandwidth in bytes/s (read + write).");
  m.def("device_properties", &device_properties);
  int runtime = 0;
  cudaRuntimeGetVersion(&runtime);
  m.attr("runtime_version") = runtime;
  register_cuda_dde(m);
  register_cuda_sgd(m);
  register_cuda_network(m);
}
