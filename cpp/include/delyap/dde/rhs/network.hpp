// Delay-coupled oscillator networks on sparse directed graphs (CSR, row i = in-edges of i).
// Edge delays come from a small set of distinct values ("delay classes"), so a delayed read
// is one history lookup per class for all N nodes, not one per edge; the edge sums are then
// sparse mat-vecs over precomputed per-class node values:
//   Kuramoto:      Σ_j A_ij sin(θ_j(t−τ_ij) − θ_i) = cos θ_i Σ_j A_ij sin θ_j(t−τ_ij)
//                                                  − sin θ_i Σ_j A_ij cos θ_j(t−τ_ij),
//                  so each edge costs two multiply-adds and no trigonometry.
//   Stuart–Landau: Σ_j A_ij (z_j(t−τ_ij) − z_i) is linear in the delayed states.
#pragma once

#include <cmath>
#include <vector>

#include "delyap/common/config.hpp"
#include "delyap/parallel/worker_pool.hpp"

namespace delyap {

struct CsrGraph {
  const Index* indptr;          // N + 1
  const int* indices;           // E source nodes
  const double* weights;        // E (A_ij)
  const unsigned char* klass;   // E delay class of each edge (nullptr: all class 0)
  int n;
};

// Per-element pieces of the Kuramoto right-hand side, shared by the host loop below and the
// CUDA kernels (one thread per delayed value, then one per node).
// (sin, cos) of delayed phase m (m = class · N + node), interleaved so an edge touches one line.
DELYAP_HD inline void delayed_sin_cos(Index m, const double* xd, double* sc) {
  sc[2 * m] = std::sin(xd[m]);
  sc[2 * m + 1] = std::cos(xd[m]);
}

// θ_i' = ω_i + K/d_i (cos θ_i Σ_j A_ij sin θ_j(t−τ_ij) − sin θ_i Σ_j A_ij cos θ_j(t−τ_ij)).
DELYAP_HD inline double kuramoto_rate(int i, const CsrGraph& g, const double* omega,
                                      const double* inv_norm, double coupling, const double* x,
                                      const double* sc) {
  double ss = 0.0, cc = 0.0;
  for (Index e = g.indptr[i]; e < g.indptr[i + 1]; ++e) {
    const Index src = 2 * (Index(g.klass ? g.klass[e] : 0) * g.n + g.indices[e]);
    ss += g.weights[e] * sc[src];
    cc += g.weights[e] * sc[src + 1];
  }
  const double si = std::sin(x[i]), ci = std::cos(x[i]);
  return omega[i] + coupling * inv_norm[i] * (ci * ss - si * cc);
}

struct KuramotoNetwork {
  CsrGraph g;
  const double* omega;    // N natural frequencies
  const double* inv_norm; // N: 1 / d_i (normalisation of the coupling sum)
  const double* tau;      // n_classes distinct delays
  int n_classes;
  double coupling;        // K
  mutable std::vector<double> trig;  // n_classes·N pairs (sin, cos) of delayed phases
  WorkerPool* pool = nullptr;        // splits one evaluation over threads (large single runs)

  int dim() const { return g.n; }
  int n_delays() const { return n_classes; }
  double delay(int k) const { return tau[k]; }

  bool rhs(double, const double* x, const double* xd, double* out) const {
    const int N = g.n;
    const Index M = Index(n_classes) * N;
    if (trig.size() != size_t(2 * M)) trig.assign(size_t(2 * M), 0.0);
    double* sc = trig.data();
    if (pool) {
      pool->run(M, [&](Index lo, Index hi) {
        for (Index m = lo; m < hi; ++m) delayed_sin_cos(m, xd, sc);
      });
      pool->run(N, [&](Index lo, Index hi) {
        for (Index i = lo; i < hi; ++i)
          out[i] = kuramoto_rate(int(i), g, omega, inv_norm, coupling, x, sc);
      });
      return true;
    }
    for (Index m = 0; m < M; ++m) delayed_sin_cos(m, xd, sc);
    for (int i = 0; i < N; ++i) out[i] = kuramoto_rate(i, g, omega, inv_norm, coupling, x, sc);
    return true;
  }

  // ∂f_i/∂θ_i and ∂f_i/∂θ_j(t − τ_k) are sparse; dense Jacobians are only for small N (tests).
  void jacobian(double, const double* x, const double* xd, double* jx, double* jd) const {
    const int N = g.n;
    for (Index m = 0; m < Index(N) * N; ++m) jx[m] = 0.0;
    for (Index m = 0; m < Index(n_classes) * N * N; ++m) jd[m] = 0.0;
    for (int i = 0; i < N; ++i)
      for (Index e = g.indptr[i]; e < g.indptr[i + 1]; ++e) {
        const int k = g.klass ? g.klass[e] : 0;
        const int j = g.indices[e];
        const double cs = std::cos(xd[Index(k) * N + j] - x[i]);
        const double a = coupling * inv_norm[i] * g.weights[e];
        jx[Index(i) * N + i] -= a * cs;
        jd[(Index(k) * N + i) * N + j] += a * cs;
      }
  }
};

// Node i of the Stuart–Landau right-hand side (both components), shared by the host loop below
// and the CUDA kernel (one thread per node). x, xd: (Re, Im) interleaved per node.
DELYAP_HD inline void stuart_landau_rates(int i, const CsrGraph& g, const double* omega,
                                          const double* inv_norm, double lambda,
                                          double coupling, const double* x, const double* xd,
                                          double* out) {
  const int N = g.n;
  double sr = 0.0, si = 0.0, wsum = 0.0;
  for (Index e = g.indptr[i]; e < g.indptr[i + 1]; ++e) {
    const Index src = Index(g.klass ? g.klass[e] : 0) * 2 * N + 2 * Index(g.indices[e]);
    sr += g.weights[e] * xd[src];
    si += g.weights[e] * xd[src + 1];
    wsum += g.weights[e];
  }
  const double re = x[2 * i], im = x[2 * i + 1];
  const double r2 = re * re + im * im;
  const double kc = coupling * inv_norm[i];
  out[2 * i] = (lambda - r2) * re - omega[i] * im + kc * (sr - wsum * re);
  out[2 * i + 1] = (lambda - r2) * im + omega[i] * re + kc * (si - wsum * im);
}

// z_i' = (λ + iω_i − |z_i|²) z_i + K/d_i Σ_j A_ij (z_j(t − τ_ij) − z_i); state (Re z, Im z)
// interleaved per node: x[2i], x[2i+1].
struct StuartLandauNetwork {
  CsrGraph g;
  const double* omega;
  const double* inv_norm;
  const double* tau;
  int n_classes;
  double lambda;
  double coupling;
  WorkerPool* pool = nullptr;  // splits one evaluation over threads (large single runs)

  int dim() const { return 2 * g.n; }
  int n_delays() const { return n_classes; }
  double delay(int k) const { return tau[k]; }

  bool rhs(double, const double* x, const double* xd, double* out) const {
    if (pool) {
      pool->run(g.n, [&](Index lo, Index hi) { nodes(int(lo), int(hi), x, xd, out); });
    } else {
      nodes(0, g.n, x, xd, out);
    }
    return true;
  }

 private:
  void nodes(int begin, int end, const double* x, const double* xd, double* out) const {
    for (int i = begin; i < end; ++i)
      stuart_landau_rates(i, g, omega, inv_norm, lambda, coupling, x, xd, out);
  }
};

}  // namespace delyap
