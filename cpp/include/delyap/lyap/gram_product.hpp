// Linearised SGD at an interpolating minimum of a squared loss, in output coordinates u = J δ:
//     u ← (I − (η/B) K P_ξ) u,     K = J Jᵀ (n_rows = N·c rows, c outputs per sample),
// on k directions at O(n_rows · B · c · k) per step (K's rows for the batch, never an
// n_rows × n_rows step matrix), QR every m steps. The exponents are those of SGD on the normal
// space of the manifold of minima (Chemnitz & Engel 2024).
//
// When K is rank deficient (rank r < n_rows) the dynamics lives on range(K) = J · normal space,
// and its null space (exponent 0) must not leak in. The directions are then kept in the
// coordinates a of an orthonormal basis U of range(K) (u = U a, an isometry, so QR and exponents
// are unchanged): with K = U Λ Uᵀ the step reads
//     a ← a − (η/B) Σ_b (U Λ)[ξ_b, :]ᵀ (U[ξ_b, :] · a),
// which costs 2·B·c·r·k per step and has no null space to project out.
#pragma once

#include <cmath>

#include "delyap/common/status.hpp"
#include "delyap/common/thread_group.hpp"
#include "delyap/common/work_poll.hpp"
#include "delyap/lyap/batch_sampler.hpp"
#include "delyap/lyap/qr_window.hpp"
#include "delyap/lyap/gram_rows.hpp"
#include "delyap/lyap/householder.hpp"
#include "delyap/lyap/iid_product.hpp"
#include "delyap/lyap/statistics.hpp"

namespace delyap {

struct GramProblem {
  const double* K;       // rows applied by the update: n_rows × dim (full rank: K; reduced: U Λ)
  const double* gather;  // reduced: U, n_rows × dim, rows dotted with the directions; else null
  Index n_rows;
  int dim;               // length of a direction: n_rows (full rank) or rank(K)
  int outputs;           // c rows per sample
  double lr;
  int batch;
  Sampling sampling;
  int k;
  Index steps, transient;
  int renorm_interval;
  uint64_t seed, stream;
};

struct GramScratch {
  double* q;         // dim × k (column-major): the directions
  double* gathered;  // batch·c × k
  double* r;         // k × k
  double* work;      // dim + k
  double* logs;      // k
  uint32_t* perm;    // N
  uint32_t* idx;     // batch
  uint32_t* rows;    // batch·c: the rows of K the step reads

  // Storage for up to `rows` batch rows (batch · c) and n_samples samples: doubles, then words.
  DELYAP_HD static Index doubles_for(int dim, int k, Index rows) {
    return Index(dim) * k + rows * k + Index(k) * k + dim + k + k;
  }
  DELYAP_HD static Index words_for(Index n_samples, Index rows) { return n_samples + 2 * rows; }
  // The one layout of that storage (host runner and GPU kernel alike).
  DELYAP_HD static GramScratch carve(double* m, uint32_t* w, int dim, int k, Index rows,
                                     Index n_samples) {
    GramScratch s;
    s.q = m; m += Index(dim) * k;
    s.gathered = m; m += rows * k;
    s.r = m; m += Index(k) * k;
    s.work = m; m += dim + k;
    s.logs = m;
    s.perm = w; w += n_samples;
    s.idx = w; w += rows;
    s.rows = w;
    return s;
  }
};

// One SGD step on the k directions: u −= (η/B) Σ_{b, rows r of sample ξ_b} K[:, r] u[r], i.e.
// Q ← Q − K[:, ξ] G with G = (η/B) Q[ξ, :] (the old values, gathered first; K is symmetric, so
// its columns are read as contiguous rows). Reduced coordinates gather G = (η/B) U[ξ, :] Q.
// `update` applies the rows (gram_rows.hpp). The group's threads split the gather over the
// batch rows and the update over the direction entries.
template <class Group, class RowUpdate>
DELYAP_HD inline void gram_step(const Group& g, const GramProblem& p, GramScratch& s,
                                const RowUpdate& update) {
  const Index n = p.dim;
  const int c = p.outputs, k = p.k;
  const Index m = Index(p.batch) * c;
  const double scale = p.lr / p.batch;
  // Row r of the batch is output r % c of sample idx[r / c] (no division when c = 1: this loop
  // runs every step).
  for (Index r = g.rank(); r < m; r += g.size()) {
    const uint32_t row =
        c == 1 ? s.idx[r] : s.idx[r / c] * uint32_t(c) + uint32_t(r % c);
    s.rows[r] = row;
    if (!p.gather)
      for (int j = 0; j < k; ++j) s.gathered[r * k + j] = scale * s.q[Index(j) * n + row];
  }
  if (p.gather) {
    g.sync();
    update.gather(p.gather, s.rows, m, s.q, n, k, scale, s.gathered, Index(g.rank()),
                  Index(g.size()));
  }
  g.sync();
  update(s.q, n, k, p.K, s.rows, s.gathered, m, Index(g.rank()), Index(g.size()));
  g.sync();
}

// The whole run for one configuration. `status` is storage every thread of the group can read
// (shared memory on the device): the leader decides, all threads return the same status.
// `dense` makes the QR (PortableDense, or the host's blocked kernels: iid_product.hpp).
template <class Group, class Cancel, class RowUpdate, class Dense = PortableDense>
DELYAP_HD Status run_gram_product(const Group& g, const GramProblem& p, LyapunovAccumulator& acc,
                                  GramScratch& s, int* status, const Cancel& cancelled,
                                  const RowUpdate& update, const Dense& dense = Dense{}) {
  const Index n = p.dim;
  const int k = p.k;
  const uint32_t n_samples = uint32_t(p.n_rows / p.outputs);
  BatchSampler sampler{p.sampling, n_samples, uint32_t(p.batch), p.seed, p.stream,
                       p.sampling == Sampling::Iid ? nullptr : s.perm};
  if (g.leader()) {
    *status = int(Status::Success);
    sampler.init();
    random_orthonormal(s.q, n, k, p.seed, p.stream, s.r, s.work);
    acc.reset();
  }
  const Index total = p.transient + p.steps;
  // The leader charges the group's work (work_poll.hpp): the update (and the reduced gather)
  // touch B·c rows of n entries for each of the k directions.
  const double step_flops =
      2.0 * double(p.batch) * p.outputs * double(n) * k * (p.gather ? 2.0 : 1.0);
  WorkPoll<Cancel> poll(cancelled);  // the QR charges itself
  Index since = 0;
  for (Index step = 0; step < total; ++step) {
    if (g.leader()) {
      if (poll(step_flops)) *status = int(Status::Cancelled);
      // Every thread's sampler copy would do, but `perm` is shared: the leader draws.
      sampler.draw(uint64_t(step), s.idx);
    }
    g.sync();
    if (*status != int(Status::Success)) return Status(*status);
    gram_step(g, p, s, update);
    ++since;
    const Index done = step + 1;
    if (since == p.renorm_interval || done == p.transient || done == total) {
      if (g.leader()) column_scales(s.q, n, k, s.logs);
      if (g.leader() && !dense.orthonormalize(s.q, int(n), k, s.r, s.work, poll))
        *status = int(Status::Cancelled);
      if (g.leader() && *status == int(Status::Success)) {
        *status = int(window_logs(s.r, k, since, s.logs));
        if (*status == int(Status::Success) && done > p.transient) acc.add(s.logs, double(since));
      }
      since = 0;
      g.sync();
      if (*status != int(Status::Success)) return Status(*status);
      g.sync();  // everyone has read it before the leader may write it again (cancel check)
    }
  }
  return Status::Success;
}

}  // namespace delyap
