// Host-side CUDA plumbing for the extension: checked calls, owning device buffers, the
// caller's stream, launches. Every runtime call goes through check(); every launch goes
// through launch(), which checks the launch error; check_launch() also waits for the kernel
// and reports its execution errors (the synchronous Python API uses it).
#pragma once

#include <cuda_runtime.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>

#include "interruptible.hpp"

namespace delyap::cuda {

inline void check(cudaError_t err, const char* what) {
  if (err != cudaSuccess)
    throw std::runtime_error(std::string("CUDA error in ") + what + ": " +
                             cudaGetErrorString(err));
}

// Waits for the work queued on `stream` and reports a kernel's execution errors.
inline void check_launch(const char* kernel, cudaStream_t stream) {
  check(cudaStreamSynchronize(stream), kernel);
}

inline int device_count() {
  int n = 0;
  // No driver or no device is an answer (zero devices), not an error.
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return n;
}

inline void require_device() {
  if (device_count() == 0) throw std::runtime_error("no CUDA device is available");
}

// Device memory for n elements of T, freed on scope exit.
template <class T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(std::size_t n) : n_(n) {
    if (n_) check(cudaMalloc(&p_, n_ * sizeof(T)), "cudaMalloc");
  }
  DeviceBuffer(const T* host, std::size_t n, cudaStream_t s) : DeviceBuffer(n) {
    upload(host, s);
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& o) noexcept : p_(std::exchange(o.p_, nullptr)), n_(o.n_) {}
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    if (this != &o) {
      if (p_) cudaFree(p_);
      p_ = std::exchange(o.p_, nullptr);
      n_ = o.n_;
    }
    return *this;
  }
  ~DeviceBuffer() {
    if (p_) cudaFree(p_);
  }
  T* get() const { return p_; }
  std::size_t size() const { return n_; }
  void upload(const T* host, cudaStream_t s) {
    if (n_) check(cudaMemcpyAsync(p_, host, n_ * sizeof(T), cudaMemcpyHostToDevice, s), "upload");
  }
  void download(T* host, cudaStream_t s) const {
    if (n_) check(cudaMemcpyAsync(host, p_, n_ * sizeof(T), cudaMemcpyDeviceToHost, s), "download");
  }
  // Poisons the buffer (every byte 0xFF: NaN for doubles, −1 for integers) so that an element
  // a kernel forgot to write cannot pass for a result.
  void poison(cudaStream_t s) {
    if (n_) check(cudaMemsetAsync(p_, 0xFF, n_ * sizeof(T), s), "poison");
  }

 private:
  T* p_ = nullptr;
  std::size_t n_ = 0;
};

// The stream work is launched on: the caller's (a torch.cuda.Stream's cuda_stream handle, as
// an integer), or the legacy default stream when 0.
inline cudaStream_t as_stream(std::uintptr_t handle) {
  return reinterpret_cast<cudaStream_t>(handle);
}

// kernel<<<blocks, threads, 0, stream>>>(args...), then the launch error. A function rather
// than the <<<>>> syntax so that the CPU emulation (emulation/cuda_runtime.h) compiles the same
// call sites: there each thread of the launch is a call of the kernel.
template <class... Params, class... Args>
void launch(const char* name, void (*kernel)(Params...), unsigned blocks, int threads,
            cudaStream_t stream, const Args&... args) {
#if defined(DELYAP_CUDA_EMULATION)
  (void)stream;
  if (!(delyap_emulation::usable_on_device(args) && ...))
    delyap_emulation::fail_launch(name, "a pointer argument is neither device memory nor "
                                        "host-mapped memory");
  else
    delyap_emulation::launch(reinterpret_cast<std::uintptr_t>(kernel), name, blocks, threads,
                             [&] { kernel(args...); });
#else
  kernel<<<blocks, threads, 0, stream>>>(args...);
#endif
  check(cudaGetLastError(), name);
}

inline unsigned blocks_for(long long n, int threads) {
  return static_cast<unsigned>((n + threads - 1) / threads);
}

// A block size the kernel can launch with (its register use caps it below 1024).
template <class Kernel>
void check_block_size(Kernel kernel, int threads_per_block) {
  cudaFuncAttributes attr;
  check(cudaFuncGetAttributes(&attr, kernel), "cudaFuncGetAttributes");
  if (threads_per_block < 1 || threads_per_block > attr.maxThreadsPerBlock)
    throw std::invalid_argument("threads_per_block: must be in [1, " +
                                std::to_string(attr.maxThreadsPerBlock) + "] for this kernel");
}

// A flag running kernels can read: one int of host-mapped pinned memory (kernels poll it
// rarely, since every read crosses the bus). Raised on Ctrl-C.
class MappedFlag {
 public:
  MappedFlag() {
    void* p = nullptr;
    check(cudaHostAlloc(&p, sizeof(int), cudaHostAllocMapped), "cudaHostAlloc");
    host_ = static_cast<volatile int*>(p);
    *host_ = 0;
    void* d = nullptr;
    check(cudaHostGetDevicePointer(&d, p, 0), "cudaHostGetDevicePointer");
    device_ = static_cast<const volatile int*>(d);
  }
  MappedFlag(const MappedFlag&) = delete;
  MappedFlag& operator=(const MappedFlag&) = delete;
  ~MappedFlag() { cudaFreeHost(const_cast<int*>(host_)); }
  void raise() { *host_ = 1; }
  const volatile int* device() const { return device_; }

 private:
  volatile int* host_ = nullptr;
  const volatile int* device_ = nullptr;
};

// Runs `work` (launches and waits) on a worker thread with the GIL released, on the caller's
// device. Ctrl-C raises `stop` for the kernels to see; once they have returned, Python gets
// its KeyboardInterrupt.
template <class Work>
void run_interruptible_on_device(MappedFlag& stop, Work&& work) {
  int device = 0;
  check(cudaGetDevice(&device), "cudaGetDevice");
  std::atomic<bool> cancel{false};
  bindings::run_interruptible(
      cancel,
      [&] {
        check(cudaSetDevice(device), "cudaSetDevice");
        work();
      },
      [&] { stop.raise(); });
}

// Fails with a clear message when `bytes` more device memory will not fit.
inline void check_free_memory(double bytes, const char* what) {
  std::size_t free_b = 0, total_b = 0;
  check(cudaMemGetInfo(&free_b, &total_b), "cudaMemGetInfo");
  if (bytes > 0.95 * double(free_b))
    throw std::invalid_argument(std::string(what) + ": needs " + std::to_string(bytes / 1e9) +
                                " GB of device memory, " + std::to_string(free_b / 1e9) +
                                " GB free");
}

}  // namespace delyap::cuda
