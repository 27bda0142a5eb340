// delyap._cuda: the CUDA extension. Launchers only: the per-element maths is the same
// DELYAP_HD code the CPU core runs (here the counter-based RNG), so CPU tests cover it.
#include <cuda_runtime.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "delyap/common/rng.hpp"

namespace py = pybind11;

namespace {

void check(cudaError_t err, const char* what) {
  if (err != cudaSuccess)
    throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(err));
}

int device_count() {
  int n = 0;
  // No driver or no device is an answer (zero devices), not an error.
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return n;
}

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
  if (device_count() == 0) throw std::runtime_error("no CUDA device is available");
  double* dev = nullptr;
  check(cudaMalloc(&dev, sizeof(double) * 2 * n), "cudaMalloc");
  const int threads = 256;
  const long long blocks = (n + threads - 1) / threads;
  uniform_kernel<<<static_cast<unsigned>(blocks), threads>>>(seed, stream, n, dev);
  cudaError_t err = cudaGetLastError();
  if (err == cudaSuccess) err = cudaDeviceSynchronize();
  py::array_t<double> out(2 * n);
  if (err == cudaSuccess)
    err = cudaMemcpy(out.mutable_data(), dev, sizeof(double) * 2 * n, cudaMemcpyDeviceToHost);
  cudaFree(dev);
  check(err, "philox_uniforms");
  return out;
}

}  // namespace

PYBIND11_MODULE(_cuda, m) {
  m.doc() = "delyap's CUDA kernels (private; delyap.has_cuda() tells whether they can run)";
  m.def("device_count", &device_count, "Number of CUDA devices the runtime sees (0 without).");
  m.def("philox_uniforms", &philox_uniforms, py::arg("seed"), py::arg("stream"), py::arg("n"));
  int runtime = 0;
  cudaRuntimeGetVersion(&runtime);
  m.attr("runtime_version") = runtime;
}
