// A minimal work-sharing loop: `threads` workers pull indices from an atomic counter.
// Each index is independent work, so results never depend on the thread count or order.
#pragma once

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "delyap/common/config.hpp"

namespace delyap {

inline int resolve_threads(int requested, Index work_items) {
  int n = requested > 0 ? requested : int(std::max(1u, std::thread::hardware_concurrency()));
  if (Index(n) > work_items) n = int(std::max<Index>(1, work_items));
  return n;
}

// Runs fn(i) for i in [0, n). Stops handing out work once `cancel` is set. The first C++
// exception thrown by fn cancels the rest and is rethrown here.
template <class Fn>
void parallel_for(Index n, int threads, std::atomic<bool>& cancel, Fn&& fn) {
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
