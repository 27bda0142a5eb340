// Trajectory b's system from flat parameter arrays (host or device memory): what an ensemble
// kernel thread, or its host mirror, calls to build its own right-hand side.
#pragma once

#include "delyap/common/config.hpp"
#include "delyap/dde/rhs/linear.hpp"
#include "delyap/dde/rhs/mackey_glass.hpp"

namespace delyap {

// Constant-delay Mackey–Glass, one parameter value per trajectory (arrays of length batch).
struct MackeyGlassBatch {
  const double* beta;
  const double* gamma;
  const double* n;
  const double* tau;
  static constexpr int kDim = 1, kDelays = 1;
  DELYAP_HD MackeyGlass at(Index b) const { return MackeyGlass{beta[b], gamma[b], n[b], tau[b]}; }
};

// Linear systems, each array shared (stride 0) or per trajectory.
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
