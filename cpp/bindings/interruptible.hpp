// Runs long C++ work with the GIL released while the calling thread watches for Ctrl-C.
// Python runs signal handlers only in the main thread, so the caller wakes every 50 ms,
// takes the GIL, and calls PyErr_CheckSignals; on an interrupt it raises the cancel flag
// that the core polls (and calls `on_interrupt`, e.g. to raise a flag running GPU kernels
// read), waits for the workers to wind down, and re-raises in Python.
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
