// Host/device portability: every per-trajectory algorithm is written once as a DELYAP_HD
// function so the CPU loop and the CUDA kernels run the same maths.
#pragma once

#if defined(__CUDACC__)
#define DELYAP_HD __host__ __device__
#define DELYAP_INLINE __forceinline__
#else
#define DELYAP_HD
#define DELYAP_INLINE inline
#endif

namespace delyap {
using Index = long long;
}  // namespace delyap

namespace delyap {
// NaN and ±inf give NaN for v − v; portable to device code and independent of <cmath> macros.
DELYAP_HD inline bool is_finite(double v) { return v - v == 0.0; }
}  // namespace delyap
