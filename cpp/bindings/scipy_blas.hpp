// scipy's BLAS/LAPACK for the host's dense kernels: the function pointers scipy.linalg exports
// to Cython (cython_blas / cython_lapack `__pyx_capi__` capsules), i.e. the OpenBLAS numpy and
// scipy users already run, handed to the core as a plain FortranLapack.
//
// BLAS threads: the calls run inside delyap's workers and OpenBLAS may split each of them over
// its own threads (as it does for numpy; OPENBLAS_NUM_THREADS or threadpoolctl set how many).
// delyap does not change that global setting behind the user's back. With `threads=` > 1, large
// OpenBLAS level-3 calls from several workers take turns on OpenBLAS's level-3 lock rather than
// oversubscribing the cores; small ones run single-threaded side by side.
#pragma once

#include "dense_blocked.hpp"

namespace delyap::bindings {

// scipy's dgemm / dgeqrf / dorgqr, looked up at the first call (needs the GIL); null when scipy
// cannot be imported or a prototype differs from FortranLapack's (then Eigen runs everywhere).
const FortranLapack* scipy_lapack();

// The host's dense policy for dimension d: scipy's library is looked up only when d is large
// enough for a blocked kernel. Call with the GIL held (before run_interruptible).
HostDense host_dense(int d);

}  // namespace delyap::bindings
