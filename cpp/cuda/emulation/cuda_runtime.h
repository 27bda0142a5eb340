// A CPU stand-in for the part of the CUDA runtime that delyap's .cu sources use. CMake compiles
// those sources a second time with the host C++ compiler into delyap._cuda_emulated
// (-DDELYAP_CUDA_EMULATION=ON), with this directory first on the include path. Then
// tests/test_cuda.py and benchmarks/gpu/bench_gpu.py run the launchers, the kernels' indexing
// and the host-side buffer handling on machines without a GPU (DELYAP_CUDA_EMULATION=1).
//
// What it models, so that bugs show up:
// - Blocks run one after another (in reverse order on every other launch, so blocks that race
//   on a GPU disagree from run to run here); a block's threads run as fibers that switch at
//   __syncthreads(), in alternating order from one barrier phase to the next, so a missing
//   barrier reads stale or half-written shared memory. A barrier reached by some threads of a
//   block and not others is reported as a launch failure.
// - Device memory is host memory, a fresh allocation is filled with 0xFF bytes (NaN) because a
//   GPU does not zero it, and each allocation ends at a guard page: reading or writing past its
//   end faults. Copies check that their pointers are device or host memory as their kind says.
// - Launch configurations are checked as on the device (1 ≤ threads ≤ 1024, blocks ≥ 1).
// What it does not model: timing, warps, concurrency between streams (all work runs when it
// is queued), device-only arithmetic (FMA contraction, the device's libm), per-kernel block
// size limits (1024 for all), shared memory garbage (a __shared__ array starts at zero and
// keeps the previous block's values), and deferred errors (a kernel's failure is reported at
// its launch, not at the next synchronisation). A kernel's pointer arguments are checked to be
// device or host-mapped memory; pointers inside struct arguments are not.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <type_traits>

#define __global__
#define __device__
#define __host__
#define __constant__
#define __forceinline__ inline
// One block runs at a time, so a function-level static is the block's shared memory.
#define __shared__ static

struct uint3 {
  unsigned x, y, z;
};

struct dim3 {
  unsigned x, y, z;
  dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};

// The running thread's coordinates, set by the emulator before each thread (fiber) resumes.
extern uint3 threadIdx, blockIdx;
extern dim3 blockDim, gridDim;

void __syncthreads();

enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInvalidDevicePointer = 17,
  cudaErrorInvalidMemcpyDirection = 21,
  cudaErrorLaunchFailure = 719,
};

enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4,
};

struct CUstream_st;
using cudaStream_t = CUstream_st*;
struct CUevent_st;
using cudaEvent_t = CUevent_st*;

struct cudaFuncAttributes {
  int maxThreadsPerBlock;
  int numRegs;
  std::size_t localSizeBytes, sharedSizeBytes;
};

struct cudaDeviceProp {
  char name[256];
  int multiProcessorCount;
  int major, minor;
  std::size_t totalGlobalMem;
};

cudaError_t cudaGetLastError();
cudaError_t cudaPeekAtLastError();
const char* cudaGetErrorString(cudaError_t err);
cudaError_t cudaGetDeviceCount(int* count);
cudaError_t cudaGetDevice(int* device);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device);
cudaError_t cudaRuntimeGetVersion(int* version);
cudaError_t cudaMemGetInfo(std::size_t* free_bytes, std::size_t* total_bytes);

namespace delyap_emulation {
cudaError_t device_malloc(void** ptr, std::size_t bytes, std::size_t align);
}
cudaError_t cudaMalloc(void** ptr, std::size_t bytes);
template <class T>
cudaError_t cudaMalloc(T** ptr, std::size_t bytes) {
  return delyap_emulation::device_malloc(reinterpret_cast<void**>(ptr), bytes, alignof(T));
}
cudaError_t cudaFree(void* ptr);
cudaError_t cudaMemcpy(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t stream = nullptr);
cudaError_t cudaMemset(void* ptr, int value, std::size_t bytes);
cudaError_t cudaMemsetAsync(void* ptr, int value, std::size_t bytes,
                            cudaStream_t stream = nullptr);
constexpr unsigned cudaHostAllocMapped = 2;
cudaError_t cudaHostAlloc(void** ptr, std::size_t bytes, unsigned flags);
cudaError_t cudaHostGetDevicePointer(void** device_ptr, void* host_ptr, unsigned flags);
cudaError_t cudaFreeHost(void* ptr);
cudaError_t cudaStreamSynchronize(cudaStream_t stream);
cudaError_t cudaDeviceSynchronize();

cudaError_t cudaEventCreate(cudaEvent_t* event);
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream = nullptr);
cudaError_t cudaEventSynchronize(cudaEvent_t event);
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t stop);
cudaError_t cudaEventDestroy(cudaEvent_t event);

template <class Kernel>
cudaError_t cudaFuncGetAttributes(cudaFuncAttributes* attr, Kernel) {
  *attr = cudaFuncAttributes{1024, 0, 0, 0};
  return cudaSuccess;
}

namespace delyap_emulation {

// Runs `thread_body` for every thread of a blocks × threads launch (the coordinates are set
// before each call) and records the launch's error for cudaGetLastError. `kernel` identifies
// the kernel: one that has never reached a barrier runs its threads as plain calls.
void launch(std::uintptr_t kernel, const char* name, unsigned blocks, int threads,
            const std::function<void()>& thread_body);

// True for null, device allocations and host-mapped pinned memory: what a kernel may
// dereference. launch() checks a kernel's pointer arguments with it (not pointers inside
// struct arguments).
bool is_device_pointer(const void* p);
void fail_launch(const char* name, const char* why);

template <class Arg>
bool usable_on_device(const Arg& arg) {
  if constexpr (std::is_pointer_v<Arg>)
    return is_device_pointer(const_cast<const void*>(static_cast<const volatile void*>(arg)));
  else
    return true;
}

}  // namespace delyap_emulation
