// scipy's BLAS/LAPACK for the host's dense kernels: the function pointers scipy.linalg exports
// to Cython (cython_blas / cython_lapack `__pyx_capi__` capsules), i.e. the OpenBLAS numpy and
// scipy users already run, handed to the core as a plain FortranLapack.
//
// BLAS threads: the calls run inside delyap's workers and OpenBLAS may split each of them over
// its own threads (as it does for numpy; OPENBLAS_NUM_THREADS or threadpoolctl set how many).
// delyap leaves that global setting alone for its Lyapunov kernels (large blocked products,
// which OpenBLAS's threads speed up; with `threads=` > 1 such calls from several workers take
// turns on OpenBLAS's level-3 lock rather than oversubscribing the cores). The exception is
// SingleThreadedBlas, held by the neural pass only (see there).
#pragma once

#include "dense_blocked.hpp"

namespace delyap::bindings {

// scipy's dgemm / dgeqrf / dorgqr, looked up at the first call (needs the GIL); null when scipy
// cannot be imported or a prototype differs from FortranLapack's (then Eigen runs everywhere).
const FortranLapack* scipy_lapack();

// While one is alive, scipy's OpenBLAS runs every call on the calling thread
// (openblas_set_num_threads(1)); the count it had is restored when the last one ends. For the
// neural pass, whose products are small (batch rows × hidden × dim or hidden) and whose
// parallelism is its own `threads=` over the rows: OpenBLAS splitting each 256 × 128 × 32
// product over its threads made a training step at dim 32, hidden 128 2.3× slower (48 → 109 ms
// on two loaded cores), and at depth 2 the hidden × hidden products 1.4× (22.6 → 32.7 ms wall).
// While a pass runs, BLAS calls from other threads of the process run single-threaded too.
// No-op where the library exports no thread setter (or is not OpenBLAS).
class SingleThreadedBlas {
 public:
  // active: false makes it a no-op (a pass without scipy's BLAS). Construct after
  // scipy_lapack() has been called (it finds the library).
  explicit SingleThreadedBlas(bool active);
  ~SingleThreadedBlas();
  SingleThreadedBlas(const SingleThreadedBlas&) = delete;
  SingleThreadedBlas& operator=(const SingleThreadedBlas&) = delete;

 private:
  bool active_;
};

// The host's dense policy for dimension d: scipy's library is looked up only when d is large
// enough for a blocked kernel. Call with the GIL held (before run_interruptible).
HostDense host_dense(int d);

}  // namespace delyap::bindings
