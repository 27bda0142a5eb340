// Runs long C++ work with the GIL released while the calling thread watches for Ctrl-C.
// Python runs signal handlers only in the main thread, so the caller wakes every 50 ms,
// takes the GIL, and calls PyErr_CheckSignals; on an interrupt it raises the cancel flag
// that the core polls (and calls `on_interrupt`, e.g. to raise a flag running GPU kernels
// read), waits for the workers to wind down, and re-raises in Python.
//
// How often the work itself looks at the flag is one rule, by work done rather than by steps
// (delyap/common/work_poll.hpp). Work that calls back into Python (a Python right-hand side:
// each call may take long) asks interrupt_requested() before each call instead.
//
// Progress rides on the same wake-ups: the work counts finished items (trajectories,
// configurations, problems) in an atomic that the outermost parallel_for bumps without the GIL
// (delyap/parallel/parallel_for.hpp); the waiting thread, which holds the GIL anyway when it
// checks for signals, passes a changed count to this Python thread's progress callback
// (set_progress_callback: delyap._progress installs it around a call), and the final count
// once the work is done. An exception from the callback cancels the run like Ctrl-C and
// propagates.
#pragma once

#include <pybind11/pybind11.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>

#include "delyap/parallel/parallel_for.hpp"

namespace delyap::bindings {

namespace py = pybind11;

namespace detail {
// The cancel flag of the run_interruptible call this thread works for (null on other threads):
// lets a Python callback deep inside the core stop between two calls without a flag argument
// threaded through every layer. Python systems run on the worker thread itself (threads = 1).
inline thread_local const std::atomic<bool>* worker_cancel = nullptr;
// This Python thread's progress callback f(items_done) for its runs (an owned reference, or
// null): thread-local so that concurrent calls from several Python threads (a Dask worker's
// threads) each report to their own bar.
inline thread_local PyObject* progress_callback = nullptr;
}  // namespace detail

// Installs `fn` (None: no callback) as this thread's progress callback and returns the previous
// one (None if there was none), for the caller to restore. Call with the GIL held.
inline py::object set_progress_callback(const py::object& fn) {
  PyObject* previous = detail::progress_callback;
  detail::progress_callback = fn.is_none() ? nullptr : fn.inc_ref().ptr();
  return previous ? py::reinterpret_steal<py::object>(previous) : py::object(py::none());
}

// True once Ctrl-C (or an error elsewhere) has cancelled the run this thread works for.
inline bool interrupt_requested() {
  return detail::worker_cancel && detail::worker_cancel->load(std::memory_order_relaxed);
}

template <class Work, class OnInterrupt = void (*)()>
void run_interruptible(std::atomic<bool>& cancel, Work&& work,
                       OnInterrupt&& on_interrupt = [] {}) {
  std::exception_ptr error;
  bool interrupted = false;
  std::atomic<Index> items_done{0};
  // A strong reference: the callback may replace itself while the run goes on.
  const py::object callback = py::reinterpret_borrow<py::object>(detail::progress_callback);
  Index reported = 0;
  // Passes a changed count to the callback (GIL held); false when the callback raised (the
  // Python error is then set, as after a failed PyErr_CheckSignals).
  auto report = [&]() {
    const Index n = items_done.load(std::memory_order_relaxed);
    if (!callback || n == reported) return true;
    reported = n;
    PyObject* r = PyObject_CallFunction(callback.ptr(), "n", static_cast<Py_ssize_t>(n));
    Py_XDECREF(r);
    return r != nullptr;
  };
  {
    py::gil_scoped_release release;
    std::mutex m;
    std::condition_variable cv;
    bool done = false;
    std::thread runner([&]() {
      detail::worker_cancel = &cancel;
      if (callback) progress_counter() = &items_done;
      try {
        work();
      } catch (...) {
        error = std::current_exception();
      }
      std::lock_guard<std::mutex> lock(m);
      done = true;
      cv.notify_all();
    });
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(m);
        if (cv.wait_for(lock, std::chrono::milliseconds(50), [&] { return done; })) break;
      }
      if (!interrupted) {
        py::gil_scoped_acquire acquire;
        if (PyErr_CheckSignals() != 0 || !report()) {
          interrupted = true;
          cancel.store(true);
          on_interrupt();
        }
      }
    }
    runner.join();
  }
  if (interrupted) throw py::error_already_set();
  if (error) std::rethrow_exception(error);
  if (!report()) throw py::error_already_set();
}

// Runs a pass, work(cancel, cancelled), with the GIL released and stopping on Ctrl-C, where a
// call's fixed cost matters (delyap.nn's training steps). A pass on
// one thread (one row block) runs right here on the calling thread: starting run_interruptible's
// watcher thread and running the pass on it cost 15-20 µs a call and the caller's warm caches
// (a training step of a small model, 2 RK4 steps at dim 2, hidden 32, is ≈ 0.25 ms in C++);
// the pass's own polls (WorkPoll, by work done) then check for signals, on this thread and at
// most every 50 ms, taking the GIL for it. Passes over several blocks, or with a progress
// callback installed, run under run_interruptible (whose thread checks every 50 ms whatever
// the blocks do).
template <class Work>
void run_interruptible_pass(bool one_thread, Work&& work) {
  std::atomic<bool> cancel{false};
  if (!one_thread || detail::progress_callback) {
    auto cancelled = [&cancel]() { return cancel.load(std::memory_order_relaxed); };
    run_interruptible(cancel, [&]() { work(cancel, cancelled); });
    return;
  }
  using Clock = std::chrono::steady_clock;
  constexpr auto kEvery = std::chrono::milliseconds(50);
  const std::thread::id caller = std::this_thread::get_id();
  Clock::time_point next_check = Clock::now() + kEvery;
  bool interrupted = false;
  // Called by the pass's polls; other threads (none here, but the core may add helpers) only
  // read the flag.
  auto cancelled = [&]() {
    if (cancel.load(std::memory_order_relaxed)) return true;
    if (std::this_thread::get_id() != caller || Clock::now() < next_check) return false;
    py::gil_scoped_acquire acquire;
    if (PyErr_CheckSignals() != 0) {  // the KeyboardInterrupt stays set for the rethrow below
      interrupted = true;
      cancel.store(true);
      return true;
    }
    next_check = Clock::now() + kEvery;
    return false;
  };
  std::exception_ptr error;
  {
    py::gil_scoped_release release;
    try {
      work(cancel, cancelled);
    } catch (...) {
      error = std::current_exception();
    }
  }
  if (interrupted) throw py::error_already_set();
  if (error) std::rethrow_exception(error);
}

}  // namespace delyap::bindings
