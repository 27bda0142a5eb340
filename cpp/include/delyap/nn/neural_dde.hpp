// Neural DDEs (and ODEs: no delays) of the built-in vector-field family
//     h'(t) = W_out σ(W h(t) + Σ_k W_k h(t − τ_k) + b + w_t·t),   h(s) = h0 on [−τmax, 0],
// (the time input w_t·t optional: a non-autonomous field, t the stage's time), or with a
// stack of hidden layers a_l = σ(V_l a_{l−1} + c_l) (l = 1 … L−1, width H) between the first
// layer a_0 = σ(W h + …) and the output W_out a_{L−1}.
// integrated for a batch of samples in lockstep (one step sequence for the whole batch, the
// adaptive error norm the max over the batch), with the exact discrete adjoint of that pass.
//
// Forward: an explicit RK method from dde/tableau.hpp. Every stored step keeps its state X[n]
// and its stages K[n][j] (memory O(steps·batch·dim)); the pre-activations are recomputed by
// the backward pass (one GEMM per hidden layer), which keeps the hidden width out of the
// memory bound, unless the caller lets the forward keep the activations A[n][j][l] (batch ×
// hidden, per layer l) within a byte budget (Trace::keep_activations): then the backward reads
// them instead of redoing the GEMMs and the activations, a fifth of its work (one layer), and
// σ' comes from σ (tanh, relu, sigmoid). Delayed
// states are read from the stored steps by the interpolant the DDE solver uses: the method's
// continuous extension (DP5) or the cubic Hermite interpolant of (x, f) at both ends, written
// as weights on the step's stored vectors,
//     x(t_i + θ h_i) = X[i] + h_i (Σ_j w_j(θ) K[i][j] + w_end(θ) F[i]),
// F[i] = f(t_{i+1}) (the FSAL stage, or stage 0 of the next step). Consecutive stages reading
// the same points share the reads and the delayed part of the first layer's product (RK4: two
// distinct reads per step instead of four; Pass::locate_reads). Steps never exceed the
// smallest delay, so every read falls in a finished step or in the constant history, and the
// adaptive steps land on the discontinuity points Σ n_k τ_k (dde/discontinuities.hpp) as the
// DDE solver's do (the history's derivative jumps at t = 0).
//
// Backward: reverse-mode through every operation of the computed pass with its step sequence
// held fixed (as any discrete adjoint), through the stages and the interpolation weights. The
// gradient w.r.t. τ_k is that of the read time s = t + c_j h − τ_k: ∂x(s)/∂τ_k = −x'(s), with
// x' the derivative of the same interpolant (0 in the constant history). It is the exact
// derivative of the computed pass for the fixed step sequence; at a τ for which a read sits on
// a step boundary the pass is only one-sidedly differentiable, and the interval to the right
// is used.
//
// Rows of the batch are independent given the step sequence, so a fixed-grid forward and the
// backward run on row ranges (threads over the batch); the adaptive forward runs each step's
// stages on row blocks too (a persistent pool, one barrier per step) and takes the step
// decision, which depends on all rows, on the calling thread.
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <limits>
#include <memory>
#include <stdexcept>
#include <utility>
#include <vector>

#include "delyap/common/config.hpp"
#include "delyap/common/work_poll.hpp"
#include "delyap/dde/controller.hpp"
#include "delyap/dde/discontinuities.hpp"
#include "delyap/dde/options.hpp"
#include "delyap/dde/step_kernels.hpp"
#include "delyap/dde/tableau.hpp"
#include "delyap/nn/buffer_pool.hpp"
#include "delyap/nn/small_gemm.hpp"

namespace delyap::nn {

using RowMat = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using MatMap = Eigen::Map<RowMat>;
using ConstMatMap = Eigen::Map<const RowMat>;
using ArrMap = Eigen::Map<Eigen::ArrayXd>;

// A linear combination Σ_j c_j X_j of arrays of one length, gathered term by term.
struct Terms {
  static constexpr int kMax = kLincombMax;
  double c[kMax];
  const double* x[kMax];
  int count = 0;
  Terms& add(double coef, const double* arr) {
    if (count == kMax) throw std::logic_error("neural DDE: too many terms in a combination");
    c[count] = coef;
    x[count++] = arr;
    return *this;
  }
  // out = Σ (accumulate: out += Σ) over n doubles; out is none of the terms.
  void into(double* out, Index n, bool accumulate = false) const {
#ifdef DELYAP_NN_SMALL_GEMM
    small_gemm::lincomb(n, out, accumulate, count, c, x);
#else
    ArrMap o(out, n);
    if (!accumulate) o.setZero();
    for (int j = 0; j < count; ++j) o += c[j] * Eigen::Map<const Eigen::ArrayXd>(x[j], n);
#endif
  }
};

// out += c·x over n doubles.
inline void axpy(Index n, double c, const double* x, double* out) {
  Terms().add(c, x).into(out, n, true);
}

enum class Activation : int { Tanh = 0, Relu = 1, Softplus = 2, Sigmoid = 3 };

// The Lipschitz constant of σ (sup |σ'|).
inline double activation_lipschitz(Activation a) { return a == Activation::Sigmoid ? 0.25 : 1.0; }

// tanh on n contiguous doubles, as one loop of plain arithmetic the compiler vectorises:
// tanh x = 1 − 2/(e^{2x} + 1) with e^y = 2^k·p(r), k = round(y/ln 2) (the 1.5·2^52 rounding
// trick, whose bits also give 2^k), |r| ≤ ln 2/2, p the degree-13 Taylor polynomial (truncation
// < 1e-17); |x| is clamped at 20, where tanh is ±1 in double. Absolute error ≤ 4e-16 (checked
// against std::tanh over [−25, 25]). Neither Eigen (no vectorised double tanh) nor std::tanh
// per element keeps up with torch's vectorised tanh: at hidden widths ≤ 128 the activation,
// not the GEMMs, set the cost. On x86-64 Linux the loop is also compiled for x86-64-v3
// (AVX2 + FMA) and picked at load time (target_clones); `static`: one copy per translation
// unit, as the clones' resolver wants.
#if defined(__x86_64__) && defined(__linux__) && defined(__GNUC__) && !defined(__CUDACC__)
#define DELYAP_NN_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define DELYAP_NN_CLONES
#endif
// tanh' = 1 − tanh², from the values (also for stored activations: the same code, same bits).
DELYAP_NN_CLONES static void tanh_derivative(const double* a, double* da, Index n) {
  for (Index i = 0; i < n; ++i) da[i] = 1.0 - a[i] * a[i];
}

DELYAP_NN_CLONES static void tanh_array(const double* z, double* a, double* da, Index n) {
  // The clamp in a loop of its own: inside the main loop GCC sees it as control flow and
  // vectorises nothing (checked with -fopt-info-vec). z first in both calls: std::min(a, b)
  // returns a when the comparison fails, so a NaN z stays NaN (tanh(NaN) = NaN, as the small
  // kernels and torch give); with the bound first a NaN became ±20, a finite output.
  for (Index i = 0; i < n; ++i) a[i] = std::max(std::min(z[i], 20.0), -20.0);
  for (Index i = 0; i < n; ++i) {
    const double y = 2.0 * a[i];
    const double t = y * 1.4426950408889634 + 6755399441055744.0;  // 1.5·2^52: round to int
    const double k = t - 6755399441055744.0;
    const double r = (y - k * 0.6931471805598903) - k * 5.497923018708371e-14;  // ln 2 hi + lo
    double p = kExpTaylor[0];
#pragma GCC unroll 16
    for (int j = 1; j < 14; ++j) p = p * r + kExpTaylor[j];
    uint64_t bits;
    std::memcpy(&bits, &t, sizeof bits);
    bits = (bits + 1023) << 52;  // k sits in the low bits of t: 2^k's exponent field
    double scale;
    std::memcpy(&scale, &bits, sizeof scale);
    a[i] = 1.0 - 2.0 / (p * scale + 1.0);
  }
  // A separate loop: a branch on `da` inside the one above keeps it from vectorising.
  if (da) tanh_derivative(a, da, n);
}

// a = σ(z) and, when da is given, σ'(z), on n contiguous values: tanh_array, or whole-array
// Eigen expressions on Eigen's vectorised exp; never a scalar library call per element.
inline void activate(Activation act, const double* z, double* a, double* da, Index n) {
  Eigen::Map<const Eigen::ArrayXd> Z(z, n);
  ArrMap A(a, n);
  switch (act) {
    case Activation::Tanh:
      tanh_array(z, a, da, n);
      break;
    case Activation::Relu:
      A = Z.max(0.0);
      if (da) ArrMap(da, n) = (Z > 0.0).cast<double>();
      break;
    case Activation::Softplus:  // log(1 + e^z) without overflow; σ' is the logistic function
      A = Z.max(0.0) + (-Z.abs()).exp().log1p();
      if (da) ArrMap(da, n) = 1.0 / (1.0 + (-Z).exp());
      break;
    case Activation::Sigmoid:
      A = 1.0 / (1.0 + (-Z).exp());
      if (da) ArrMap(da, n) = A * (1.0 - A);
      break;
  }
}

// A column-major Fortran dgemm (the prototype scipy exports: every argument by pointer).
using DgemmFn = void (*)(char*, char*, int*, int*, int*, double*, double*, int*, double*, int*,
                         double*, double*, int*);

// C = op(A)·op(B) (beta = 0) or C += op(A)·op(B) (beta = 1) on row-major storage: C is M × N,
// op(A) M × K, op(B) K × N, op(X) = Xᵀ when its flag is set. Through an external BLAS when one
// is given (the bindings hand in scipy's OpenBLAS, several times Eigen's baseline-ISA kernel
// here), else Eigen. Row-major C = op(A) op(B) is column-major Cᵀ = op(B)ᵀ op(A)ᵀ.
struct Gemm {
  DgemmFn dgemm = nullptr;
  void operator()(bool ta, bool tb, Index M, Index N, Index K, const double* A, const double* B,
                  double beta, double* C) const {
    if (M == 0 || N == 0) return;
    if (K == 0) {
      if (beta == 0.0) std::fill(C, C + M * N, 0.0);
      return;
    }
    if (dgemm) {
      char tra = tb ? 'T' : 'N', trb = ta ? 'T' : 'N';
      int m = int(N), n = int(M), k = int(K), lda = int(tb ? K : N), ldb = int(ta ? M : K);
      int ldc = int(N);
      double alpha = 1.0, bt = beta;
      dgemm(&tra, &trb, &m, &n, &k, &alpha, const_cast<double*>(B), &lda,
            const_cast<double*>(A), &ldb, &bt, C, &ldc);
      return;
    }
    MatMap c(C, M, N);
    const ConstMatMap a(A, ta ? K : M, ta ? M : K), b(B, tb ? N : K, tb ? K : N);
    if (beta == 0.0) c.setZero();
    if (!ta && !tb) c.noalias() += a * b;
    else if (!ta && tb) c.noalias() += a * b.transpose();
    else if (ta && !tb) c.noalias() += a.transpose() * b;
    else c.noalias() += a.transpose() * b.transpose();
  }
};

// The vector field's parameters (row-major, non-owning): W (hidden × dim), Wd (n_delays ×
// hidden × dim), b (hidden), Wout (dim × hidden), the time input's weights wt (hidden;
// nullptr: an autonomous field), which make the bias b + wt·t at a stage's time t, and the
// stacked hidden layers Vh (n_stack × hidden × hidden) and ch (n_stack × hidden).
struct Field {
  int dim = 0, hidden = 0, n_delays = 0, n_stack = 0;
  const double *W = nullptr, *Wd = nullptr, *b = nullptr, *Wout = nullptr, *wt = nullptr;
  const double *Vh = nullptr, *ch = nullptr;
  int layers() const { return 1 + n_stack; }  // hidden layers, each `hidden` wide
  Activation act = Activation::Tanh;
  Gemm gemm;  // the GEMM every layer product goes through
  // dim ≤ kSmallDimMax: the layer products through small_gemm.hpp's kernels instead (false:
  // always `gemm`; tests compare the two).
  bool small_kernels = true;
  bool use_small() const {
#ifdef DELYAP_NN_SMALL_GEMM
    return small_kernels && dim <= kSmallDimMax;
#else
    return false;
#endif
  }
  // Multiply-adds of one evaluation for `rows` samples, as flops.
  double flops(Index rows) const {
    return 2.0 * double(rows) * hidden * (dim * (2.0 + n_delays) + double(n_stack) * hidden);
  }
};

// Gradients of a loss w.r.t. the field's parameters and the delays (accumulated); wt is
// empty for an autonomous field.
struct FieldGrad {
  std::vector<double> W, Wd, b, Wout, tau, wt, Vh, ch;
  explicit FieldGrad(const Field& f)
      : W(size_t(f.hidden) * f.dim), Wd(size_t(f.n_delays) * f.hidden * f.dim),
        b(size_t(f.hidden)), Wout(size_t(f.dim) * f.hidden), tau(size_t(f.n_delays)),
        wt(f.wt ? size_t(f.hidden) : 0), Vh(size_t(f.n_stack) * f.hidden * f.hidden),
        ch(size_t(f.n_stack) * f.hidden) {}
  void add(const FieldGrad& o) {
    auto acc = [](std::vector<double>& a, const std::vector<double>& b) {
      for (size_t i = 0; i < a.size(); ++i) a[i] += b[i];
    };
    acc(W, o.W);
    acc(Wd, o.Wd);
    acc(b, o.b);
    acc(Wout, o.Wout);
    acc(tau, o.tau);
    acc(wt, o.wt);
    acc(Vh, o.Vh);
    acc(ch, o.ch);
  }
};

// The stored pass: times t[0..N], states X[n] (batch × dim, n ≤ N) and stages K[n][j]
// (batch × dim, n < N). The forward fills its own storage; the backward may read a pass held
// elsewhere (the arrays handed back to Python) through the same pointers.
struct Trace {
  Index batch = 0;
  int dim = 0, stages = 0, layers = 1;  // layers: the field's hidden layers (Field::layers)
  Index n_steps = 0;
  double *tp = nullptr, *Xp = nullptr, *Kp = nullptr;
  std::vector<double> t;  // owned storage (empty when viewing another's)
  UninitVec X, K;          // every entry written by the forward before it is read
  // The activations A[n][j][l] (batch × hidden, layer l) when kept (keep_activations);
  // Ap == nullptr: not kept, the backward recomputes them.
  double* Ap = nullptr;
  std::unique_ptr<double, void (*)(void*)> A{nullptr, BufferPool::release_fn};
  Index a_steps = 0;  // steps the kept activations have room for
  Index rejected = 0;
  Index steps() const { return n_steps; }
  void resize(Index n) {
    t.resize(size_t(n + 1));
    X.resize(size_t((n + 1) * batch * dim));
    K.resize(size_t(n * stages * batch * dim));
    n_steps = n;
    tp = t.data();
    Xp = X.data();
    Kp = K.data();
  }
  // Keeps the activations of the steps sized so far if they take at most `budget` bytes (a
  // fixed step sequence: an adaptive one grows step by step). Uninitialised storage (every
  // entry the backward reads is written first) on transparent huge pages where Linux has
  // them, reused from the previous pass (BufferPool): for tens of MB per pass, the 4 KiB
  // page faults of a fresh allocation cost as much as the GEMMs the stored activations save.
  void keep_activations(int hidden, double budget) {
    const size_t n = size_t(n_steps * stages * layers * batch * hidden);
    if (n == 0 || 8.0 * double(n) > budget) return;
    A.reset(static_cast<double*>(BufferPool::instance().acquire(n * sizeof(double))));
    Ap = A.get();
    a_steps = n_steps;
  }
  // For an adaptive pass (steps unknown ahead): room for as many steps as `budget` bytes hold;
  // the pass drops the activations if it takes more steps (drop_activations_past).
  void keep_activations_upto(int hidden, double budget) {
    const double per_step = 8.0 * double(stages) * layers * double(batch) * hidden;
    const Index cap = per_step > 0.0 ? Index(budget / per_step) : 0;
    if (cap < 1) return;
    A.reset(static_cast<double*>(
        BufferPool::instance().acquire(size_t(cap) * size_t(per_step))));
    Ap = A.get();
    a_steps = cap;
  }
  // Step n is about to be computed: without room for it, keep no activations at all (the
  // backward then recomputes every step's).
  void drop_activations_past(Index n) {
    if (Ap && n >= a_steps) {
      A.reset();
      Ap = nullptr;
      a_steps = 0;
    }
  }
  double* a(Index n, int j, int l, Index r0, int H) const {
    return Ap + (((n * stages + j) * layers + l) * batch + r0) * H;
  }
  double* x(Index n, Index r0) const { return Xp + (n * batch + r0) * dim; }
  double* k(Index n, int j, Index r0) const {
    return Kp + ((n * stages + j) * batch + r0) * dim;
  }
};

// σ'(z) from a = σ(z) where σ' is a function of σ (not softplus: 1 − e^{−a} loses the small
// derivatives to cancellation), as the same expression activate() uses: identical results
// whether the backward recomputes or reads the stored activations.
inline bool derivative_from_value(Activation act) { return act != Activation::Softplus; }
inline void derivative_of_value(Activation act, const double* a, double* da, Index n) {
  Eigen::Map<const Eigen::ArrayXd> A(a, n);
  ArrMap D(da, n);
  switch (act) {
    case Activation::Tanh:
      tanh_derivative(a, da, n);
      break;
    case Activation::Relu:
      D = (A > 0.0).cast<double>();  // a > 0 exactly when z > 0
      break;
    case Activation::Sigmoid:
      D = A * (1.0 - A);
      break;
    case Activation::Softplus:
      throw std::logic_error("neural DDE: softplus activations are not stored");
  }
}

// Where a delayed read at time s falls, and the weights of the interpolant there.
struct Read {
  bool history = true;  // s ≤ 0: the constant h0
  Index i = 0;          // else the interval [t_i, t_{i+1}]
  double h = 0.0;
  double w[kMaxStages] = {}, dw[kMaxStages] = {};  // value and d/ds weights on K[i][j]
  double w_end = 0.0, dw_end = 0.0;                // on F[i] = K[i+1][0] (non-FSAL methods)
};

// The read weights of the interpolant the DDE solver stores (history.hpp): the method's own
// continuous extension, or cubic Hermite with x(t_{i+1}) = X[i] + h Σ b_j K[i][j], f(t_i) =
// K[i][0] and f(t_{i+1}) = F[i]; for FSAL methods F[i] is K[i][S−1], folded into its weight.
inline void read_weights(const Tableau& tab, double th, Read* r) {
  const int S = tab.stages;
  for (int j = 0; j < S; ++j) r->w[j] = r->dw[j] = 0.0;
  r->w_end = r->dw_end = 0.0;
  if (tab.n_dense > 0) {
    for (int j = 0; j < S; ++j) {
      double p = th;  // θ^(m+1)
      double q = 1.0;  // θ^m
      for (int m = 0; m < tab.n_dense; ++m) {
        r->w[j] += tab.dense[j][m] * p;
        r->dw[j] += (m + 1) * tab.dense[j][m] * q;
        p *= th;
        q *= th;
      }
    }
    return;
  }
  const double h01 = th * th * (3.0 - 2.0 * th), d01 = 6.0 * th * (1.0 - th);
  const double h10 = th * (1.0 - th) * (1.0 - th), d10 = (1.0 - th) * (1.0 - 3.0 * th);
  const double h11 = th * th * (th - 1.0), d11 = th * (3.0 * th - 2.0);
  for (int j = 0; j < S; ++j) {
    r->w[j] = h01 * tab.b[j];
    r->dw[j] = d01 * tab.b[j];
  }
  r->w[0] += h10;
  r->dw[0] += d10;
  if (tab.fsal) {
    r->w[S - 1] += h11;
    r->dw[S - 1] += d11;
  } else {
    r->w_end = h11;
    r->dw_end = d11;
  }
}

// The read at s given the finished steps t[0..n] (s ≤ t[n] up to rounding).
inline Read locate_read(const Tableau& tab, const double* t, Index n, double s) {
  Read r;
  if (!(s > 0.0) || n == 0) return r;
  r.history = false;
  const Index i = Index(std::upper_bound(t, t + n + 1, s) - t) - 1;
  r.i = std::min<Index>(std::max<Index>(i, 0), n - 1);
  r.h = t[r.i + 1] - t[r.i];
  double th = std::min(1.0, std::max(0.0, (s - t[r.i]) / r.h));
  // A read at stage 0 of step n lands in step n − 1 with θ > 0 only by rounding, when that
  // step equals the smallest delay (dt = τ; steps may exceed it by 1e-12 relative): θ is then
  // ≤ 1e-12, and the Hermite weights at θ > 0 would touch f(t_n) = K[n][0], not yet computed
  // (uninitialised memory: a NaN left there by an earlier pass made a healthy pass NaN). The
  // read is snapped to t_{n−1} (θ = 0), a change at rounding level. Later stages read step
  // n − 1 at θ ≥ c_j·h/h_{n−1}, far from 0.
  if (r.i + 1 == n && th < 1e-9) th = 0.0;
  read_weights(tab, th, &r);
  return r;
}

// Whether two reads take the same weights of the same finished step (so the same value: a
// finished step's vectors never change).
inline bool same_read(const Read& a, const Read& b, int stages) {
  if (a.history || b.history) return a.history == b.history;
  if (a.i != b.i || a.h != b.h || a.w_end != b.w_end || a.dw_end != b.dw_end) return false;
  for (int j = 0; j < stages; ++j)
    if (a.w[j] != b.w[j] || a.dw[j] != b.dw[j]) return false;
  return true;
}

// One batched pass (forward and backward) over rows [r0, r0 + rows) of a trace.
class Pass {
 public:
  Pass(const Field& f, const Tableau& tab, const double* tau, Index r0, Index rows)
      : f_(f), tab_(tab), tau_(tau), r0_(r0), rows_(rows),
        u_(size_t(rows * f.dim)), y_(size_t(std::max(1, f.n_delays) * rows * f.dim)),
        z_(size_t(rows * f.hidden)), a_(size_t(f.layers() * rows * f.hidden)),
        da_(size_t(f.layers() * rows * f.hidden)),
        bias_(f.wt ? size_t(f.hidden) : 0), small_(f.use_small()),
        pd_(f.n_delays > 0 ? size_t(rows * f.hidden) : 0), reads_(size_t(f.n_delays)),
        pd_reads_(size_t(f.n_delays)) {
    if (!small_) return;
    // The small kernels read the input weights transposed (D × H, contiguous over the hidden
    // units): slot 0 Wᵀ, slot 1 + k W_kᵀ; their gradients accumulate in the same layout.
    const int D = f.dim, H = f.hidden, nd = f.n_delays;
    wt_.resize(size_t((1 + nd) * D * H));
    for (int k = 0; k <= nd; ++k) {
      const double* w = k == 0 ? f.W : f.Wd + Index(k - 1) * H * D;
      for (int h = 0; h < H; ++h)
        for (int d = 0; d < D; ++d) wt_[size_t((Index(k) * D + d) * H + h)] = w[h * D + d];
    }
    xin_.resize(size_t(1 + nd));
    min_.resize(size_t(1 + nd));
    for (int k = 0; k <= nd; ++k) min_[size_t(k)] = wt_.data() + Index(k) * D * H;
    if (D == kSmallDimMax) {  // small_n8 reads W_out transposed (H × D); W, W_k are already
      woutt_.resize(size_t(H * D));
      for (int h = 0; h < H; ++h)
        for (int d = 0; d < D; ++d) woutt_[size_t(h * D + d)] = f.Wout[d * H + h];
    }
  }

  // out = A Mᵀ (rows × dim) for A rows × hidden, through the small kernels: M (dim × hidden)
  // or, at dim 8, its transpose Mt (hidden × dim) for small_n8.
  void small_product(const double* A, const double* M, const double* Mt, double* out) const {
#ifdef DELYAP_NN_SMALL_GEMM
    if (f_.dim == kSmallDimMax)
      small_gemm::small_n8(rows_, f_.hidden, A, Mt, out);
    else
      small_gemm::small_n(f_.dim, rows_, f_.hidden, A, M, false, out);
#else
    (void)A, (void)M, (void)Mt, (void)out;
    throw std::logic_error("neural DDE: small kernels not built");
#endif
  }

  // x(s) for the pass's rows into out, from the finished steps t[0..n].
  void read_value(const Trace& tr, const Read& r, Index n, double* out) const {
    const Index m = rows_ * f_.dim;
    if (r.history) {
      std::copy(tr.x(0, r0_), tr.x(0, r0_) + m, out);
      return;
    }
    Terms v;
    v.add(1.0, tr.x(r.i, r0_));
    for (int j = 0; j < tab_.stages; ++j)
      if (r.w[j] != 0.0) v.add(r.h * r.w[j], tr.k(r.i, j, r0_));
    if (r.w_end != 0.0) {
      if (r.i + 1 > n) throw std::logic_error("neural DDE: read past the finished steps");
      v.add(r.h * r.w_end, tr.k(r.i + 1, 0, r0_));
    }
    v.into(out, m);
  }

  // u = X[n] + h Σ_{l<j} a_jl K[n][l], stage j's input (into u_).
  void stage_input(const Trace& tr, Index n, int j, double h) {
    Terms u;
    u.add(1.0, tr.x(n, r0_));
    for (int l = 0; l < j; ++l)
      if (tab_.a[j][l] != 0.0) u.add(h * tab_.a[j][l], tr.k(n, l, r0_));
    u.into(u_.data(), rows_ * f_.dim);
  }

  // K[n][j] for the step [t, t + h] (stages < j already in the trace).
  void stage(Trace& tr, Index n, int j, double h) {
    const int nd = f_.n_delays;
    const double t = tr.tp[n];
    stage_input(tr, n, j, h);
    if (nd > 0 && !locate_reads(tr, n, t + tab_.c[j] * h)) {
      load_reads(tr, n);
      delayed_product(pd_.data());
    }
    auto act_of = [&](int l) { return acts(tr, n, j, l); };
    eval(u_.data(), nd > 0 ? pd_.data() : nullptr, t + tab_.c[j] * h, nullptr, act_of);
    out_product(act_of(f_.layers() - 1), tr.k(n, j, r0_));
  }

  // The delayed reads of a stage at time ts (finished steps t[0..n]) into reads_; true when
  // they are those of y_ (and of P in pd_): consecutive stages often read the same points (RK4's
  // two midpoint stages; a step's last stage, at t + h, and the next step's first; DP5's two
  // stages at t + h), and then share the reads and the delayed part of the first layer's
  // product, P = Σ_k y_k W_kᵀ. Sharing halves the delayed GEMMs of an RK4 pass.
  bool locate_reads(const Trace& tr, Index n, double ts) {
    bool same = have_reads_;
    for (int k = 0; k < f_.n_delays; ++k) {
      reads_[size_t(k)] = locate_read(tab_, tr.tp, n, ts - tau_[k]);
      same = same && same_read(reads_[size_t(k)], pd_reads_[size_t(k)], tab_.stages);
    }
    return same;
  }

  // The values of reads_ into y_ (rows × dim per delay); they become the current reads.
  void load_reads(const Trace& tr, Index n) {
    const Index m = rows_ * f_.dim;
    for (int k = 0; k < f_.n_delays; ++k)
      read_value(tr, reads_[size_t(k)], n, y_.data() + k * m);
    pd_reads_ = reads_;
    have_reads_ = true;
  }

  // P = Σ_k y_k W_kᵀ (rows × hidden), without the bias.
  void delayed_product(double* pd) {
    const int D = f_.dim, H = f_.hidden, nd = f_.n_delays;
#ifdef DELYAP_NN_SMALL_GEMM
    if (small_) {
      for (int k = 0; k < nd; ++k) xin_[size_t(1 + k)] = y_.data() + Index(k) * rows_ * D;
      small_gemm::small_k(D, rows_, H, nd, xin_.data() + 1, min_.data() + 1, nullptr, nullptr,
                          small_gemm::kPlain, nullptr, pd, nullptr);
      return;
    }
#endif
    for (int k = 0; k < nd; ++k)
      f_.gemm(false, true, rows_, H, D, y_.data() + Index(k) * rows_ * D,
              f_.Wd + Index(k) * H * D, k == 0 ? 0.0 : 1.0, pd);
  }

  // k = a W_outᵀ (rows × dim).
  void out_product(const double* a, double* k) const {
#ifdef DELYAP_NN_SMALL_GEMM
    if (small_) {
      small_product(a, f_.Wout, woutt_.data(), k);
      return;
    }
#endif
    f_.gemm(false, true, rows_, f_.dim, f_.hidden, a, f_.Wout, 0.0, k);
  }

  // X[n+1] = X[n] + h Σ b_j K[n][j].
  void advance(Trace& tr, Index n, double h) const {
    Terms x1;
    x1.add(1.0, tr.x(n, r0_));
    for (int j = 0; j < tab_.stages; ++j)
      if (tab_.b[j] != 0.0) x1.add(h * tab_.b[j], tr.k(n, j, r0_));
    x1.into(tr.x(n + 1, r0_), rows_ * f_.dim);
  }

  // All stages of step n and X[n+1]. FSAL methods take stage 0 from the previous step.
  void step(Trace& tr, Index n, double h) {
    const Index m = rows_ * f_.dim;
    for (int j = 0; j < tab_.stages; ++j) {
      if (j == 0 && tab_.fsal && n > 0) {
        std::copy(tr.k(n - 1, tab_.stages - 1, r0_), tr.k(n - 1, tab_.stages - 1, r0_) + m,
                  tr.k(n, 0, r0_));
        continue;
      }
      stage(tr, n, j, h);
    }
    advance(tr, n, h);
  }

  // Reverse pass over the trace's steps for these rows. lam_out: ∂L/∂X[N] (rows × dim);
  // writes ∂L/∂h0 to grad_h0 (rows × dim) and accumulates into g. Returns false if stopped.
  template <class Poll>
  bool backward(const Trace& tr, const double* lam_out, double* grad_h0, FieldGrad& g,
                Poll& poll) {
    const int D = f_.dim, H = f_.hidden, nd = f_.n_delays, S = tab_.stages;
    const Index N = tr.steps(), m = rows_ * D;
    // The adjoints of the states and stages, zeroed step by step just before a step's first
    // contribution (steps are reached in decreasing order: a step's adjoints receive
    // contributions only from itself and later steps), not all up front.
    UninitVec lx(size_t((N + 1) * m)), lk(size_t(N * S * m));
    Index zeroed = N + 1;  // steps ≥ zeroed are zeroed
    auto ensure = [&](Index i) {
      for (; zeroed > i; --zeroed) {
        const Index z = zeroed - 1;
        std::fill(lx.data() + z * m, lx.data() + (z + 1) * m, 0.0);
        if (z < N) std::fill(lk.data() + z * S * m, lk.data() + (z + 1) * S * m, 0.0);
      }
    };
    std::vector<double> lu(static_cast<size_t>(m)), ly(size_t(std::max(1, nd) * m)),
        gz(static_cast<size_t>(rows_ * H)), xp(static_cast<size_t>(m)),
        gz2(f_.n_stack ? static_cast<size_t>(rows_ * H) : 0),
        gzd(nd > 0 ? static_cast<size_t>(rows_ * H) : 0);
    auto lxp = [&](Index n) { return lx.data() + n * m; };
    auto lkp = [&](Index n, int j) { return lk.data() + (n * S + j) * m; };
    auto LX = [&](Index n) { return ArrMap(lxp(n), m); };
    ensure(N);
    LX(N) = Eigen::Map<const Eigen::ArrayXd>(lam_out, m);
    if (small_) gwt_.assign(wt_.size(), 0.0);
    ArrMap hist_adj(grad_h0, m);
    hist_adj.setZero();
    // With a time input a stage's bias gradient also goes to wt, times the stage's time: it is
    // summed per stage in gbs (else straight into g.b).
    std::vector<double> gbs(f_.wt ? size_t(H) : 0);
    double* gb_stage = f_.wt ? gbs.data() : g.b.data();
    Eigen::Map<Eigen::RowVectorXd> gb(gb_stage, H);
    // Stages that share their delayed reads (locate_reads; consecutive in the reverse order as
    // in the forward) form a group: gzd sums their first-layer gradients gz, and the delayed
    // part of the backward (W_k's gradients, ∂L/∂y_k = gzd W_k, the reads' adjoints and τ's
    // gradient, all linear in gz) runs once per group, when it closes, before the next stage
    // with other reads. Why no adjoint is read before the group's contributions reach it: a
    // read by a stage of step n touches X[i], K[i][·] with i ≤ n − 1, consumed from step i's
    // stages on, after the group has closed; and (Hermite, non-FSAL: RK4, Euler) K[n][0] = F[n−1]
    // only at θ > 0 in step n − 1, which stage (n, 0) itself never reads (it reads t_n − τ ≤
    // t_{n−1}, a θ > 0 there only by rounding, snapped to 0 by locate_read), so (n, 0) never
    // shares that group and is processed after it closes.
    have_reads_ = false;  // an open group: y_ holds the values of pd_reads_
    auto close_group = [&]() {
      if (!have_reads_) return;
      have_reads_ = false;
      for (int k = 0; k < nd; ++k) {
        double* lyk = ly.data() + k * m;
        delayed_backward(k, gzd.data(), lyk, g);
        const Read& r = pd_reads_[size_t(k)];
        const ArrMap ly_arr(lyk, m);
        if (r.history) {
          hist_adj += ly_arr;
          continue;  // x' = 0 in the constant history: no τ term
        }
        // ∂/∂τ_k of the read: −x'(s).
        Terms d;
        for (int l = 0; l < S; ++l)
          if (r.dw[l] != 0.0) d.add(r.dw[l], tr.k(r.i, l, r0_));
        if (r.dw_end != 0.0) d.add(r.dw_end, tr.k(r.i + 1, 0, r0_));
        d.into(xp.data(), m);
        g.tau[size_t(k)] -= (ArrMap(xp.data(), m) * ly_arr).sum();
        ensure(r.i);
        axpy(m, 1.0, lyk, lxp(r.i));
        for (int l = 0; l < S; ++l)
          if (r.w[l] != 0.0) axpy(m, r.h * r.w[l], lyk, lkp(r.i, l));
        if (r.w_end != 0.0) axpy(m, r.h * r.w_end, lyk, lkp(r.i + 1, 0));
      }
    };
    for (Index n = N - 1; n >= 0; --n) {
      const double t = tr.tp[n], h = tr.tp[n + 1] - t;
      ensure(n);
      const double* lx1 = lxp(n + 1);
      axpy(m, 1.0, lx1, lxp(n));
      for (int j = 0; j < S; ++j)
        if (tab_.b[j] != 0.0) axpy(m, h * tab_.b[j], lx1, lkp(n, j));
      for (int j = S - 1; j >= 0; --j) {
        if (j == 0 && tab_.fsal && n > 0) {  // a copy of the previous step's last stage
          close_group();  // not needed for correctness: a group is kept to adjacent stages
          ensure(n - 1);
          axpy(m, 1.0, lkp(n, 0), lkp(n - 1, S - 1));
          continue;
        }
        if (poll(2.0 * f_.flops(rows_))) return false;
        const double ts = t + tab_.c[j] * h;  // the stage's time
        // Recompute the stage's inputs (and its activations unless stored).
        stage_input(tr, n, j, h);
        // The delayed reads: those of the open group, or a new group (the open one closed first:
        // its contributions may reach this stage's adjoint).
        bool new_group = false;
        if (nd > 0 && !locate_reads(tr, n, ts)) {
          close_group();
          load_reads(tr, n);
          if (!tr.Ap) delayed_product(pd_.data());
          new_group = true;
        }
        // Layer l's activations (stored, or recomputed with σ' into da_) and σ'.
        const int L = f_.layers(), top = L - 1;
        auto act_of = [&](int l) { return acts(tr, n, j, l); };
        auto deriv_of = [&](int l) { return da_.data() + l * rows_ * H; };
        // With the tanh values stored, the small kernels take the top layer's tanh' = 1 − a²
        // inside the product that needs it (no pass of its own).
        const bool fused_deriv = small_ && tr.Ap && f_.act == Activation::Tanh;
        if (tr.Ap) {
          for (int l = 0; l < L; ++l)
            if (l < top || !fused_deriv)
              derivative_of_value(f_.act, act_of(l), deriv_of(l), rows_ * H);
        } else {
          eval(u_.data(), nd > 0 ? pd_.data() : nullptr, ts, da_.data(), act_of);
        }
        const double* lam = lkp(n, j);
        if (f_.wt) std::fill(gbs.begin(), gbs.end(), 0.0);
        const Gemm& gemm = f_.gemm;
        // The output layer: W_out's gradient and gz = ∂L/∂z of the top layer.
        if (small_) {
          small_output_backward(lam, act_of(top), fused_deriv ? nullptr : deriv_of(top),
                                gz.data(), g);
        } else {
          gemm(true, false, D, H, rows_, lam, act_of(top), 1.0, g.Wout.data());
          gemm(false, false, rows_, H, D, lam, f_.Wout, 0.0, gz.data());
          MatMap(gz.data(), rows_, H).array() *= ConstMatMap(deriv_of(top), rows_, H).array();
        }
        // Down the stacked layers: z_l = a_{l−1} V_lᵀ + c_l.
        for (int l = top; l >= 1; --l) {
          const Index off = Index(l - 1) * H * H;
          gemm(true, false, H, H, rows_, gz.data(), act_of(l - 1), 1.0, g.Vh.data() + off);
          Eigen::Map<Eigen::RowVectorXd>(g.ch.data() + (l - 1) * H, H) +=
              ConstMatMap(gz.data(), rows_, H).colwise().sum();
          gemm(false, false, rows_, H, H, gz.data(), f_.Vh + off, 0.0, gz2.data());
          MatMap(gz.data(), rows_, H).array() = ConstMatMap(gz2.data(), rows_, H).array() *
                                                ConstMatMap(deriv_of(l - 1), rows_, H).array();
        }
        // The first layer: b (and wt), W, and ∂L/∂u.
        if (small_) {
          small_input_backward(gz.data(), lu.data(), gb_stage);
        } else {
          gb += ConstMatMap(gz.data(), rows_, H).colwise().sum();
          gemm(true, false, H, D, rows_, gz.data(), u_.data(), 1.0, g.W.data());
          gemm(false, false, rows_, D, H, gz.data(), f_.W, 0.0, lu.data());
        }
        if (f_.wt)
          for (int i = 0; i < H; ++i) {
            g.b[size_t(i)] += gbs[size_t(i)];
            g.wt[size_t(i)] += ts * gbs[size_t(i)];
          }
        axpy(m, 1.0, lu.data(), lxp(n));
        for (int l = 0; l < j; ++l)
          if (tab_.a[j][l] != 0.0) axpy(m, h * tab_.a[j][l], lu.data(), lkp(n, l));
        if (nd > 0) {  // gz joins its group's sum
          if (new_group)
            std::swap(gz, gzd);  // the group's first gz becomes its sum without a copy
          else
            axpy(rows_ * H, 1.0, gz.data(), gzd.data());
        }
      }
    }
    close_group();
    ensure(0);
    hist_adj += LX(0);
    if (small_) {  // the transposed weight gradients (D × H) into g (H × D)
      for (int k = 0; k <= nd; ++k) {
        double* gw = k == 0 ? g.W.data() : g.Wd.data() + Index(k - 1) * H * D;
        const double* gt = gwt_.data() + Index(k) * D * H;
        for (int h = 0; h < H; ++h)
          for (int d = 0; d < D; ++d) gw[h * D + d] += gt[Index(d) * H + h];
      }
    }
    return true;
  }

  // The backward's output layer through the small kernels: λ = ∂L/∂k (rows × D), a the top
  // layer's activations, da its σ' (nullptr: tanh' = 1 − a² fused into the product);
  // W_out's gradient and gz = (λ W_out) ⊙ σ'.
  void small_output_backward(const double* lam, const double* a, const double* da, double* gz,
                             FieldGrad& g) {
#ifdef DELYAP_NN_SMALL_GEMM
    namespace sg = small_gemm;
    const int D = f_.dim, H = f_.hidden;
    sg::acc_tn(D, rows_, H, lam, a, g.Wout.data(), nullptr);
    const double* x1[1] = {lam};
    const double* m1[1] = {f_.Wout};
    sg::small_k(D, rows_, H, 1, x1, m1, nullptr, nullptr, da ? sg::kTimes : sg::kTanhDeriv,
                da ? da : a, gz, nullptr);
#else
    (void)lam, (void)a, (void)da, (void)gz, (void)g;
    throw std::logic_error("neural DDE: small kernels not built");
#endif
  }

  // The backward's first layer through the small kernels, from gz = ∂L/∂z of that layer, its
  // input part: lu = gz W = ∂L/∂u, the gradients of the bias (into gb) and W (transposed, in
  // gwt_).
  void small_input_backward(const double* gz, double* lu, double* gb) {
#ifdef DELYAP_NN_SMALL_GEMM
    namespace sg = small_gemm;
    const int D = f_.dim, H = f_.hidden;
    sg::acc_tn(D, rows_, H, u_.data(), gz, gwt_.data(), gb);
    small_product(gz, wt_.data(), f_.W, lu);
#else
    (void)gz, (void)lu, (void)gb;
    throw std::logic_error("neural DDE: small kernels not built");
#endif
  }

  // The first layer's delayed part for delay k, from gz summed over the stages that read y_k:
  // ly = gz W_k = ∂L/∂y_k and W_k's gradient (transposed in gwt_ with the small kernels).
  void delayed_backward(int k, const double* gz, double* ly, FieldGrad& g) {
    const int D = f_.dim, H = f_.hidden;
    const double* y = y_.data() + Index(k) * rows_ * D;
#ifdef DELYAP_NN_SMALL_GEMM
    if (small_) {
      namespace sg = small_gemm;
      sg::acc_tn(D, rows_, H, y, gz, gwt_.data() + Index(k + 1) * D * H, nullptr);
      small_product(gz, wt_.data() + Index(k + 1) * D * H, f_.Wd + Index(k) * H * D, ly);
      return;
    }
#endif
    f_.gemm(true, false, H, D, rows_, gz, y, 1.0, g.Wd.data() + Index(k) * H * D);
    f_.gemm(false, false, rows_, D, H, gz, f_.Wd + Index(k) * H * D, 0.0, ly);
  }

  // Where layer l's activations of stage j of step n go: the trace's kept ones, or this
  // pass's scratch (one block of rows × hidden per layer).
  double* scratch_acts(int l) { return a_.data() + l * rows_ * f_.hidden; }
  double* acts(const Trace& tr, Index n, int j, int l) {
    return tr.Ap ? tr.a(n, j, l, r0_, f_.hidden) : scratch_acts(l);
  }

  // The bias at time t: b, or b + wt·t with a time input.
  const double* bias_at(double t) {
    if (!f_.wt) return f_.b;
    for (int i = 0; i < f_.hidden; ++i) bias_[size_t(i)] = f_.b[i] + f_.wt[i] * t;
    return bias_.data();
  }

  // The activations of every layer: act_of(l) (rows × H) is where layer l's go, and da + l·rows·H
  // their σ' (if da); pd: the delayed part of the first layer's product (nullptr: no delays).
  template <class ActOf>
  void eval(const double* u, const double* pd, double t, double* da, ActOf&& act_of) {
    eval_first(u, pd, t, da, act_of(0));
    const int H = f_.hidden;
    for (int l = 1; l < f_.layers(); ++l) {  // z_l = a_{l−1} V_lᵀ + c_l
      f_.gemm(false, true, rows_, H, H, act_of(l - 1), f_.Vh + Index(l - 1) * H * H, 0.0,
              z_.data());
      MatMap(z_.data(), rows_, H).rowwise() +=
          Eigen::Map<const Eigen::RowVectorXd>(f_.ch + Index(l - 1) * H, H);
      activate(f_.act, z_.data(), act_of(l), da ? da + l * rows_ * H : nullptr, rows_ * H);
    }
  }

  // The first layer: pre-activations z = u Wᵀ + b (+ wt·t) + P, P = Σ_k y_k W_kᵀ the delayed
  // part (pd; nullptr: none), and activations a (and σ'(z) if da).
  void eval_first(const double* u, const double* pd, double t, double* da, double* a) {
    const int D = f_.dim, H = f_.hidden;
    const double* bias = bias_at(t);
#ifdef DELYAP_NN_SMALL_GEMM
    if (small_) {
      xin_[0] = u;
      if (f_.act == Activation::Tanh) {  // tanh on the accumulators: z is never stored
        small_gemm::small_k(D, rows_, H, 1, xin_.data(), min_.data(), bias, pd,
                            small_gemm::kTanh, nullptr, a, da);
        return;
      }
      small_gemm::small_k(D, rows_, H, 1, xin_.data(), min_.data(), bias, pd,
                          small_gemm::kPlain, nullptr, z_.data(), nullptr);
      activate(f_.act, z_.data(), a, da, rows_ * H);
      return;
    }
#endif
    MatMap Z(z_.data(), rows_, H);
    f_.gemm(false, true, rows_, H, D, u, f_.W, 0.0, z_.data());
    if (pd) Z += ConstMatMap(pd, rows_, H);
    Z.rowwise() += Eigen::Map<const Eigen::RowVectorXd>(bias, H);
    activate(f_.act, z_.data(), a, da, rows_ * H);
  }

  // f(h0, h0, …): the derivative at t = 0 (the history is constant), into out.
  void initial_derivative(const double* h0, double* out) {
    const Index m = rows_ * f_.dim;
    for (int k = 0; k < f_.n_delays; ++k) std::copy(h0, h0 + m, y_.data() + k * m);
    have_reads_ = false;  // y_ no longer holds the values of pd_reads_
    if (f_.n_delays > 0) delayed_product(pd_.data());
    auto act_of = [&](int l) { return scratch_acts(l); };
    eval(h0, f_.n_delays > 0 ? pd_.data() : nullptr, 0.0, nullptr, act_of);
    out_product(act_of(f_.layers() - 1), out);
  }

 private:
  const Field& f_;
  const Tableau& tab_;
  const double* tau_;
  Index r0_, rows_;
  std::vector<double> u_, y_, z_, a_, da_;
  std::vector<double> bias_;  // b + wt·t of the stage being evaluated (time input only)
  bool small_;
  std::vector<double> wt_, gwt_;             // small kernels: transposed W, W_k and gradients
  std::vector<const double*> xin_, min_;     // their inputs and weights, per product
  std::vector<double> woutt_;                // W_out transposed (H × D) for small_n8 (D = 8)
  // Shared delayed reads (locate_reads): pd_ holds P = Σ_k y_k W_kᵀ of the reads pd_reads_, whose
  // values y_ holds (when have_reads_); reads_: the reads of the stage being evaluated.
  std::vector<double> pd_;
  std::vector<Read> reads_, pd_reads_;
  bool have_reads_ = false;
};

// The step sequence of a fixed-step solve: n·dt (n·dt < T) and T.
inline std::vector<double> fixed_grid(double t_final, double dt) {
  std::vector<double> g{0.0};
  for (Index n = 1;; ++n) {
    const double t = double(n) * dt;
    // A last step shorter than 1e-9·dt is a rounding remainder of T/dt, not a step.
    if (t >= t_final - 1e-9 * dt) break;
    g.push_back(t);
  }
  g.push_back(t_final);
  return g;
}

// The smallest delay, the bound every step keeps to (reads never reach the running step).
inline double min_delay(const double* tau, int n) {
  double m = HUGE_VAL;
  for (int k = 0; k < n; ++k) m = std::min(m, tau[k]);
  return m;
}

// Forward on a given step sequence, rows [r0, r0 + rows); tr sized by the caller and t set.
template <class Poll>
bool forward_on_grid(const Field& f, const Tableau& tab, const double* tau, Trace& tr,
                     Index r0, Index rows, Poll& poll) {
  Pass p(f, tab, tau, r0, rows);
  for (Index n = 0; n < tr.steps(); ++n) {
    if (poll(tab.stages * f.flops(rows))) return false;
    p.step(tr, n, tr.tp[n + 1] - tr.tp[n]);
  }
  return true;
}

// Adaptive forward for the whole batch in lockstep: the error norm of a step is the largest
// over the samples of the RMS scaled error (step_kernels.hpp's terms), steps are capped by the
// smallest delay and land on the discontinuity points. On entry tr is resize(0)d with X[0] = h0.
//
// Threads: the rows are cut at `edges` (edges.front() = 0, edges.back() = batch), one Pass per
// row block, and `run(n, body)` calls body(c0, c1) for contiguous ranges of blocks covering
// [0, n), possibly in parallel, returning when all are done (a persistent pool: it is called
// once per step). The step control stays on the calling thread. Every row is computed by the
// same code whichever block holds it, so the step sequence does not depend on the cut.
template <class Poll, class Run>
bool forward_adaptive(const Field& f, const Tableau& tab, const double* tau, double t_final,
                      const SolverOptions& opt, Trace& tr, Poll& poll,
                      const std::vector<Index>& edges, Run&& run) {
  const Index B = tr.batch;
  const int D = f.dim;
  const double tau_min = min_delay(tau, f.n_delays);
  const std::vector<double> disc =
      f.n_delays > 0 ? discontinuity_points(0.0, t_final, tau, f.n_delays, tab.order + 1)
                     : std::vector<double>{};
  const Index n_blocks = Index(edges.size()) - 1;
  std::vector<Pass> passes;
  passes.reserve(size_t(n_blocks));
  for (Index c = 0; c < n_blocks; ++c)
    passes.emplace_back(f, tab, tau, edges[size_t(c)], edges[size_t(c + 1)] - edges[size_t(c)]);
  double h = opt.dt;
  if (!(h > 0.0)) {  // Hairer's first guess 0.01·‖x0‖/‖f0‖ (scaled norms, max over samples)
    std::vector<double> f0(size_t(B * D));
    Pass(f, tab, tau, 0, B).initial_derivative(tr.x(0, 0), f0.data());
    double d0 = 0.0, d1 = 0.0;
    for (Index r = 0; r < B; ++r) {
      double s0 = 0.0, s1 = 0.0;
      for (int d = 0; d < D; ++d) {
        const double x = tr.Xp[r * D + d];
        const double sc = opt.atol + opt.rtol * std::fabs(x);
        s0 += (x / sc) * (x / sc);
        s1 += (f0[size_t(r * D + d)] / sc) * (f0[size_t(r * D + d)] / sc);
      }
      d0 = std::max(d0, std::sqrt(s0 / D));
      d1 = std::max(d1, std::sqrt(s1 / D));
    }
    h = (d0 < 1e-5 || d1 < 1e-5) ? 1e-6 : 0.01 * d0 / d1;
  }
  // Scaled error of step n over rows [r0, r1): the max of the per-sample RMS (HUGE_VAL once
  // one is not finite).
  auto block_error = [&](Index n, double hh, Index r0, Index r1) {
    double err = 0.0;
    const double* x0 = tr.x(n, 0);
    const double* x1 = tr.x(n + 1, 0);
    for (Index r = r0; r < r1 && is_finite(err); ++r) {
      double s = 0.0;
      for (int d = 0; d < D; ++d) {
        double e = 0.0;
        for (int j = 0; j < tab.stages; ++j)
          if (tab.e[j] != 0.0) e += tab.e[j] * tr.k(n, j, 0)[r * D + d];
        const double q = scaled_error(
            hh * e, error_scale(x0[r * D + d], x1[r * D + d], opt.rtol, opt.atol));
        s += q * q;
      }
      const double rms = std::sqrt(s / D);
      err = is_finite(rms) ? std::max(err, rms) : HUGE_VAL;
    }
    return err;
  };
  std::vector<double> block_err(static_cast<size_t>(n_blocks));
  std::vector<std::exception_ptr> failure(static_cast<size_t>(n_blocks));
  PIController ctrl(tab.error_order);
  size_t next_disc = 0;
  double t = 0.0;
  Index n = 0;
  tr.rejected = 0;
  while (t < t_final) {
    const double resolution = 16.0 * std::numeric_limits<double>::epsilon() * std::max(1.0, t);
    if (t >= t_final - resolution) break;
    if (n + tr.rejected >= opt.max_steps)
      throw std::runtime_error("neural DDE: max_steps reached before t_final");
    double hh = std::min(h, tau_min);
    double t_next = t + hh;
    while (next_disc < disc.size() && disc[next_disc] <= t + resolution) ++next_disc;
    if (next_disc < disc.size() && t_next >= disc[next_disc] - 1e-6 * hh) t_next = disc[next_disc];
    if (t_next >= t_final - 1e-13 * t_final) t_next = t_final;
    hh = t_next - t;
    if (!(hh > resolution)) throw std::runtime_error("neural DDE: step size underflow");
    tr.resize(n + 1);
    tr.tp[n + 1] = t_next;
    tr.drop_activations_past(n);
    if (poll(tab.stages * f.flops(B))) return false;
    run(n_blocks, [&](Index c0, Index c1) {
      for (Index c = c0; c < c1; ++c) {
        try {  // a worker thread must not throw: the calling thread rethrows below
          passes[size_t(c)].step(tr, n, hh);
          block_err[size_t(c)] = block_error(n, hh, edges[size_t(c)], edges[size_t(c + 1)]);
        } catch (...) {
          failure[size_t(c)] = std::current_exception();
        }
      }
    });
    double err = 0.0;
    for (Index c = 0; c < n_blocks; ++c) {
      if (failure[size_t(c)]) std::rethrow_exception(failure[size_t(c)]);
      err = is_finite(block_err[size_t(c)]) ? std::max(err, block_err[size_t(c)]) : HUGE_VAL;
    }
    if (!(err <= 1.0)) {
      ++tr.rejected;
      h = hh * ctrl.reject(err, opt);
      continue;
    }
    h = hh * ctrl.accept(err, opt);
    t = t_next;
    ++n;
  }
  tr.resize(n);
  return true;
}

// The whole batch on the calling thread.
template <class Poll>
bool forward_adaptive(const Field& f, const Tableau& tab, const double* tau, double t_final,
                      const SolverOptions& opt, Trace& tr, Poll& poll) {
  const std::vector<Index> edges{0, tr.batch};
  return forward_adaptive(f, tab, tau, t_final, opt, tr, poll, edges,
                          [](Index n, auto&& body) { body(0, n); });
}

}  // namespace delyap::nn
