// Depth-wise Lyapunov spectrum of a random deep network: the QR accumulation of the layer-to-
// layer Jacobians J_l = diag(φ'(h_l)) W_l along the forward pass h_l = W_l x_{l−1} + b_l,
// x_l = φ(h_l), for W_l with i.i.d. N(0, σ_w²/N) entries and b_l with N(0, σ_b²) entries
// (Poole et al. 2016; the order-to-chaos edge is λ₁ = 0). λ_i = (1/L) Σ_l log R_ii^(l).
//
// The layers are drawn on the fly from Philox (seed, stream), never stored beyond one layer,
// and shared by every grid point of a sweep (scaled by its σ_w, σ_b; see RandomNetworkProblem),
// so results do not depend on the thread count. Every input of a grid point sees the same
// network; inputs are the columns of one GEMM with all their tangent frames,
// Z_l · [x_1 … x_n | Q_1 … Q_n].
#pragma once

#include <cmath>
#include <cstdint>

#include "delyap/common/rng.hpp"
#include "delyap/common/status.hpp"
#include "delyap/common/work_poll.hpp"
#include "delyap/lyap/iid_product.hpp"

namespace delyap {

enum class LayerActivation : int { Linear = 0, Tanh = 1, Relu = 2 };

// One random network shape: W_l = (σ_w/√N) Z_l, b_l = σ_b z_l with standard normal Z_l, z_l
// drawn from (seed, stream). A sweep scales the *same* draws for every (σ_w, σ_b) (common
// random numbers): the O(N²) Box–Muller draws of a layer, which cost more than its GEMM, are
// made once for all grid points a worker runs, and λ(σ_w, σ_b) is a smooth surface whose
// differences (the edge of chaos) carry less noise than independent networks would give.
struct RandomNetworkProblem {
  int width;             // N (every layer N → N)
  int depth;             // L
  int k;                 // exponents (≤ N)
  int n_inputs;          // inputs through the same network
  double input_scale;    // inputs: i.i.d. N(0, input_scale²) entries (0: the zero input)
  LayerActivation activation;
  uint64_t seed, stream;
};

// Counter layout of a stream: layer l's N² weights (row-major) then its N biases take the
// normal pairs at l·layer_counters(N) + i/2; the inputs (n_inputs × N, input-major) start at
// kNetworkInputCounter; the start frame Q0 (shared by all inputs) is random_orthonormal's,
// at kStartVectorCounter.
constexpr uint64_t kNetworkInputCounter = uint64_t(1) << 61;
inline uint64_t layer_counters(int width) {
  return (uint64_t(width) * uint64_t(width) + uint64_t(width) + 1) / 2 + 1;
}

// `count` normals of (seed, stream) from counter `base` on, scaled by `scale`.
inline void draw_normals(double* out, Index count, double scale, uint64_t seed,
                         uint64_t stream, uint64_t base) {
  for (Index i = 0; i < count; i += 2) {
    double z0, z1;
    normal2(seed, stream, base + uint64_t(i / 2), &z0, &z1);
    out[i] = scale * z0;
    if (i + 1 < count) out[i + 1] = scale * z1;
  }
}

// Standard normal Z (N × N, row-major) and z (N) of layer l (0-based): one contiguous draw,
// weights first.
inline void draw_layer(const RandomNetworkProblem& p, int l, double* Z, double* z) {
  const Index N = p.width;
  const uint64_t base = uint64_t(l) * layer_counters(p.width);
  draw_normals(Z, N * N, 1.0, p.seed, p.stream, base);
  const uint64_t bias_base = base + uint64_t(N * N) / 2;
  if ((N * N) % 2 == 0) {
    draw_normals(z, N, 1.0, p.seed, p.stream, bias_base);
  } else {  // the last weight took the first normal of the pair: the bias takes the second
    double z0, z1;
    normal2(p.seed, p.stream, bias_base, &z0, &z1);
    z[0] = z1;
    if (N > 1) draw_normals(z + 1, N - 1, 1.0, p.seed, p.stream, bias_base + 1);
  }
}

// Inputs, input-major (n_inputs × N): input j is x[j·N … j·N + N − 1].
inline void draw_inputs(const RandomNetworkProblem& p, double* x) {
  draw_normals(x, Index(p.n_inputs) * p.width, p.input_scale, p.seed, p.stream,
               kNetworkInputCounter);
}

inline double activate(LayerActivation a, double h, double* slope) {
  switch (a) {
    case LayerActivation::Tanh: {
      const double t = std::tanh(h);
      *slope = 1.0 - t * t;
      return t;
    }
    case LayerActivation::Relu:
      *slope = h > 0.0 ? 1.0 : 0.0;
      return h > 0.0 ? h : 0.0;
    case LayerActivation::Linear:
    default:
      *slope = 1.0;
      return h;
  }
}

// Doubles of scratch run_random_networks needs for `n_points` grid points.
inline Index random_network_scratch(int width, int k, int n_inputs, int n_points) {
  const Index N = width, cols = Index(n_inputs) * (1 + k);
  return N * N + N + (Index(n_points) + 1) * N * cols + Index(k) * k + N + k + N * k;
}

// Runs grid points (σ_w[g], σ_b[g]), g < n_points, on the common draws of `p`, layer by layer.
// logs_out: n_points × n_inputs × k, Σ_l log R_ii^(l) per point and input (the caller divides
// by L); status_out: per point (a point whose product lost a direction stops with
// LostDirection, one with a non-finite product with NonFinite; the others go on). `dense` is the policy of run_iid_product (multiply by a row-major N × N
// matrix, thin QR with diag(R) ≥ 0), so the host swaps in its blocked kernels. Returns
// Cancelled when stopped from outside, else Success.
template <class Cancel, class Dense = PortableDense>
Status run_random_networks(const RandomNetworkProblem& p, const double* sigma_w,
                           const double* sigma_b, int n_points, double* logs_out,
                           Status* status_out, double* scratch, const Cancel& cancelled,
                           const Dense& dense = Dense{}) {
  const Index N = p.width;
  const int k = p.k, n = p.n_inputs;
  const int cols = n * (1 + k);
  const Index per_point = N * cols;   // x_1 … x_n, then Q_1 … Q_n (column-major)
  double* Z = scratch;
  double* z = Z + N * N;
  double* blocks = z + N;
  double* tmp = blocks + Index(n_points) * per_point;
  double* r = tmp + per_point;
  double* work = r + Index(k) * k;
  double* q0 = work + N + k;
  WorkPoll<Cancel> poll(cancelled);
  if (poll(0.0)) return Status::Cancelled;
  // Start frame: the same random orthonormal Q0 for every input and point.
  random_start(q0, N, k, p.seed, p.stream);
  if (!dense.orthonormalize(q0, int(N), k, r, work, poll)) return Status::Cancelled;
  draw_inputs(p, tmp);  // input-major = column-major N × n
  for (int g = 0; g < n_points; ++g) {
    double* blk = blocks + g * per_point;
    for (Index i = 0; i < N * n; ++i) blk[i] = tmp[i];
    for (int j = 0; j < n; ++j)
      for (Index i = 0; i < N * k; ++i) blk[N * n + Index(j) * N * k + i] = q0[i];
    for (Index i = 0; i < Index(n) * k; ++i) logs_out[g * Index(n) * k + i] = 0.0;
    status_out[g] = Status::Success;
  }
  const double inv_sqrt_n = 1.0 / std::sqrt(double(N));
  for (int l = 0; l < p.depth; ++l) {
    draw_layer(p, l, Z, z);
    if (poll(4.0 * double(N) * double(N))) return Status::Cancelled;  // Box–Muller draws
    for (int g = 0; g < n_points; ++g) {
      if (status_out[g] != Status::Success) continue;
      double* blk = blocks + g * per_point;
      const double sw = sigma_w[g] * inv_sqrt_n, sb = sigma_b[g];
      if (!dense.multiply(Z, int(N), blk, cols, tmp, poll)) return Status::Cancelled;
      for (int j = 0; j < n && status_out[g] == Status::Success; ++j) {
        double* x = blk + Index(j) * N;
        double* q = blk + N * n + Index(j) * N * k;
        for (Index i = 0; i < N; ++i) {
          double slope;
          x[i] = activate(p.activation, sw * x[i] + sb * z[i], &slope);
          slope *= sw;  // J = diag(φ') (σ_w/√N) Z
          for (int c = 0; c < k; ++c) q[Index(c) * N + i] *= slope;
        }
        if (!dense.orthonormalize(q, int(N), k, r, work, poll)) return Status::Cancelled;
        double* logs = logs_out + (g * Index(n) + j) * k;
        for (int c = 0; c < k; ++c) {
          const double v = std::log(r[Index(c) * k + c]);
          // log 0: the layer's Jacobian annihilated a direction (a dead ReLU layer), an
          // exact −∞ that stops the point; NaN: a non-finite product.
          if (!is_finite(v))
            status_out[g] = v == -INFINITY ? Status::LostDirection : Status::NonFinite;
          logs[c] += v;
        }
      }
    }
  }
  return Status::Success;
}

}  // namespace delyap
