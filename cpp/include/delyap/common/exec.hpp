// Where a solver's element-wise work runs. The stepper writes its per-component loops as
// functors (dde/step_kernels.hpp) and hands them to an executor:
//   for_each(n, f)  calls f(i) for i in [0, n)
//   sum(n, f)       returns Σ f(i)
// SerialExec runs them as plain loops in the calling thread: the CPU solvers and the GPU's
// one-thread-per-trajectory kernels use it, and after inlining it compiles to the loops it
// replaces. A device executor (cpp/cuda/vector_exec.cuh) launches one thread per element, so
// one large trajectory (a network of 10⁵ oscillators) runs its state on the GPU with the same
// stepper code.
#pragma once

#include "delyap/common/config.hpp"

namespace delyap {

struct SerialExec {
  template <class F>
  DELYAP_HD void for_each(Index n, const F& f) const {
    for (Index i = 0; i < n; ++i) f(i);
  }
  // In index order, so results do not depend on how the work is split elsewhere.
  template <class F>
  DELYAP_HD double sum(Index n, const F& f) const {
    double s = 0.0;
    for (Index i = 0; i < n; ++i) s += f(i);
    return s;
  }
};

}  // namespace delyap

#if !defined(__CUDA_ARCH__)
#include <algorithm>
#include <vector>

namespace delyap {

// SerialExec with its own memory: the host twin of the device executor, so the solver for one
// large trajectory (dde/vector_solve.hpp) runs, and is tested, on the CPU with the same code.
struct HostVectorExec : SerialExec {
  template <class T>
  struct Array {
    std::vector<T> data;
    explicit Array(Index n = 0) : data(size_t(n)) {}
    T* get() { return data.data(); }
  };
  template <class T>
  void upload(T* dst, const T* host, Index n) const { std::copy(host, host + n, dst); }
  template <class T>
  void download(T* host, const T* src, Index n) const { std::copy(src, src + n, host); }
};

}  // namespace delyap
#endif
