// The CPU emulation of the CUDA runtime declared in cuda_runtime.h: guarded device memory,
// checked copies, and kernel launches whose block threads run as fibers (x86-64 only: the
// context switch below saves the System V callee-saved registers).
#include "cuda_runtime.h"

#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <unordered_map>
#include <vector>

#if !defined(__x86_64__)
#error "the CUDA emulation switches fibers with x86-64 assembly"
#endif

uint3 threadIdx{0, 0, 0}, blockIdx{0, 0, 0};
dim3 blockDim, gridDim;

// Saves the callee-saved registers on the current stack, stores its pointer in *save_sp, and
// continues on new_sp (a stack saved by this function, or a fresh one set up by start_fiber).
extern "C" void delyap_emu_switch(void** save_sp, void* new_sp);
asm(R"(
  .text
  .globl delyap_emu_switch
  .type delyap_emu_switch, @function
delyap_emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size delyap_emu_switch, .-delyap_emu_switch
)");

namespace delyap_emulation {
namespace {

std::mutex memory_mutex;
thread_local cudaError_t last_error = cudaSuccess;  // per host thread, as in CUDA

std::size_t page_size() {
  static const std::size_t size = std::size_t(sysconf(_SC_PAGESIZE));
  return size;
}

std::size_t physical_memory() {
  return std::size_t(sysconf(_SC_PHYS_PAGES)) * page_size();
}

cudaError_t fail(cudaError_t err, const char* what) {
  std::fprintf(stderr, "delyap CUDA emulation: %s\n", what);
  last_error = err;
  return err;
}

// ---- device memory -------------------------------------------------------------------------

struct Mapping {
  char* base;
  std::size_t mapped;
  std::size_t bytes;
};
using AllocationTable = std::map<std::uintptr_t, Mapping>;  // by the pointer handed out
AllocationTable allocations;  // device memory
AllocationTable mapped_host;  // host-mapped pinned memory: host memory a kernel may read

// Whether [p, p + bytes) lies inside one allocation of `table` (lock memory_mutex first).
bool inside(const AllocationTable& table, const void* p, std::size_t bytes) {
  const auto addr = reinterpret_cast<std::uintptr_t>(p);
  auto it = table.upper_bound(addr);
  if (it == table.begin()) return false;
  --it;
  return addr + bytes <= it->first + it->second.bytes;
}

bool is_device(const void* p, std::size_t bytes) {
  std::lock_guard<std::mutex> lock(memory_mutex);
  return inside(allocations, p, bytes);
}

bool overlaps_device(const void* p, std::size_t bytes) {
  std::lock_guard<std::mutex> lock(memory_mutex);
  const auto addr = reinterpret_cast<std::uintptr_t>(p);
  auto it = allocations.upper_bound(addr + bytes - 1);
  if (it == allocations.begin()) return false;
  --it;
  return it->first + it->second.bytes > addr;
}

// Checks a copy's pointers against its kind; a wrong direction is a bug in the caller.
cudaError_t check_copy(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind kind) {
  if (bytes == 0) return cudaSuccess;
  const bool dst_dev = is_device(dst, bytes), src_dev = is_device(src, bytes);
  const bool dst_host = !overlaps_device(dst, bytes), src_host = !overlaps_device(src, bytes);
  bool ok = false;
  switch (kind) {
    case cudaMemcpyHostToDevice: ok = dst_dev && src_host; break;
    case cudaMemcpyDeviceToHost: ok = dst_host && src_dev; break;
    case cudaMemcpyDeviceToDevice: ok = dst_dev && src_dev; break;
    case cudaMemcpyHostToHost: ok = dst_host && src_host; break;
    case cudaMemcpyDefault: ok = (dst_dev || dst_host) && (src_dev || src_host); break;
  }
  if (!ok)
    return fail(cudaErrorInvalidValue,
                "cudaMemcpy: a pointer is not the kind of memory the copy direction says, or "
                "the range runs past the end of its device allocation");
  return cudaSuccess;
}

// ---- fibers ----------------------------------------------------------------------------------

constexpr std::size_t kStackBytes = 256 * 1024;

struct Fiber {
  char* stack = nullptr;  // kStackBytes, above a guard page
  void* sp = nullptr;
  bool done = false;  // returned; otherwise, between phases, waiting at a barrier
};

struct Block {
  std::vector<Fiber> fibers;
  void* scheduler_sp = nullptr;
  int current = -1;
  const std::function<void()>* body = nullptr;
};

Block* active = nullptr;  // the block whose fibers are running; null for plain calls

extern "C" void delyap_emu_fiber_entry() {
  (*active->body)();
  Fiber& f = active->fibers[active->current];
  f.done = true;
  delyap_emu_switch(&f.sp, active->scheduler_sp);
  std::abort();  // a finished fiber is never resumed
}

// A fresh stack laid out as delyap_emu_switch leaves one: six saved registers, then the
// "return address" delyap_emu_fiber_entry, entered with the stack aligned as after a call.
void start_fiber(Fiber& f) {
  if (!f.stack) {
    char* base = static_cast<char*>(mmap(nullptr, kStackBytes + page_size(),
                                         PROT_READ | PROT_WRITE,
                                         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    if (base == MAP_FAILED) {
      std::fprintf(stderr, "delyap CUDA emulation: cannot map a fiber stack\n");
      std::abort();
    }
    mprotect(base, page_size(), PROT_NONE);  // a stack overflow faults
    f.stack = base + page_size();
  }
  auto* top = reinterpret_cast<std::uintptr_t*>(f.stack + kStackBytes);  // 16-byte aligned
  std::uintptr_t* sp = top - 8;
  for (int i = 0; i < 6; ++i) sp[i] = 0;
  sp[6] = reinterpret_cast<std::uintptr_t>(&delyap_emu_fiber_entry);
  sp[7] = 0;
  f.sp = sp;
  f.done = false;
}

Block& block_of(int threads) {
  static Block block;
  if (int(block.fibers.size()) < threads) block.fibers.resize(std::size_t(threads));
  return block;
}

// Runs one block's threads as fibers, barrier phase by barrier phase; the order of the threads
// alternates between phases, starting backwards when `backwards`. Returns false when a barrier
// was reached by only part of the block.
bool run_fibers(int threads, const std::function<void()>& body, bool backwards,
                bool* hit_barrier) {
  Block& b = block_of(threads);
  for (int t = 0; t < threads; ++t) start_fiber(b.fibers[std::size_t(t)]);
  b.body = &body;
  active = &b;
  bool ok = true;
  for (int phase = 0;; ++phase) {
    for (int i = 0; i < threads; ++i) {
      const int t = (phase % 2 == 1) != backwards ? threads - 1 - i : i;
      Fiber& f = b.fibers[std::size_t(t)];
      if (f.done) continue;
      threadIdx = uint3{unsigned(t), 0, 0};
      b.current = t;
      delyap_emu_switch(&b.scheduler_sp, f.sp);
    }
    int done = 0;
    for (int t = 0; t < threads; ++t) done += b.fibers[std::size_t(t)].done;
    if (done == threads) break;
    *hit_barrier = true;
    if (done > 0) {
      ok = false;  // the waiting fibers are abandoned with their stacks
      break;
    }
  }
  active = nullptr;
  b.current = -1;
  return ok;
}

std::mutex launch_mutex;
enum class Barriers { Unknown, None, Used };
struct KernelRecord {
  Barriers barriers = Barriers::Unknown;  // learned from its first block
  unsigned long long launches = 0;
};
std::unordered_map<std::uintptr_t, KernelRecord> kernels;

// Thrown by __syncthreads() in a thread run as a plain call: caught by launch().
struct BarrierInPlainCall {};

}  // namespace

bool is_device_pointer(const void* p) {
  if (!p) return true;
  std::lock_guard<std::mutex> lock(memory_mutex);
  return inside(allocations, p, 1) || inside(mapped_host, p, 1);
}

void fail_launch(const char* name, const char* why) {
  std::fprintf(stderr, "delyap CUDA emulation: in %s, %s\n", name, why);
  last_error = cudaErrorLaunchFailure;
}

void launch(std::uintptr_t kernel, const char* name, unsigned blocks, int threads,
            const std::function<void()>& thread_body) {
  std::lock_guard<std::mutex> lock(launch_mutex);
  if (threads < 1 || threads > 1024 || blocks < 1 || blocks > 0x7fffffffu) {
    last_error = cudaErrorInvalidConfiguration;
    return;
  }
  gridDim = dim3(blocks);
  blockDim = dim3(unsigned(threads));
  KernelRecord& k = kernels[kernel];
  // Each kernel's launches alternate between backwards (the first) and forwards, for its
  // blocks and for its threads' first barrier phase: blocks that race with each other, or
  // threads that read shared memory before a barrier, then disagree from launch to launch.
  const bool backwards = (k.launches++ & 1) == 0;
  for (unsigned i = 0; i < blocks; ++i) {
    const unsigned blk = backwards ? blocks - 1 - i : i;
    blockIdx = uint3{blk, 0, 0};
    if (k.barriers == Barriers::None) {
      // A kernel whose first block never reached a barrier: threads are plain calls (fast).
      try {
        for (int i_t = 0; i_t < threads; ++i_t) {
          const int t = backwards ? threads - 1 - i_t : i_t;
          threadIdx = uint3{unsigned(t), 0, 0};
          thread_body();
        }
      } catch (const BarrierInPlainCall&) {
        k.barriers = Barriers::Used;  // fibers from the next launch on
        fail_launch(name, "__syncthreads() was reached although the kernel's first block never "
                          "reached one (the emulator ran it as plain calls; launch it again)");
        return;
      }
      continue;
    }
    bool hit = false;
    if (!run_fibers(threads, thread_body, backwards, &hit)) {
      fail_launch(name, "__syncthreads() was reached by some threads of a block while others "
                        "had returned");
      return;
    }
    if (k.barriers == Barriers::Unknown) k.barriers = hit ? Barriers::Used : Barriers::None;
    if (hit) k.barriers = Barriers::Used;
  }
}

}  // namespace delyap_emulation

using namespace delyap_emulation;

void __syncthreads() {
  if (!active) throw BarrierInPlainCall{};  // a plain call cannot be suspended
  Fiber& f = active->fibers[std::size_t(active->current)];
  delyap_emu_switch(&f.sp, active->scheduler_sp);
}

cudaError_t cudaGetLastError() {
  const cudaError_t err = last_error;
  last_error = cudaSuccess;
  return err;
}

cudaError_t cudaPeekAtLastError() { return last_error; }

const char* cudaGetErrorString(cudaError_t err) {
  switch (err) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevicePointer: return "invalid device pointer";
    case cudaErrorInvalidMemcpyDirection: return "invalid copy direction for memcpy";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
  }
  return "unknown error";
}

cudaError_t cudaGetDeviceCount(int* count) {
  *count = 1;
  return cudaSuccess;
}

cudaError_t cudaGetDevice(int* device) {
  *device = 0;
  return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) {
  return device == 0 ? cudaSuccess : fail(cudaErrorInvalidValue, "cudaSetDevice: no such device");
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device) {
  if (device != 0) return fail(cudaErrorInvalidValue, "cudaGetDeviceProperties: no such device");
  *prop = cudaDeviceProp{};
  std::snprintf(prop->name, sizeof(prop->name), "delyap CPU emulation");
  prop->multiProcessorCount = 1;
  prop->totalGlobalMem = physical_memory();
  return cudaSuccess;
}

cudaError_t cudaRuntimeGetVersion(int* version) {
  *version = 0;  // not a CUDA runtime
  return cudaSuccess;
}

cudaError_t cudaMemGetInfo(std::size_t* free_bytes, std::size_t* total_bytes) {
  *free_bytes = *total_bytes = physical_memory() / 2;
  return cudaSuccess;
}

cudaError_t cudaMalloc(void** ptr, std::size_t bytes) {
  return delyap_emulation::device_malloc(ptr, bytes, 8);
}

namespace delyap_emulation {
cudaError_t device_malloc(void** ptr, std::size_t bytes, std::size_t align) {
  *ptr = nullptr;
  if (bytes == 0) return cudaSuccess;
#if defined(__SANITIZE_ADDRESS__)
  // Under AddressSanitizer device memory is heap memory, checked on both sides and after free.
  char* base = static_cast<char*>(std::malloc(bytes));
  if (!base) return fail(cudaErrorMemoryAllocation, "cudaMalloc: out of memory");
  char* p = base;
  const std::size_t mapped = 0;
#else
  const std::size_t page = page_size();
  const std::size_t data_pages = (bytes + page - 1) / page;
  const std::size_t mapped = (data_pages + 1) * page;
  char* base = static_cast<char*>(
      mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (base == MAP_FAILED) return fail(cudaErrorMemoryAllocation, "cudaMalloc: out of memory");
  char* guard = base + data_pages * page;
  mprotect(guard, page, PROT_NONE);
  // The allocation ends at the guard page, up to the element type's alignment: a write one
  // element past the end faults.
  char* p = guard - ((bytes + align - 1) / align) * align;
#endif
  std::memset(p, 0xFF, bytes);
  {
    std::lock_guard<std::mutex> lock(memory_mutex);
    allocations[reinterpret_cast<std::uintptr_t>(p)] = Mapping{base, mapped, bytes};
  }
  *ptr = p;
  return cudaSuccess;
}
}  // namespace delyap_emulation

cudaError_t cudaFree(void* ptr) {
  if (!ptr) return cudaSuccess;
  Mapping m;
  {
    std::lock_guard<std::mutex> lock(memory_mutex);
    auto it = allocations.find(reinterpret_cast<std::uintptr_t>(ptr));
    if (it == allocations.end())
      return fail(cudaErrorInvalidDevicePointer, "cudaFree: not a device allocation");
    m = it->second;
    allocations.erase(it);
  }
#if defined(__SANITIZE_ADDRESS__)
  std::free(m.base);
#else
  munmap(m.base, m.mapped);  // later uses of the pointer fault
#endif
  return cudaSuccess;
}

cudaError_t cudaMemcpy(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind kind) {
  const cudaError_t err = check_copy(dst, src, bytes, kind);
  if (err != cudaSuccess) return err;
  if (bytes) std::memmove(dst, src, bytes);
  return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t) {
  return cudaMemcpy(dst, src, bytes, kind);
}

cudaError_t cudaMemset(void* ptr, int value, std::size_t bytes) {
  if (bytes && !is_device(ptr, bytes))
    return fail(cudaErrorInvalidValue, "cudaMemset: not (all) device memory");
  if (bytes) std::memset(ptr, value, bytes);
  return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void* ptr, int value, std::size_t bytes, cudaStream_t) {
  return cudaMemset(ptr, value, bytes);
}

// Pinned host memory is host memory that kernels may read: here, any host memory.
cudaError_t cudaHostAlloc(void** ptr, std::size_t bytes, unsigned) {
  *ptr = std::malloc(bytes ? bytes : 1);
  if (!*ptr) return fail(cudaErrorMemoryAllocation, "cudaHostAlloc: out of memory");
  std::lock_guard<std::mutex> lock(memory_mutex);
  mapped_host[reinterpret_cast<std::uintptr_t>(*ptr)] =
      Mapping{static_cast<char*>(*ptr), 0, bytes ? bytes : 1};
  return cudaSuccess;
}

cudaError_t cudaHostGetDevicePointer(void** device_ptr, void* host_ptr, unsigned) {
  *device_ptr = host_ptr;
  return cudaSuccess;
}

cudaError_t cudaFreeHost(void* ptr) {
  {
    std::lock_guard<std::mutex> lock(memory_mutex);
    mapped_host.erase(reinterpret_cast<std::uintptr_t>(ptr));
  }
  std::free(ptr);
  return cudaSuccess;
}

// Work runs when it is queued, so there is never anything to wait for.
cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }

struct CUevent_st {
  std::chrono::steady_clock::time_point when;
};

cudaError_t cudaEventCreate(cudaEvent_t* event) {
  *event = new CUevent_st{};
  return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t) {
  event->when = std::chrono::steady_clock::now();
  return cudaSuccess;
}

cudaError_t cudaEventSynchronize(cudaEvent_t) { return cudaSuccess; }

cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t stop) {
  *ms = std::chrono::duration<float, std::milli>(stop->when - start->when).count();
  return cudaSuccess;
}

cudaError_t cudaEventDestroy(cudaEvent_t event) {
  delete event;
  return cudaSuccess;
}
