// Lyapunov spectrum of a product of i.i.d. random matrices drawn from a finite set:
// Q ← A_ξ Q on k directions, Householder QR every m steps, log|R_jj| accumulated.
#pragma once

#include <cmath>

#include "delyap/common/rng.hpp"
#include "delyap/common/status.hpp"
#include "delyap/common/work_poll.hpp"
#include "delyap/lyap/householder.hpp"
#include "delyap/lyap/qr_window.hpp"
#include "delyap/lyap/statistics.hpp"

namespace delyap {

struct IidProductProblem {
  const double* matrices;    // M × d × d, row-major
  const double* cumulative;  // M cumulative probabilities (last = 1)
  int M, d, k;
  Index steps, transient;
  int renorm_interval;
  uint64_t seed, stream;
};

// Counter ranges: step n draws counter n; start vectors draw from the top of the range.
constexpr uint64_t kStartVectorCounter = uint64_t(1) << 62;

// Fills q (n × k column-major) with standard normals from (seed, stream): entry i (in storage
// order) is normal (i mod 2) of the pair drawn at counter kStartVectorCounter + i/2.
DELYAP_HD inline void random_start(double* q, Index n, int k, uint64_t seed, uint64_t stream) {
  const Index total = n * k;
  for (Index i = 0; i < total; i += 2) {
    double z0, z1;
    normal2(seed, stream, kStartVectorCounter + uint64_t(i / 2), &z0, &z1);
    q[i] = z0;
    if (i + 1 < total) q[i + 1] = z1;
  }
}

// Fills q (n × k column-major) with random orthonormal columns from (seed, stream).
DELYAP_HD inline void random_orthonormal(double* q, Index n, int k, uint64_t seed,
                                         uint64_t stream, double* r, double* work) {
  random_start(q, n, k, seed, stream);
  householder_qr(q, n, n, k, r, work);
}

// The dense work of one step, written as portable loops for the device and small d: q ← A q
// and the re-orthonormalisation. Both charge `poll` (work_poll.hpp) as they go and return false
// once the run must stop. The host swaps in blocked BLAS-3 kernels for large d (HostDense in
// the bindings: Eigen, or scipy's BLAS/LAPACK as plain function pointers) through the same
// interface.
struct PortableDense {
  // tmp: d × k scratch.
  template <class Poll>
  DELYAP_HD bool multiply(const double* A, int d, double* q, int k, double* tmp,
                          Poll& poll) const {
    const double per_column = 2.0 * double(d) * double(d);
    const Index chunk = poll_chunk(per_column);
    for (int c = 0; c < k; ++c) {
      for (int i = 0; i < d; ++i) {
        double s = 0.0;
        for (int l = 0; l < d; ++l) s += A[i * d + l] * q[c * d + l];
        tmp[c * d + i] = s;
      }
      if ((c + 1) % chunk == 0 && poll(per_column * double(chunk))) return false;
    }
    for (Index i = 0; i < Index(d) * k; ++i) q[i] = tmp[i];
    return !poll(per_column * double(k % chunk));
  }
  // work: d + k doubles.
  template <class Poll>
  DELYAP_HD bool orthonormalize(double* q, int d, int k, double* r, double* work,
                                Poll& poll) const {
    householder_qr(q, d, d, k, r, work);
    return !poll(4.0 * double(d) * double(k) * double(k));
  }
};

// scratch: 2·d·k + k·k + d + k doubles. q_out receives the final directions (d × k).
template <class Cancel, class Dense = PortableDense>
DELYAP_HD Status run_iid_product(const IidProductProblem& p, LyapunovAccumulator& acc,
                                 double* q_out, double* scratch, const Cancel& cancelled,
                                 const Dense& dense = Dense{}) {
  const int d = p.d, k = p.k;
  double* q = q_out;
  double* tmp = scratch;
  double* r = tmp + Index(d) * k;
  double* work = r + Index(k) * k;
  double* logs = work + d + k;
  WorkPoll<Cancel> poll(cancelled);
  if (poll(0.0)) return Status::Cancelled;
  // random_orthonormal, with the QR that may be long (d = 1500: ~10^10 flops) made by `dense`.
  random_start(q, d, k, p.seed, p.stream);
  if (!dense.orthonormalize(q, d, k, r, work, poll)) return Status::Cancelled;
  acc.reset();
  const Index total = p.transient + p.steps;
  Index since = 0;
  for (Index n = 0; n < total; ++n) {
    double u0, u1;
    uniform2(p.seed, p.stream, uint64_t(n), &u0, &u1);
    const double* A = p.matrices + Index(sample_categorical(p.cumulative, p.M, u0)) * d * d;
    // Charged by work, so polling is as prompt at d = 2 (many steps per read of the flag) as
    // at d = 1500 (several reads per step).
    if (!dense.multiply(A, d, q, k, tmp, poll)) return Status::Cancelled;
    ++since;
    const Index done = n + 1;
    if (since == p.renorm_interval || done == p.transient || done == total) {
      column_scales(q, d, k, logs);
      if (!dense.orthonormalize(q, d, k, r, work, poll)) return Status::Cancelled;
      const Status st = window_logs(r, k, since, logs);
      if (st != Status::Success) return st;
      if (done > p.transient) acc.add(logs, double(since));
      since = 0;
    }
  }
  return Status::Success;
}

}  // namespace delyap
