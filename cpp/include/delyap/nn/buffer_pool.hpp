// Storage of the neural pass's large arrays: the states, stages and kept activations of the
// forward and the adjoints of the backward (from a few hundred kB to tens of MB per pass,
// allocated and freed once per training step).
//
// Why a pool: glibc serves such sizes by mmap, or from a heap it trims when the step frees
// them, so every training step touched fresh pages: at dim 8, hidden 32 with 50 RK4 steps,
// ≈ 2000 page faults per step (8 MB of first touches and kernel zeroing), 3 ms of a 15 ms
// step; at dim 2, 470 faults, 0.6 ms of 7. A freed buffer is kept for the next pass, whose
// arrays have the same sizes, and is already mapped.
//
// Idle memory held: at most kMaxIdle buffers and kMaxIdleBytes in all (the smallest are freed
// first; one larger than kMaxIdleBytes is freed at once); buffers below kMinBytes go to the
// ordinary heap. The pool is never destroyed (arrays handed to Python may be freed after
// static destructors would have run).
#pragma once

#include <cstddef>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <new>
#include <utility>
#include <vector>
#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace delyap::nn {

class BufferPool {
 public:
  static constexpr size_t kMinBytes = size_t(1) << 17;        // 128 KiB
  static constexpr size_t kHuge = size_t(1) << 21;            // 2 MiB: huge-page buffers
  static constexpr size_t kGranule = size_t(1) << 16;         // sizes below kHuge round to it
  static constexpr size_t kMaxIdle = 8;
  static constexpr size_t kMaxIdleBytes = size_t(128) << 20;  // 128 MiB

  static BufferPool& instance() {
    static BufferPool* pool = new BufferPool;  // leaked on purpose: see the file comment
    return *pool;
  }

  // At least `bytes`, uninitialised: an idle buffer of that size class (≥ bytes, ≤ twice it)
  // if there is one, else a new one (2 MiB-aligned on transparent huge pages from 2 MiB up).
  void* acquire(size_t bytes) {
    const size_t size = rounded(bytes);
    {
      std::lock_guard<std::mutex> lock(mu_);
      size_t best = idle_.size();
      for (size_t i = 0; i < idle_.size(); ++i)
        if (idle_[i].second >= size && idle_[i].second <= 2 * size &&
            (best == idle_.size() || idle_[i].second < idle_[best].second))
          best = i;
      if (best < idle_.size()) {
        const auto buf = idle_[best];
        idle_[best] = idle_.back();
        idle_.pop_back();
        idle_bytes_ -= buf.second;
        live_.push_back(buf);
        return buf.first;
      }
    }
    void* p = std::aligned_alloc(size >= kHuge ? kHuge : 64, size);
    if (!p) throw std::bad_alloc();
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (size >= kHuge) madvise(p, size, MADV_HUGEPAGE);  // advice only: may be refused
#endif
    std::lock_guard<std::mutex> lock(mu_);
    live_.emplace_back(p, size);
    return p;
  }

  // Back to the pool (kept idle within the limits, else freed).
  void release(void* p) {
    if (!p) return;
    std::lock_guard<std::mutex> lock(mu_);
    size_t i = 0;
    while (i < live_.size() && live_[i].first != p) ++i;
    if (i == live_.size()) {  // not ours: cannot happen through acquire/release pairs
      std::free(p);
      return;
    }
    const auto buf = live_[i];
    live_[i] = live_.back();
    live_.pop_back();
    if (buf.second > kMaxIdleBytes) {  // never kept: it would first evict every idle buffer
      std::free(buf.first);
      return;
    }
    idle_.push_back(buf);
    idle_bytes_ += buf.second;
    while (idle_.size() > kMaxIdle || idle_bytes_ > kMaxIdleBytes) {
      size_t smallest = 0;
      for (size_t j = 1; j < idle_.size(); ++j)
        if (idle_[j].second < idle_[smallest].second) smallest = j;
      std::free(idle_[smallest].first);
      idle_bytes_ -= idle_[smallest].second;
      idle_[smallest] = idle_.back();
      idle_.pop_back();
    }
  }
  static void release_fn(void* p) { instance().release(p); }

  // What is held idle now: (buffers, bytes).
  std::pair<size_t, size_t> idle() {
    std::lock_guard<std::mutex> lock(mu_);
    return {idle_.size(), idle_bytes_};
  }

 private:
  static size_t rounded(size_t bytes) {
    const size_t g = bytes >= kHuge ? kHuge : kGranule;
    return (bytes + g - 1) / g * g;
  }
  std::mutex mu_;
  std::vector<std::pair<void*, size_t>> live_, idle_;
  size_t idle_bytes_ = 0;
};

// An allocator whose resize() leaves new doubles uninitialised (the pass's arrays are written
// before they are read; zeroing them first was 5 % of a training step at dim 32) and whose
// large blocks come from the BufferPool.
template <class T>
struct UninitAllocator : std::allocator<T> {
  template <class U>
  struct rebind {
    using other = UninitAllocator<U>;
  };
  UninitAllocator() = default;
  template <class U>
  UninitAllocator(const UninitAllocator<U>&) noexcept {}
  T* allocate(size_t n) {
    if (n * sizeof(T) >= BufferPool::kMinBytes)
      return static_cast<T*>(BufferPool::instance().acquire(n * sizeof(T)));
    return std::allocator<T>::allocate(n);
  }
  void deallocate(T* p, size_t n) {
    if (n * sizeof(T) >= BufferPool::kMinBytes)
      BufferPool::instance().release(p);
    else
      std::allocator<T>::deallocate(p, n);
  }
  template <class U>
  void construct(U* p) noexcept {
    ::new (static_cast<void*>(p)) U;
  }
  template <class U, class... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
};
template <class T, class U>
bool operator==(const UninitAllocator<T>&, const UninitAllocator<U>&) noexcept {
  return true;
}
template <class T, class U>
bool operator!=(const UninitAllocator<T>&, const UninitAllocator<U>&) noexcept {
  return false;
}
using UninitVec = std::vector<double, UninitAllocator<double>>;

}  // namespace delyap::nn
