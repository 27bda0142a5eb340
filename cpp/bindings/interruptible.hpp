// Runs long C++ work with the GIL released while the calling thread watches for Ctrl-C.
// Python runs signal handlers only in the main thread, so the caller wakes every 50 ms,
// takes the GIL, and calls PyErr_CheckSignals; on an interrupt it raises the cancel flag
// that the core polls (and calls `on_interrupt`, e.g. to raise a flag running GPU kernels
// read), waits for the workers to wind down, and re-raises in Python.
//
// How often the work itself looks at the flag is one rule, by work done rather than by steps
// (delyap/common/work_poll.hpp). Work that calls back into Python (a Python right-hand side:
// each call may take long) asks interrupt_requested() before each call instead.
#pragma once

#include <pybind11/pybind11.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>

namespace delyap::bindings {

namespace py = pybind11;

namespace detail {
// The cancel flag of the run_interruptible call this thread works for (null on other threads):
// lets a Python callback deep inside the core stop between two calls without a flag argument
// threaded through every layer. Python systems run on the worker thread itself (threads = 1).
inline thread_local const std::atomic<bool>* worker_cancel = nullptr;
}  // namespace detail

// True once Ctrl-C (or an error elsewhere) has cancelled the run this thread works for.
inline bool interrupt_requested() {
  return detail::worker_cancel && detail::worker_cancel->load(std::memory_order_relaxed);
}

template <class Work, class OnInterrupt = void (*)()>
void run_interruptible(std::atomic<bool>& cancel, Work&& work,
                       OnInterrupt&& on_interrupt = [] {}) {
  std::exception_ptr error;
  bool interrupted = false;
  {
    py::gil_scoped_release release;
    std::mutex m;
    std::condition_variable cv;
    bool done = false;
    std::thread runner([&]() {
      detail::worker_cancel = &cancel;
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
        if (PyErr_CheckSignals() != 0) {
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
}

}  // namespace delyap::bindings
