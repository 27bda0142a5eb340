// Linear constant-delay system: x' = A x + Σ_k B_k x(t − τ_k).
// Non-owning: the matrices live in the caller's (possibly batched) arrays.
#pragma once

#include "delyap/common/config.hpp"

namespace delyap {

struct LinearBatch;

struct LinearDde {
  // The registry's declaration: matrix parameters travel in their own pack (LinearBatch,
  // below), built from the arrays named here (bindings/system_params.hpp).
  using Batch = LinearBatch;
  static constexpr const char* kParameters[] = {"A", "B", "tau"};

  const double* A;    // dim × dim, row-major
  const double* B;    // n_delays × dim × dim
  const double* tau;  // n_delays
  int d;
  int nd;

  DELYAP_HD int dim() const { return d; }
  DELYAP_HD int n_delays() const { return nd; }
  DELYAP_HD double delay(int k) const { return tau[k]; }

  DELYAP_HD bool rhs(double, const double* x, const double* xd, double* out) const {
    for (int i = 0; i < d; ++i) {
      double acc = 0.0;
      const double* a = A + i * d;
      for (int j = 0; j < d; ++j) acc += a[j] * x[j];
      for (int k = 0; k < nd; ++k) {
        const double* b = B + (Index(k) * d + i) * d;
        const double* y = xd + k * d;
        for (int j = 0; j < d; ++j) acc += b[j] * y[j];
      }
      out[i] = acc;
    }
    return true;
  }

  DELYAP_HD void jacobian(double, const double*, const double*, double* jx, double* jd) const {
    for (int i = 0; i < d * d; ++i) jx[i] = A[i];
    for (Index i = 0; i < Index(nd) * d * d; ++i) jd[i] = B[i];
  }
};

// Linear systems of a batch, each array shared (stride 0) or per trajectory.
struct LinearBatch {
  const double* A;    // (1 | batch) × d × d
  const double* B;    // (1 | batch) × nd × d × d
  const double* tau;  // (1 | batch) × nd
  Index stride_A, stride_B, stride_tau;
  int d, nd;
  static constexpr int kDim = 8, kDelays = 4;  // the device build's limits (local scratch)
  DELYAP_HD LinearDde at(Index b) const {
    return LinearDde{A + b * stride_A, B + b * stride_B, tau + b * stride_tau, d, nd};
  }
};

}  // namespace delyap
