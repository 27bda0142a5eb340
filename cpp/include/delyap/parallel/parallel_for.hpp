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

// A run of a single trajectory reports in thousandths of its time span instead of one item at
// its end (a large network can take minutes): kSpanUnits − 1 from the time reached (TimeProgress
// below), the last one when its loop finishes it. The Python side declares kSpanUnits as the
// total of such runs.
constexpr Index kSpanUnits = 1000;

// Sink wrapper that forwards to `inner` and moves `counter` (null: off) to
// ⌊(kSpanUnits − 1)·(t − t0)/(t_final − t0)⌋ as accepted steps reach t: relaxed atomic adds,
// no lock, no Python. Host only (the device's sinks never see an atomic).
template <class Sink>
struct TimeProgress {
  Sink& inner;
  double t0, t_final;
  std::atomic<Index>* counter;
  Index reported = 0;

  void start(double t, const double* x) { inner.start(t, x); }
  template <class View>
  void step(const View& h, double t, double t_new) {
    inner.step(h, t, t_new);
    if (!counter || !(t_final > t0)) return;
    const double fraction = std::min(1.0, (t_new - t0) / (t_final - t0));
    const Index now = Index(double(kSpanUnits - 1) * fraction);
    if (now > reported) {
      counter->fetch_add(now - reported, std::memory_order_relaxed);
      reported = now;
    }
  }
};

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
