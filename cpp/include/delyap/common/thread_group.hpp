// A group of threads that cooperate on one problem: a CUDA thread block on the device, a
// single thread on the host. Algorithms written against it split loops with
//     for (i = g.rank(); i < n; i += g.size())
// call g.sync() between phases, and run inherently serial work (sampling, QR) on the leader.
// With SerialGroup every loop is the plain loop, so the host runs exactly the code the
// device does.
#pragma once

#include "delyap/common/config.hpp"

namespace delyap {

struct SerialGroup {
  DELYAP_HD int rank() const { return 0; }
  DELYAP_HD int size() const { return 1; }
  DELYAP_HD bool leader() const { return true; }
  DELYAP_HD void sync() const {}
};

#if defined(__CUDACC__) || defined(DELYAP_CUDA_EMULATION)
struct BlockGroup {
  __device__ int rank() const { return int(threadIdx.x); }
  __device__ int size() const { return int(blockDim.x); }
  __device__ bool leader() const { return threadIdx.x == 0; }
  __device__ void sync() const { __syncthreads(); }
};
#endif

}  // namespace delyap
