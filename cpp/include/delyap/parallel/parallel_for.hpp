// A minimal work-sharing loop: `threads` workers pull indices from an atomic counter.
// Each index is independent work, so results never depend on the thread count or order.
//
// Progress: a caller that wants to watch a run (the bindings' run_interruptible, for a progress
// bar) points progress_counter() at an atomic on the thread that will call parallel_for; the
// loop then adds 1 per finished index with a relaxed atomic add (no lock, no Python). Only the
// outermost loop counts: it hides the pointer from loops nested inside fn.
#pragma once

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "delyap/common/config.hpp"

namespace delyap {

namespace detail {
inline thread_local std::atomic<Index>* progress_counter = nullptr;
}  // namespace detail

// The counter that the next parallel_for on this thread bumps per finished index (null: none).
inline std::atomic<Index>*& progress_counter() { return detail::progress_counter; }

inline int resolve_threads(int requested, Index work_items) {
  int n = requested > 0 ? requested : int(std::max(1u, std::thread::hardware_concurrency()));
  if (Index(n) > work_items) n = int(std::max<Index>(1, work_items));
  return n;
}

// Runs fn(i) for i in [0, n). Stops handing out work once `cancel` is set. The first C++
// exception thrown by fn cancels the rest and is rethrown here.
template <class Fn>
void parallel_for(Index n, int threads, std::atomic<bool>& cancel, Fn&& fn) {
  std::atomic<Index>* const progress = progress_counter();
  struct Hide {  // nested loops in fn (on this thread) must not count; restored on any exit
    std::atomic<Index>* saved;
    ~Hide() { progress_counter() = saved; }
  } hide{progress};
  progress_counter() = nullptr;
  std::atomic<Index> next{0};
  std::exception_ptr error;
  std::mutex error_mutex;
  auto worker = [&]() {
    for (;;) {
      if (cancel.load(std::memory_order_relaxed)) return;
      const Index i = next.fetch_add(1, std::memory_order_relaxed);
      if (i >= n) return;
      try {
        fn(i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!error) error = std::current_exception();
        cancel.store(true);
      }
      if (progress) progress->fetch_add(1, std::memory_order_relaxed);
    }
  };
  const int nt = resolve_threads(threads, n);
  if (nt == 1) {
    worker();
  } else {
    std::vector<std::thread> pool;
    pool.reserve(nt - 1);
    for (int k = 1; k < nt; ++k) pool.emplace_back(worker);
    worker();
    for (auto& th : pool) th.join();
  }
  if (error) std::rethrow_exception(error);
}

}  // namespace delyap
