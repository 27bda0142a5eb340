// Depth-wise Lyapunov spectrum of a random deep network: the QR accumulation of the layer-to-
// layer Jacobians J_l = diag(φ'(h_l)) W_l along the forward pass h_l = W_l x_{l−1} + b_l,
// x_l = φ(h_l), for W_l with i.i.d. N(0, σ_w²/N) entries and b_l with N(0, σ_b²) entries
// (Poole et al. 2016; the order-to-chaos edge is λ₁ = 0). λ_i = (1/L) Σ_l log R_ii^(l).
//
// The layers are drawn on the fly from Philox (seed, stream), never stored beyond one layer:
// a sweep over (σ_w, σ_b) gives each grid point its own stream, so results do not depend on
// the thread count. Every input of a grid point sees the same network; inputs are the
// columns of one GEMM with all their tangent frames, W_l · [x_1 … x_n | Q_1 … Q_n].
#pragma once

#include <cmath>
#include <cstdint>

#include "delyap/common/rng.hpp"
#include "delyap/common/status.hpp"
#include "delyap/common/work_poll.hpp"
#include "delyap/lyap/iid_product.hpp"

namespace delyap {

enum class LayerActivation : int { Linear = 0, Tanh = 1, Relu = 2 };

struct RandomNetworkProblem {
  int width;             // N (every layer N → N)
  int depth;             // L
  int k;                 // exponents (≤ N)
  int n_inputs;          // inputs through the same network
  double sigma_w, sigma_b;
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

// W (N × N, row-major) and b (N) of layer l (0-based): one contiguous draw, weights first.
inline void draw_layer(const RandomNetworkProblem& p, int l, double* W, double* b) {
  const Index N = p.width;
  const uint64_t base = uint64_t(l) * layer_counters(p.width);
  // Draw weights and biases as one sequence of standard normals so the pairing is fixed.
  draw_normals(W, N * N, p.sigma_w / std::sqrt(double(N)), p.seed, p.stream, base);
  const uint64_t bias_base = base + uint64_t(N * N) / 2;
  if ((N * N) % 2 == 0) {
    draw_normals(b, N, p.sigma_b, p.seed, p.stream, bias_base);
  } else {  // the last weight took the first normal of the pair: the bias takes the second
    double z0, z1;
    normal2(p.seed, p.stream, bias_base, &z0, &z1);
    b[0] = p.sigma_b * z1;
    if (N > 1) draw_normals(b + 1, N - 1, p.sigma_b, p.seed, p.stream, bias_base + 1);
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

// Doubles of scratch run_random_network needs.
inline Index random_network_scratch(int width, int k, int n_inputs) {
  const Index N = width, cols = Index(n_inputs) * (1 + k);
  return N * N + N + 2 * N * cols + Index(k) * k + N + k + N * k;
}

// Runs one grid point. logs_out: n_inputs × k (input-major), Σ_l log R_ii^(l) per input (the
// caller divides by L). `dense` is the policy of run_iid_product (multiply by a row-major
// N × N matrix, thin QR with diag(R) ≥ 0), so the host swaps in its blocked kernels.
template <class Cancel, class Dense = PortableDense>
Status run_random_network(const RandomNetworkProblem& p, double* logs_out, double* scratch,
                          const Cancel& cancelled, const Dense& dense = Dense{}) {
  const Index N = p.width;
  const int k = p.k, n = p.n_inputs;
  const int cols = n * (1 + k);
  double* W = scratch;
  double* b = W + N * N;
  double* block = b + N;               // N × cols column-major: x_1 … x_n, then Q_1 … Q_n
  double* tmp = block + N * cols;
  double* r = tmp + N * cols;
  double* work = r + Index(k) * k;
  double* q0 = work + N + k;
  WorkPoll<Cancel> poll(cancelled);
  if (poll(0.0)) return Status::Cancelled;
  // Start frame: the same random orthonormal Q0 for every input.
  random_start(q0, N, k, p.seed, p.stream);
  if (!dense.orthonormalize(q0, int(N), k, r, work, poll)) return Status::Cancelled;
  draw_inputs(p, tmp);  // input-major = column-major N × n
  for (Index i = 0; i < N * n; ++i) block[i] = tmp[i];
  for (int j = 0; j < n; ++j)
    for (Index i = 0; i < N * k; ++i) block[N * n + Index(j) * N * k + i] = q0[i];
  for (Index i = 0; i < Index(n) * k; ++i) logs_out[i] = 0.0;
  for (int l = 0; l < p.depth; ++l) {
    draw_layer(p, l, W, b);
    if (poll(4.0 * double(N) * double(N))) return Status::Cancelled;  // Box–Muller draws
    if (!dense.multiply(W, int(N), block, cols, tmp, poll)) return Status::Cancelled;
    for (int j = 0; j < n; ++j) {
      double* x = block + Index(j) * N;
      double* q = block + N * n + Index(j) * N * k;
      for (Index i = 0; i < N; ++i) {
        double slope;
        x[i] = activate(p.activation, x[i] + b[i], &slope);
        for (int c = 0; c < k; ++c) q[Index(c) * N + i] *= slope;
      }
      if (!dense.orthonormalize(q, int(N), k, r, work, poll)) return Status::Cancelled;
      bool finite = true;
      for (int c = 0; c < k; ++c) {
        const double v = std::log(r[Index(c) * k + c]);
        finite = finite && is_finite(v);
        logs_out[Index(j) * k + c] += v;
      }
      if (!finite) return Status::NonFinite;
    }
  }
  return Status::Success;
}

}  // namespace delyap
