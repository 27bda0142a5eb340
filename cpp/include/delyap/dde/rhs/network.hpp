// Delay-coupled oscillator networks on sparse directed graphs (CSR, row i = in-edges of i).
// Edge delays come from a small set of distinct values ("delay classes"), so a delayed read
// is one history lookup per class for all N nodes, not one per edge; the edge sums are then
// sparse mat-vecs over precomputed per-class node values:
//   Kuramoto:      Σ_j A_ij sin(θ_j(t−τ_ij) − θ_i) = cos θ_i Σ_j A_ij sin θ_j(t−τ_ij)
//                                                  − sin θ_i Σ_j A_ij cos θ_j(t−τ_ij),
//                  so each edge costs two multiply-adds and no trigonometry.
//   Stuart–Landau: Σ_j A_ij (z_j(t−τ_ij) − z_i) is linear in the delayed states.
// Their tangent equations (Lyapunov spectra) are sparse too: tangent_rhs applies the
// linearisation to k vectors at once in node-major order (each edge's coefficient read once,
// then k contiguous multiply-adds), so k vectors cost about k right-hand sides, never D².
#pragma once

#include <algorithm>
#include <atomic>
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

// θ_i' = ω_i + K/d_i Σ_j A_ij sin(θ_j(t−τ_ij) − θ_i − α)
//       = ω_i + K/d_i (cos α·(cos θ_i S_i − sin θ_i C_i) − sin α·(cos θ_i C_i + sin θ_i S_i)),
// S_i = Σ_j A_ij sin θ_j(t−τ_ij), C_i = Σ_j A_ij cos θ_j(t−τ_ij); α = 0 (cos_a = 1,
// sin_a = 0) gives the plain Kuramoto sum bit for bit.
DELYAP_HD inline double kuramoto_rate(int i, const CsrGraph& g, const double* omega,
                                      const double* inv_norm, double coupling, const double* x,
                                      const double* sc, double cos_a = 1.0,
                                      double sin_a = 0.0) {
  double ss = 0.0, cc = 0.0;
  for (Index e = g.indptr[i]; e < g.indptr[i + 1]; ++e) {
    const Index src = 2 * (Index(g.klass ? g.klass[e] : 0) * g.n + g.indices[e]);
    ss += g.weights[e] * sc[src];
    cc += g.weights[e] * sc[src + 1];
  }
  const double si = std::sin(x[i]), ci = std::cos(x[i]);
  if (sin_a == 0.0) return omega[i] + coupling * inv_norm[i] * (ci * ss - si * cc);
  return omega[i] +
         coupling * inv_norm[i] * (cos_a * (ci * ss - si * cc) - sin_a * (ci * cc + si * ss));
}

// Node-major copies of k tangent vectors' delayed values, for the sparse tangent products:
// out[(m·N + node)·k·c + j·c + l] = Vd[m·vd_stride + j·N·c + node·c + l] (c components per node).
inline void node_major_tangents(const double* Vd, Index vd_stride, int n_classes, int n, int c,
                                int k, double* out, WorkerPool* pool) {
  const Index M = Index(n_classes) * n;
  auto body = [&](Index lo, Index hi) {
    for (Index p = lo; p < hi; ++p) {
      const Index m = p / n, node = p % n;
      const double* src = Vd + m * vd_stride + node * c;
      double* dst = out + p * Index(k) * c;
      for (int j = 0; j < k; ++j)
        for (int l = 0; l < c; ++l) dst[j * c + l] = src[Index(j) * n * c + l];
    }
  };
  if (pool) pool->run(M, body);
  else body(0, M);
}

// out ← A q (A d × d row-major, q and out d × k column-major): a host GEMM the bindings may
// hand to a network for its tangent products on dense graphs (false: could not run).
using DenseMultiply = bool (*)(const double* A, Index d, const double* q, Index k, double* out);

// A graph is dense enough for the tangent products to go through a GEMM on the N × N
// coefficient matrix (BLAS-3, several times the sparse gather's speed) from this fill on.
constexpr double kDenseTangentFill = 0.25;

struct KuramotoNetwork {
  CsrGraph g;
  const double* omega;    // N natural frequencies
  const double* inv_norm; // N: 1 / d_i (normalisation of the coupling sum)
  const double* tau;      // n_classes distinct delays
  int n_classes;
  double coupling;        // K
  mutable std::vector<double> trig;  // n_classes·N pairs (sin, cos) of delayed phases
  WorkerPool* pool = nullptr;        // splits one evaluation over threads (large single runs)
  double alpha = 0.0;                // Sakaguchi phase lag α
  mutable std::vector<double> vt;    // tangent_rhs: node-major delayed tangent vectors
  DenseMultiply dense = nullptr;     // tangent_rhs on dense one-delay graphs (optional)
  mutable std::vector<double> cmat, csum;  // dense_tangent's coefficient matrix and row sums

  int dim() const { return g.n; }
  int n_delays() const { return n_classes; }
  double delay(int k) const { return tau[k]; }

  bool rhs(double, const double* x, const double* xd, double* out) const {
    const int N = g.n;
    const double* sc = delayed_trig(xd);
    const double ca = std::cos(alpha), sa = std::sin(alpha);
    if (pool) {
      pool->run(N, [&](Index lo, Index hi) {
        for (Index i = lo; i < hi; ++i)
          out[i] = kuramoto_rate(int(i), g, omega, inv_norm, coupling, x, sc, ca, sa);
      });
      return true;
    }
    for (int i = 0; i < N; ++i)
      out[i] = kuramoto_rate(i, g, omega, inv_norm, coupling, x, sc, ca, sa);
    return true;
  }

  // δ_i' = K/d_i Σ_j A_ij cos(θ_j(t−τ_ij) − θ_i − α) (δ_j(t−τ_ij) − δ_i) for k vectors
  // (system_traits.hpp's tangent_rhs). The edge's cosine comes from the (sin, cos) table by
  // the angle-difference formulas: no trigonometry per edge.
  void tangent_rhs(double, const double* x, const double* xd, int k, const double* V,
                   const double* Vd, Index vd_stride, double* out) const {
    const int N = g.n;
    const double* sc = delayed_trig(xd);
    const double ca = std::cos(alpha), sa = std::sin(alpha);
    if (dense && n_classes == 1 &&
        double(g.indptr[N]) >= kDenseTangentFill * double(N) * double(N) &&
        dense_tangent(x, sc, ca, sa, k, V, Vd, out))
      return;
    vt.resize(size_t(Index(n_classes) * N * k));
    node_major_tangents(Vd, vd_stride, n_classes, N, 1, k, vt.data(), pool);
    auto body = [&](Index lo, Index hi) {
      std::vector<double> acc(static_cast<size_t>(k), 0.0);
      for (Index i = lo; i < hi; ++i) {
        const double si = std::sin(x[i]), ci = std::cos(x[i]);
        std::fill(acc.begin(), acc.end(), 0.0);
        double csum = 0.0;
        for (Index e = g.indptr[i]; e < g.indptr[i + 1]; ++e) {
          const Index src = Index(g.klass ? g.klass[e] : 0) * N + g.indices[e];
          const double ss = sc[2 * src], cs = sc[2 * src + 1];
          const double cphi = cs * ci + ss * si, sphi = ss * ci - cs * si;  // φ = θ_j^τ − θ_i
          const double a = g.weights[e] * (ca * cphi + sa * sphi);          // w·cos(φ − α)
          csum += a;
          const double* v = vt.data() + src * k;
          for (int j = 0; j < k; ++j) acc[j] += a * v[j];
        }
        const double kc = coupling * inv_norm[i];
        for (int j = 0; j < k; ++j)
          out[Index(j) * N + i] = kc * (acc[j] - csum * V[Index(j) * N + i]);
      }
    };
    if (pool) pool->run(N, body);
    else body(0, N);
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
        const double cs = std::cos(xd[Index(k) * N + j] - x[i] - alpha);
        const double a = coupling * inv_norm[i] * g.weights[e];
        jx[Index(i) * N + i] -= a * cs;
        jd[(Index(k) * N + i) * N + j] += a * cs;
      }
  }

 private:
  // Dense graphs, one delay class: C_ij = (K/d_i) A_ij cos(θ_j(t−τ) − θ_i − α) as an N × N
  // matrix, then out = C·Vd by the GEMM (the k delayed vectors are already an N × k
  // column-major block: the augmented layout stores each vector contiguously) and
  // out_j,i −= (Σ_j C_ij) v_j,i. The columns are split over the pool's threads.
  bool dense_tangent(const double* x, const double* sc, double ca, double sa, int k,
                     const double* V, const double* Vd, double* out) const {
    const int N = g.n;
    cmat.assign(size_t(Index(N) * N), 0.0);
    csum.resize(size_t(N));
    auto fill = [&](Index lo, Index hi) {
      for (Index i = lo; i < hi; ++i) {
        const double si = std::sin(x[i]), ci = std::cos(x[i]);
        const double kc = coupling * inv_norm[i];
        double s = 0.0;
        double* row = cmat.data() + i * N;
        for (Index e = g.indptr[i]; e < g.indptr[i + 1]; ++e) {
          const int j = g.indices[e];
          const double ss = sc[2 * j], cs = sc[2 * j + 1];
          const double cphi = cs * ci + ss * si, sphi = ss * ci - cs * si;
          const double a = kc * g.weights[e] * (ca * cphi + sa * sphi);
          row[j] += a;
          s += a;
        }
        csum[i] = s;
      }
    };
    if (pool) pool->run(N, fill);
    else fill(0, N);
    std::atomic<bool> ok{true};
    const int parts = pool ? pool->threads() : 1;
    auto multiply = [&](Index lo, Index hi) {
      for (Index p = lo; p < hi; ++p) {
        const Index j0 = p * k / parts, j1 = (p + 1) * k / parts;
        if (j1 > j0 && !dense(cmat.data(), N, Vd + j0 * N, j1 - j0, out + j0 * N)) ok = false;
      }
    };
    if (pool) pool->run(parts, multiply);
    else multiply(0, 1);
    if (!ok) return false;
    for (int j = 0; j < k; ++j)
      for (int i = 0; i < N; ++i) out[Index(j) * N + i] -= csum[i] * V[Index(j) * N + i];
    return true;
  }

  // The (sin, cos) table of the delayed phases (one per class and node), in `trig`.
  const double* delayed_trig(const double* xd) const {
    const Index M = Index(n_classes) * g.n;
    if (trig.size() != size_t(2 * M)) trig.assign(size_t(2 * M), 0.0);
    double* sc = trig.data();
    if (pool) {
      pool->run(M, [&](Index lo, Index hi) {
        for (Index m = lo; m < hi; ++m) delayed_sin_cos(m, xd, sc);
      });
    } else {
      for (Index m = 0; m < M; ++m) delayed_sin_cos(m, xd, sc);
    }
    return sc;
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
  mutable std::vector<double> vt;  // tangent_rhs: node-major delayed tangent vectors

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

  // Per node the 2 × 2 Jacobian of (λ + iω − |z|²) z − (K/d_i) w_i z (w_i = Σ_j A_ij), plus
  // (K/d_i) Σ_j A_ij δ_j(t − τ_ij): the coupling is linear, so an edge's coefficient is A_ij.
  void tangent_rhs(double, const double* x, const double*, int k, const double* V,
                   const double* Vd, Index vd_stride, double* out) const {
    const int N = g.n;
    vt.resize(size_t(Index(n_classes) * N * 2 * k));
    node_major_tangents(Vd, vd_stride, n_classes, N, 2, k, vt.data(), pool);
    auto body = [&](Index lo, Index hi) {
      std::vector<double> acc(static_cast<size_t>(2 * k), 0.0);
      for (Index i = lo; i < hi; ++i) {
        std::fill(acc.begin(), acc.end(), 0.0);
        double wsum = 0.0;
        for (Index e = g.indptr[i]; e < g.indptr[i + 1]; ++e) {
          const Index src = Index(g.klass ? g.klass[e] : 0) * N + g.indices[e];
          const double w = g.weights[e];
          wsum += w;
          const double* v = vt.data() + src * 2 * k;
          for (int j = 0; j < 2 * k; ++j) acc[j] += w * v[j];
        }
        const double a = x[2 * i], b = x[2 * i + 1], r2 = a * a + b * b;
        const double kc = coupling * inv_norm[i];
        const double j11 = lambda - r2 - 2 * a * a - kc * wsum, j12 = -2 * a * b - omega[i];
        const double j21 = -2 * a * b + omega[i], j22 = lambda - r2 - 2 * b * b - kc * wsum;
        for (int j = 0; j < k; ++j) {
          const Index o = Index(j) * 2 * N + 2 * i;
          const double va = V[o], vb = V[o + 1];
          out[o] = j11 * va + j12 * vb + kc * acc[2 * j];
          out[o + 1] = j21 * va + j22 * vb + kc * acc[2 * j + 1];
        }
      }
    };
    if (pool) pool->run(N, body);
    else body(0, N);
  }

 private:
  void nodes(int begin, int end, const double* x, const double* xd, double* out) const {
    for (int i = begin; i < end; ++i)
      stuart_landau_rates(i, g, omega, inv_norm, lambda, coupling, x, xd, out);
  }
};

}  // namespace delyap
