// The device executor (common/exec.hpp's interface) for one large trajectory: each for_each is
// one kernel launch with a thread per element, each sum a two-pass reduction (fixed block
// partition, so a run reproduces itself) whose scalar is copied back. Everything is queued on
// the caller's stream; the only host waits are the sums, which the step control needs anyway
// (one or two per step: the error norm).
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <memory>

#include "common.cuh"
#include "delyap/common/config.hpp"

namespace delyap::cuda {

constexpr int kExecThreads = 256;
constexpr int kExecMaxBlocks = 1024;

template <class F>
__global__ void for_each_kernel(Index n, F f) {
  const Index i = Index(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) f(i);
}

// Block b sums the elements i ≡ b·blockDim + thread (mod gridDim·blockDim), then its threads.
template <class F>
__global__ void partial_sums_kernel(Index n, F f, double* partial) {
  __shared__ double acc[kExecThreads];
  double s = 0.0;
  for (Index i = Index(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += Index(gridDim.x) * blockDim.x)
    s += f(i);
  acc[threadIdx.x] = s;
  __syncthreads();
  for (int w = blockDim.x / 2; w > 0; w >>= 1) {
    if (int(threadIdx.x) < w) acc[threadIdx.x] += acc[threadIdx.x + w];
    __syncthreads();
  }
  if (threadIdx.x == 0) partial[blockIdx.x] = acc[0];
}

// One block adds the partial sums; the result goes to partial[kExecMaxBlocks].
__global__ void final_sum_kernel(double* partial, int n) {
  __shared__ double acc[kExecThreads];
  double s = 0.0;
  for (int i = threadIdx.x; i < n; i += blockDim.x) s += partial[i];
  acc[threadIdx.x] = s;
  __syncthreads();
  for (int w = blockDim.x / 2; w > 0; w >>= 1) {
    if (int(threadIdx.x) < w) acc[threadIdx.x] += acc[threadIdx.x + w];
    __syncthreads();
  }
  if (threadIdx.x == 0) partial[kExecMaxBlocks] = acc[0];
}

class CudaExec {
 public:
  template <class T>
  struct Array {
    DeviceBuffer<T> buffer;
    explicit Array(Index n = 0) : buffer(std::size_t(n)) {}
    T* get() const { return buffer.get(); }
  };

  CudaExec() = default;  // unusable until assigned (views are default-constructed first)
  explicit CudaExec(cudaStream_t stream)
      : stream_(stream), partial_(std::make_shared<DeviceBuffer<double>>(kExecMaxBlocks + 1)) {}

  template <class F>
  void for_each(Index n, const F& f) const {
    if (n <= 0) return;
    launch("for_each_kernel", for_each_kernel<F>, blocks_for(n, kExecThreads), kExecThreads,
           stream_, n, f);
  }

  template <class F>
  double sum(Index n, const F& f) const {
    if (n <= 0) return 0.0;
    const int blocks = int(std::min<Index>(blocks_for(n, kExecThreads), kExecMaxBlocks));
    launch("partial_sums_kernel", partial_sums_kernel<F>, unsigned(blocks), kExecThreads, stream_,
           n, f, partial_->get());
    launch("final_sum_kernel", final_sum_kernel, 1u, kExecThreads, stream_, partial_->get(),
           blocks);
    double result = 0.0;
    download(&result, partial_->get() + kExecMaxBlocks, 1);
    return result;
  }

  template <class T>
  void upload(T* dst, const T* host, Index n) const {
    if (n > 0)
      check(cudaMemcpyAsync(dst, host, sizeof(T) * n, cudaMemcpyHostToDevice, stream_),
            "upload");
  }
  // Waits for the stream: the host reads the values next.
  template <class T>
  void download(T* host, const T* src, Index n) const {
    if (n <= 0) return;
    check(cudaMemcpyAsync(host, src, sizeof(T) * n, cudaMemcpyDeviceToHost, stream_), "download");
    check(cudaStreamSynchronize(stream_), "download");
  }

  cudaStream_t stream() const { return stream_; }

 private:
  cudaStream_t stream_ = nullptr;
  std::shared_ptr<DeviceBuffer<double>> partial_;  // executors are copied into views and sinks
};

}  // namespace delyap::cuda
