// Layer products of the neural DDE pass when the state dimension D is small (D ≤ 8), without
// BLAS: every product of the pass has D as its inner or its outer size (z = u Wᵀ: K = D;
// k = a W_outᵀ: N = D; W_out's gradient λᵀa: M = D), where a BLAS call costs more in its
// fixed overhead, packing and edge kernels than in its flops (at D = 2, hidden 32 the BLAS
// calls took a quarter of a training step, at a fifth of the machine's dgemm rate). These
// kernels are register-blocked loops over D (a template parameter, fully unrolled) and over
// eight-double vectors of the hidden width, written with GCC vector extensions so that the
// same code compiles for the baseline ISA, x86-64-v3 (AVX2 + FMA) and x86-64-v4, picked at load
// time (target_clones, as neural_dde.hpp's tanh). Sums run in a different order than BLAS's:
// results agree with the BLAS path to rounding (≤ 1e-13 relative, tested).
// Every loop over a block's accumulators is unrolled by pragma: left to itself GCC unrolled some
// only in part and kept those accumulators in memory, a load and a store around each FMA
// (small_k's products ran at half speed).
#pragma once

#include <cstring>

#include "delyap/common/config.hpp"

#if defined(__GNUC__) && !defined(__CUDACC__)
#define DELYAP_NN_SMALL_GEMM 1
#endif

// x86-64-v4 (AVX-512) too: the same four-double vectors, but 32 registers and broadcasts
// folded into the FMAs. No SLP vectorisation: it merges the scalar loads of neighbouring
// x[r, d] into one vector load and splits it again with a shuffle per element (one port, the
// bottleneck at D = 8), where a broadcast from memory is a plain load.
#if defined(__x86_64__) && defined(__linux__) && !defined(__clang__) && defined(__GNUC__) && \
    __GNUC__ >= 11 && !defined(__CUDACC__)
#define DELYAP_NN_SMALL_CLONES                                                     \
  __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"), \
                 optimize("no-tree-slp-vectorize")))
#elif defined(__x86_64__) && defined(__linux__) && defined(__GNUC__) && !defined(__clang__) && \
    !defined(__CUDACC__)
#define DELYAP_NN_SMALL_CLONES \
  __attribute__((target_clones("arch=x86-64-v3", "default"), optimize("no-tree-slp-vectorize")))
#elif defined(__x86_64__) && defined(__linux__) && defined(__GNUC__) && !defined(__CUDACC__)
#define DELYAP_NN_SMALL_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define DELYAP_NN_SMALL_CLONES
#endif

// With the x86-64-v4 clones, the tanh epilogue has an AVX-512 function of its own
// (small_k_tanh_v4): its tanh takes the reciprocal's first guess from vrcp14pd. The builtin is
// declared by a target pragma and expanded only inside that function, never in the others.
#if defined(__x86_64__) && defined(__linux__) && !defined(__clang__) && defined(__GNUC__) && \
    __GNUC__ >= 11 && !defined(__CUDACC__)
#define DELYAP_NN_V4 1
#define DELYAP_NN_V4_TARGET \
  __attribute__((target("arch=x86-64-v4"), optimize("no-tree-slp-vectorize")))
#pragma GCC push_options
#pragma GCC target("avx512f")
#pragma GCC pop_options
#endif

namespace delyap::nn {

// e^r's Taylor coefficients 1/13!, 1/12!, …, 1/1!, 1/0!, highest first (Horner order): the
// tanh functions' exponentials take all 14 (tanh_array, tanh_v: |r| ≤ ln2/2) or the last 8
// (tanh_v_table: |r| ≤ ln2/32) of them.
inline constexpr double kExpTaylor[14] = {
    1.0 / 6227020800.0, 1.0 / 479001600.0, 1.0 / 39916800.0, 1.0 / 3628800.0, 1.0 / 362880.0,
    1.0 / 40320.0,      1.0 / 5040.0,      1.0 / 720.0,      1.0 / 120.0,     1.0 / 24.0,
    1.0 / 6.0,          0.5,               1.0,              1.0};

// The most terms of one linear combination (small_gemm::lincomb, Terms in neural_dde.hpp).
inline constexpr int kLincombMax = 12;

// The largest state dimension the small kernels take (larger: BLAS/Eigen GEMMs).
inline constexpr int kSmallDimMax = 8;

#ifdef DELYAP_NN_SMALL_GEMM
// The vector type crosses inline helpers only (always inlined, no ABI boundary): GCC's note
// that a 32-byte vector argument's ABI depends on AVX is moot here.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpsabi"
namespace small_gemm {

// Eight-double vectors: one register in the x86-64-v4 clone (AVX-512: twice the flops per
// instruction of AVX2, as OpenBLAS's kernels use), two in the v3 clone, four in the baseline.
typedef double V __attribute__((vector_size(64)));
typedef double VU __attribute__((vector_size(64), aligned(8), may_alias));  // unaligned access
typedef long long VI __attribute__((vector_size(64)));
constexpr int W = 8;  // lanes
#define DELYAP_NN_INLINE inline __attribute__((always_inline))

// Loads, stores and broadcasts are macros, and the helpers take and give vectors by reference:
// a helper function returning a vector by value is compiled for the baseline ISA first (its
// ABI) and, inlined into a clone, leaves baseline code behind (a broadcast became two shuffles
// per element instead of one load).
#define NN_LD(p) (V(*reinterpret_cast<const VU*>(p)))
#define NN_ST(p, v) (*reinterpret_cast<VU*>(p) = (v))
// x·1 is x exactly: folded to a broadcast (x + 0 is not: −0 + 0 = +0).
#define NN_BC(x) (V{1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0} * (x))
#define NN_BCM(p) NN_BC(*(p))
DELYAP_NN_INLINE double hsum(const V& v) {
  return ((v[0] + v[4]) + (v[2] + v[6])) + ((v[1] + v[5]) + (v[3] + v[7]));
}
// out[0..3] = {Σ a, Σ b, Σ c, Σ d} in six shuffles and three adds.
DELYAP_NN_INLINE void hsum4(const V& a, const V& b, const V& c, const V& d, double* out) {
  const V ab = __builtin_shuffle(a, b, VI{0, 1, 2, 3, 8, 9, 10, 11}) +
               __builtin_shuffle(a, b, VI{4, 5, 6, 7, 12, 13, 14, 15});
  const V cd = __builtin_shuffle(c, d, VI{0, 1, 2, 3, 8, 9, 10, 11}) +
               __builtin_shuffle(c, d, VI{4, 5, 6, 7, 12, 13, 14, 15});
  // u = {a, a, c, c, b, b, d, d} (pair sums)
  const V u = __builtin_shuffle(ab, cd, VI{0, 1, 8, 9, 4, 5, 12, 13}) +
              __builtin_shuffle(ab, cd, VI{2, 3, 10, 11, 6, 7, 14, 15});
  const V w = __builtin_shuffle(u, VI{0, 4, 2, 6, 0, 4, 2, 6}) +
              __builtin_shuffle(u, VI{1, 5, 3, 7, 1, 5, 3, 7});
  for (int i = 0; i < 4; ++i) out[i] = w[i];
}

// p = Σ_i kExpTaylor[i] r^(13 − i) over the last `terms` coefficients (Horner).
template <int terms>
DELYAP_NN_INLINE void exp_taylor(V& p, const V& r) {
  p = NN_BC(kExpTaylor[14 - terms]);
#pragma GCC unroll 16
  for (int i = 15 - terms; i < 14; ++i) p = p * r + kExpTaylor[i];
}

// tanh of eight doubles: neural_dde.hpp's tanh_array on vectors, 1 − 2/(e^{2x} + 1), e^y =
// 2^k p(r) with the degree-13 Taylor polynomial, |x| clamped at 20 (a NaN stays NaN: both
// comparisons are false), but the reciprocal by Newton steps (agrees with tanh_array to a few
// units in the last place; tested against the GEMM path at 1e-13).
DELYAP_NN_INLINE void tanh_v(V& z) {
  z = z > 20.0 ? NN_BC(20.0) : z;
  z = z < -20.0 ? NN_BC(-20.0) : z;
  const V y = 2.0 * z;
  const V t = y * 1.4426950408889634 + 6755399441055744.0;  // 1.5·2^52: round to int
  const V k = t - 6755399441055744.0;
  const V r = (y - k * 0.6931471805598903) - k * 5.497923018708371e-14;
  V p;
  exp_taylor<14>(p, r);
  // A cast between vector types of one size reinterprets the bits (GCC's vector extension);
  // a reinterpret_cast of a reference would break strict aliasing (GCC warned that t was
  // read uninitialised).
  const VI bits = ((VI)t + 1023) << 52;  // 2^k's exponent field
  const V den = p * (V)bits + 1.0;       // in [1, e^40 + 1]
  // 1/den: a float division (a third of a double division's cost here: the divider, not the
  // polynomial, bounded the activation) refined by two Newton steps, q ← q + q(1 − den·q),
  // each squaring the relative error: 2^-23 → 2^-46 → below double rounding (q ≈ 1/den).
  typedef float F __attribute__((vector_size(32)));
  V q = __builtin_convertvector(1.0f / __builtin_convertvector(den, F), V);
  q = q + q * (1.0 - den * q);
  q = q + q * (1.0 - den * q);
  z = 1.0 - 2.0 * q;
}

// 2^(j/16), j = 0..15, correctly rounded: tanh_v_table's exponential.
alignas(64) inline constexpr double kExp2Sixteenths[16] = {
    0x1.0000000000000p+0, 0x1.0b5586cf9890fp+0, 0x1.172b83c7d517bp+0, 0x1.2387a6e756238p+0,
    0x1.306fe0a31b715p+0, 0x1.3dea64c123422p+0, 0x1.4bfdad5362a27p+0, 0x1.5ab07dd485429p+0,
    0x1.6a09e667f3bcdp+0, 0x1.7a11473eb0187p+0, 0x1.8ace5422aa0dbp+0, 0x1.9c49182a3f090p+0,
    0x1.ae89f995ad3adp+0, 0x1.c199bdd85529cp+0, 0x1.d5818dcfba487p+0, 0x1.ea4afa2a490dap+0};

// tanh_v for AVX-512, 1.6× faster there: tanh|z| = 2/(1 + e^{−2|z|}) − 1 with the sign put
// back. e^{−2|z|} = 2^k·2^(j/16)·p(r), the table entry by one two-register permute and p a
// degree-7 Taylor polynomial on |r| ≤ ln2/32 (six fewer terms than tanh_v's); the reciprocal of
// 1 + e^{−2|z|} ∈ (1, 2] from vrcp14pd (relative error 2^-14) and two Newton steps, without the
// divider. The accuracy of tanh_v (|error| ≤ 5e-16, a NaN stays NaN; tested). Only for the
// x86-64-v4 function small_k_tanh_v4 (the builtin), where the permute and the 64-bit arithmetic
// shift are single instructions (on AVX2 GCC emits scalar code for both).
#ifdef DELYAP_NN_V4
DELYAP_NN_INLINE void tanh_v_table(V& z) {
  const VI sign = (VI)z & (VI)NN_BC(-0.0);
  V u = (V)((VI)z ^ sign);          // |z|
  u = u > 20.0 ? NN_BC(20.0) : u;   // tanh(20) rounds to 1; a NaN stays NaN
  // n = round(−2u·16/ln 2) = 16k + j, r = −2u − n·ln2/16 (ln 2 in hi + lo parts, n·hi exact)
  const V t = u * (-32.0 * 1.4426950408889634) + 6755399441055744.0;
  const V n = t - 6755399441055744.0;
  const V r = (-2.0 * u - n * (0.6931471805598903 / 16)) - n * (5.497923018708371e-14 / 16);
  V p;
  exp_taylor<8>(p, r);
  // t's low mantissa bits hold n: j = n mod 16 picks the entry, n >> 4 = k goes into its
  // exponent field (k ≥ −58: no underflow).
  const VI ni = (VI)t;
  const V tj = __builtin_shuffle(NN_LD(kExp2Sixteenths), NN_LD(kExp2Sixteenths + 8), ni & 15);
  const V den = p * (V)((VI)tj + ((ni >> 4) << 52)) + 1.0;
  V q = __builtin_ia32_rcp14pd512_mask(den, den, static_cast<unsigned char>(0xff));
  q = q + q * (1.0 - den * q);  // 2^-14 → 2^-28 → below double rounding
  q = q + q * (1.0 - den * q);
  z = (V)((VI)(2.0 * q - 1.0) ^ sign);
}
#endif

// Epilogues of the small-K product: none, ·(1 − e²) (tanh' from the stored tanh), ·e (σ'),
// tanh (and tanh' = 1 − tanh² into a second output when given).
enum Epilogue : int { kPlain = 0, kTanhDeriv = 1, kTimes = 2, kTanh = 3 };

// Stores the epilogue of acc at o (W values); e: its input, da: tanh' output (kTanh).
template <int mode, bool table = false>
DELYAP_NN_INLINE void epi(double* o, V& acc, const double* e, double* da) {
  if (mode == kTanhDeriv) {
    const V a = NN_LD(e);
    acc = acc * (1.0 - a * a);
  } else if (mode == kTimes) {
    acc = acc * NN_LD(e);
  } else if (mode == kTanh) {
#ifdef DELYAP_NN_V4
    if constexpr (table)
      tanh_v_table(acc);
    else
#endif
      tanh_v(acc);
    if (da) NN_ST(da, 1.0 - acc * acc);
  }
  NN_ST(o, acc);
}
// The accumulators of small_k start from bias[h] + add[r, h] (either may be absent); a macro,
// not a helper returning a vector (see NN_LD).
#define NN_INIT(r, h)                                                                        \
  (add ? (bias ? NN_LD(bias + (h)) + NN_LD(add + (r) * H + (h)) : NN_LD(add + (r) * H + (h))) \
       : (bias ? NN_LD(bias + (h)) : V{}))
// small_k_impl's rows [r0, r0 + nr), columns [h0, H).
template <int D, int mode, bool table>
DELYAP_NN_INLINE void small_k_cols(Index r0, Index nr, int h0, int H, int nin,
                                   const double* const* X, const double* const* M,
                                   const double* bias, const double* add, const double* e,
                                   double* out, double* da) {
  for (Index r = r0; r < r0 + nr; ++r) {
    double* o = out + r * H;
    const double* er = e ? e + r * H : nullptr;
    double* dr = da ? da + r * H : nullptr;
    int h = h0;
    for (; h + 4 * W <= H; h += 4 * W) {
      V a0 = NN_INIT(r, h), a1 = NN_INIT(r, h + W), a2 = NN_INIT(r, h + 2 * W),
        a3 = NN_INIT(r, h + 3 * W);
      for (int m = 0; m < nin; ++m) {
        const double* x = X[m] + r * D;
        const double* w = M[m] + h;
#pragma GCC unroll 8
        for (int d = 0; d < D; ++d) {
          const V xv = NN_BCM(x + d);
          a0 += xv * NN_LD(w + d * H);
          a1 += xv * NN_LD(w + d * H + W);
          a2 += xv * NN_LD(w + d * H + 2 * W);
          a3 += xv * NN_LD(w + d * H + 3 * W);
        }
      }
      epi<mode, table>(o + h, a0, er ? er + h : nullptr, dr ? dr + h : nullptr);
      epi<mode, table>(o + h + W, a1, er ? er + h + W : nullptr, dr ? dr + h + W : nullptr);
      epi<mode, table>(o + h + 2 * W, a2, er ? er + h + 2 * W : nullptr,
                       dr ? dr + h + 2 * W : nullptr);
      epi<mode, table>(o + h + 3 * W, a3, er ? er + h + 3 * W : nullptr,
                       dr ? dr + h + 3 * W : nullptr);
    }
    for (; h + W <= H; h += W) {
      V a0 = NN_INIT(r, h);
      for (int m = 0; m < nin; ++m) {
        const double* x = X[m] + r * D;
#pragma GCC unroll 8
        for (int d = 0; d < D; ++d) a0 += NN_BCM(x + d) * NN_LD(M[m] + d * H + h);
      }
      epi<mode, table>(o + h, a0, er ? er + h : nullptr, dr ? dr + h : nullptr);
    }
    if (h < H) {  // the last H − h < W columns: scalar sums, one padded vector epilogue
      const int n = H - h;
      double acc[W] = {}, ein[W] = {}, out1[W], dout[W] = {};
      for (int j = 0; j < n; ++j) {
        double a0 = bias ? bias[h + j] : 0.0;
        if (add) a0 += add[r * H + h + j];
        for (int m = 0; m < nin; ++m)
          for (int d = 0; d < D; ++d) a0 += X[m][r * D + d] * M[m][d * H + h + j];
        acc[j] = a0;
        if (er) ein[j] = er[h + j];
      }
      V t = NN_LD(acc);
      epi<mode, table>(out1, t, ein, dr ? dout : nullptr);
      for (int j = 0; j < n; ++j) {
        o[h + j] = out1[j];
        if (dr) dr[h + j] = dout[j];
      }
    }
  }
}

// out[r, h] = bias[h] + add[r, h] + Σ_m Σ_d X_m[r, d] M_m[d, h]   (X_m rows × D, M_m D × H,
// add rows × H, all row-major; bias, add optional), then the epilogue with e[r, h] (da[r, h]:
// kTanh's derivative). Four rows and 4W columns at a time: sixteen independent accumulators
// (eight, with two rows, left the FMAs waiting on their latency: 5–8 % slower at D = 8), each
// load of M shared by four rows.
template <int D, int mode, bool table = false>
DELYAP_NN_INLINE void small_k_impl(Index rows, int H, int nin, const double* const* X,
                                   const double* const* M, const double* bias,
                                   const double* add, const double* e, double* out,
                                   double* da) {
  Index r = 0;
  for (; r + 4 <= rows && H >= 4 * W; r += 4) {
    int h = 0;
    for (; h + 4 * W <= H; h += 4 * W) {
      V a[4][4];
#pragma GCC unroll 16
      for (int c = 0; c < 4; ++c) {
        a[0][c] = NN_INIT(r, h + c * W);
        a[1][c] = NN_INIT(r + 1, h + c * W);
        a[2][c] = NN_INIT(r + 2, h + c * W);
        a[3][c] = NN_INIT(r + 3, h + c * W);
      }
      for (int m = 0; m < nin; ++m) {
        const double* x = X[m] + r * D;
        // A running pointer to M's row d: the four loads then differ by constant offsets (with
        // w + d·H + c·W, GCC kept 32 offsets in registers and spent a move on each load).
        const double* w = M[m] + h;
#pragma GCC unroll 8
        for (int d = 0; d < D; ++d, w += H) {
          // Written out row by row: with arrays of rows (x[i], a[i][c] in a loop over i) GCC's
          // code ran 15–20 % slower at D = 8.
          const V x0 = NN_BCM(x + d), x1 = NN_BCM(x + D + d), x2 = NN_BCM(x + 2 * D + d),
                  x3 = NN_BCM(x + 3 * D + d);
#pragma GCC unroll 16
          for (int c = 0; c < 4; ++c) {
            const V wv = NN_LD(w + c * W);
            a[0][c] += x0 * wv;
            a[1][c] += x1 * wv;
            a[2][c] += x2 * wv;
            a[3][c] += x3 * wv;
          }
        }
      }
#pragma GCC unroll 16
      for (int i = 0; i < 4; ++i)
#pragma GCC unroll 16
        for (int c = 0; c < 4; ++c) {
          const Index off = (r + i) * H + h + c * W;
          epi<mode, table>(out + off, a[i][c], e ? e + off : nullptr, da ? da + off : nullptr);
        }
    }
    // The columns past the last multiple of 4W: one row at a time, below.
    if (h < H) small_k_cols<D, mode, table>(r, 4, h, H, nin, X, M, bias, add, e, out, da);
  }
  if (r < rows) small_k_cols<D, mode, table>(r, rows - r, 0, H, nin, X, M, bias, add, e, out, da);
}
#undef NN_INIT

// out[r, d] (= or +=) Σ_h A[r, h] M[d, h]   (A rows × H, M D × H, out rows × D). R rows at a
// time share the loads of M (R·D accumulators); their R·D outputs are contiguous, reduced four
// at a time (hsum4).
template <int D>
DELYAP_NN_INLINE void small_n_impl(Index rows, int H, const double* A, const double* M,
                                   bool accumulate, double* out) {
  constexpr int R = D == 1 ? 4 : (D <= 4 ? 2 : 1);
  const int HW = H / W * W;
  Index r = 0;
  for (; r + R <= rows; r += R) {
    V acc[R][D];
#pragma GCC unroll 16
    for (int i = 0; i < R; ++i)
#pragma GCC unroll 16
      for (int d = 0; d < D; ++d) acc[i][d] = V{};
    for (int h = 0; h < HW; h += W) {
      V a[R];
#pragma GCC unroll 16
      for (int i = 0; i < R; ++i) a[i] = NN_LD(A + (r + i) * H + h);
#pragma GCC unroll 8
      for (int d = 0; d < D; ++d) {
        const V w = NN_LD(M + d * H + h);
#pragma GCC unroll 16
        for (int i = 0; i < R; ++i) acc[i][d] += a[i] * w;
      }
    }
    double sums[R * D + 3];
    int q = 0;
    for (; q + 4 <= R * D; q += 4)
      hsum4(acc[q / D][q % D], acc[(q + 1) / D][(q + 1) % D], acc[(q + 2) / D][(q + 2) % D],
            acc[(q + 3) / D][(q + 3) % D], sums + q);
    for (; q < R * D; ++q) sums[q] = hsum(acc[q / D][q % D]);
    for (int i = 0; i < R; ++i)
      for (int d = 0; d < D; ++d) {
        double s = sums[i * D + d];
        for (int h = HW; h < H; ++h) s += A[(r + i) * H + h] * M[d * H + h];
        double& o = out[(r + i) * D + d];
        o = accumulate ? o + s : s;
      }
  }
  for (; r < rows; ++r)
    for (int d = 0; d < D; ++d) {
      V acc = V{};
      for (int h = 0; h < HW; h += W) acc += NN_LD(A + r * H + h) * NN_LD(M + d * H + h);
      double s = hsum(acc);
      for (int h = HW; h < H; ++h) s += A[r * H + h] * M[d * H + h];
      double& o = out[r * D + d];
      o = accumulate ? o + s : s;
    }
}

// out[d, h] += Σ_r X[r, d] G[r, h]   (X rows × D, G rows × H, out D × H); with CS, also
// colsum[h] += Σ_r G[r, h]. C vectors of columns at a time, the (D + CS)·C accumulators held
// over all rows: C = 2 (4 at D = 1) gives enough independent FMA chains to hide their latency
// and shares each broadcast of X between C vectors (at C = 1, D = 8 the loop was bound by a
// load per FMA: 1.6× slower).
template <int D, int C, bool CS>
DELYAP_NN_INLINE void acc_tn_cols(Index rows, int H, int h, const double* X, const double* G,
                                  double* out, double* colsum) {
  V acc[D][C], cs[C];
#pragma GCC unroll 16
  for (int c = 0; c < C; ++c) {
    cs[c] = V{};
#pragma GCC unroll 16
    for (int d = 0; d < D; ++d) acc[d][c] = V{};
  }
  for (Index r = 0; r < rows; ++r) {
    V g[C];
#pragma GCC unroll 16
    for (int c = 0; c < C; ++c) g[c] = NN_LD(G + r * H + h + W * c);
    if (CS)
#pragma GCC unroll 16
      for (int c = 0; c < C; ++c) cs[c] += g[c];
#pragma GCC unroll 8
    for (int d = 0; d < D; ++d) {
      const V x = NN_BCM(X + r * D + d);
#pragma GCC unroll 16
      for (int c = 0; c < C; ++c) acc[d][c] += x * g[c];
    }
  }
#pragma GCC unroll 16
  for (int c = 0; c < C; ++c) {
    if (CS) NN_ST(colsum + h + W * c, NN_LD(colsum + h + W * c) + cs[c]);
#pragma GCC unroll 16
    for (int d = 0; d < D; ++d) {
      double* o = out + d * H + h + W * c;
      NN_ST(o, NN_LD(o) + acc[d][c]);
    }
  }
}

template <int D, bool CS>
DELYAP_NN_INLINE void acc_tn_cs(Index rows, int H, const double* X, const double* G,
                                double* out, double* colsum) {
  constexpr int C = D == 1 ? 4 : 2;
  int h = 0;
  for (; h + W * C <= H; h += W * C) acc_tn_cols<D, C, CS>(rows, H, h, X, G, out, colsum);
  for (; h + W <= H; h += W) acc_tn_cols<D, 1, CS>(rows, H, h, X, G, out, colsum);
  for (; h < H; ++h) {
    double acc[D] = {}, cs = 0.0;
    for (Index r = 0; r < rows; ++r) {
      const double g = G[r * H + h];
      cs += g;
      for (int d = 0; d < D; ++d) acc[d] += X[r * D + d] * g;
    }
    if (CS) colsum[h] += cs;
    for (int d = 0; d < D; ++d) out[d * H + h] += acc[d];
  }
}

template <int D>
DELYAP_NN_INLINE void acc_tn_impl(Index rows, int H, const double* X, const double* G,
                                  double* out, double* colsum) {
  if (colsum)
    acc_tn_cs<D, true>(rows, H, X, G, out, colsum);
  else
    acc_tn_cs<D, false>(rows, H, X, G, out, colsum);
}

#define DELYAP_NN_DISPATCH_D(D, CALL) \
  switch (D) {                        \
    case 1: CALL(1); break;           \
    case 2: CALL(2); break;           \
    case 3: CALL(3); break;           \
    case 4: CALL(4); break;           \
    case 5: CALL(5); break;           \
    case 6: CALL(6); break;           \
    case 7: CALL(7); break;           \
    default: CALL(8); break;          \
  }

#ifdef DELYAP_NN_V4
// Whether the CPU runs x86-64-v4 code (the level the clones' resolver picks the v4 clone at).
inline bool has_x86_64_v4() {
  static const bool v4 = __builtin_cpu_supports("x86-64-v4");
  return v4;
}

// small_k's tanh epilogue on AVX-512 (tanh_v_table).
DELYAP_NN_V4_TARGET static void small_k_tanh_v4(int D, Index rows, int H, int nin,
                                                const double* const* X, const double* const* M,
                                                const double* bias, const double* add,
                                                double* out, double* da) {
#define DELYAP_NN_CALL(d) \
  small_k_impl<d, kTanh, true>(rows, H, nin, X, M, bias, add, nullptr, out, da)
  DELYAP_NN_DISPATCH_D(D, DELYAP_NN_CALL)
#undef DELYAP_NN_CALL
}
#endif

// `static`: one copy of each clone set per translation unit, as the clones' resolver wants.
DELYAP_NN_SMALL_CLONES static void small_k(int D, Index rows, int H, int nin,
                                           const double* const* X, const double* const* M,
                                           const double* bias, const double* add, int mode,
                                           const double* e, double* out, double* da) {
  // The epilogue a template argument: straight-line code per mode (the tanh of four vectors
  // interleaved, not a branch per vector).
  switch (mode) {
    case kPlain: {
#define DELYAP_NN_CALL(d) small_k_impl<d, kPlain>(rows, H, nin, X, M, bias, add, e, out, da)
      DELYAP_NN_DISPATCH_D(D, DELYAP_NN_CALL)
#undef DELYAP_NN_CALL
      break;
    }
    case kTanhDeriv: {
#define DELYAP_NN_CALL(d) small_k_impl<d, kTanhDeriv>(rows, H, nin, X, M, bias, add, e, out, da)
      DELYAP_NN_DISPATCH_D(D, DELYAP_NN_CALL)
#undef DELYAP_NN_CALL
      break;
    }
    case kTimes: {
#define DELYAP_NN_CALL(d) small_k_impl<d, kTimes>(rows, H, nin, X, M, bias, add, e, out, da)
      DELYAP_NN_DISPATCH_D(D, DELYAP_NN_CALL)
#undef DELYAP_NN_CALL
      break;
    }
    default: {
#ifdef DELYAP_NN_V4
      if (has_x86_64_v4()) {
        small_k_tanh_v4(D, rows, H, nin, X, M, bias, add, out, da);
        break;
      }
#endif
#define DELYAP_NN_CALL(d) small_k_impl<d, kTanh>(rows, H, nin, X, M, bias, add, e, out, da)
      DELYAP_NN_DISPATCH_D(D, DELYAP_NN_CALL)
#undef DELYAP_NN_CALL
      break;
    }
  }
}

DELYAP_NN_SMALL_CLONES static void small_n(int D, Index rows, int H, const double* A,
                                           const double* M, bool accumulate, double* out) {
#define DELYAP_NN_CALL(d) small_n_impl<d>(rows, H, A, M, accumulate, out)
  DELYAP_NN_DISPATCH_D(D, DELYAP_NN_CALL)
#undef DELYAP_NN_CALL
}

// out[r, 0..7] = Σ_h A[r, h] Mt[h, 0..7]   (A rows × H, Mt H × 8, out rows × 8): small_n at
// D = 8 with the weights transposed. An output row is then one vector and the sums over h need
// no horizontal reduction (small_n's shuffles take the FMA port's place on AVX-512); eight rows
// at a time give eight independent FMA chains.
DELYAP_NN_SMALL_CLONES static void small_n8(Index rows, int H, const double* A, const double* Mt,
                                            double* out) {
  Index r = 0;
  for (; r + 8 <= rows; r += 8) {
    V acc[8];
#pragma GCC unroll 16
    for (int i = 0; i < 8; ++i) acc[i] = V{};
    for (int h = 0; h < H; ++h) {
      const V m = NN_LD(Mt + h * 8);
#pragma GCC unroll 16
      for (int i = 0; i < 8; ++i) acc[i] += NN_BCM(A + (r + i) * H + h) * m;
    }
#pragma GCC unroll 16
    for (int i = 0; i < 8; ++i) NN_ST(out + (r + i) * 8, acc[i]);
  }
  for (; r < rows; ++r) {
    V acc = V{};
    for (int h = 0; h < H; ++h) acc += NN_BCM(A + r * H + h) * NN_LD(Mt + h * 8);
    NN_ST(out + r * 8, acc);
  }
}

// out = Σ_j c[j] X[j] (accumulate: out += Σ_j c[j] X[j]) over n doubles, terms ≤ kLincombMax,
// out not among the X[j]: the pass's stage inputs, interpolated reads, state updates and adjoint
// updates, each in one sweep of eight-double vectors (Eigen's maps had run them a term at a time
// on the baseline ISA's two-double vectors: a fifth of a training step at dim 8).
DELYAP_NN_SMALL_CLONES static void lincomb(Index n, double* out, bool accumulate, int terms,
                                           const double* c, const double* const* X) {
  V cv[kLincombMax];
  for (int j = 0; j < terms; ++j) cv[j] = NN_BC(c[j]);
  Index i = 0;
  for (; i + W <= n; i += W) {
    V s = accumulate ? NN_LD(out + i) : V{};
    for (int j = 0; j < terms; ++j) s += cv[j] * NN_LD(X[j] + i);
    NN_ST(out + i, s);
  }
  for (; i < n; ++i) {
    double s = accumulate ? out[i] : 0.0;
    for (int j = 0; j < terms; ++j) s += c[j] * X[j][i];
    out[i] = s;
  }
}

DELYAP_NN_SMALL_CLONES static void acc_tn(int D, Index rows, int H, const double* X,
                                          const double* G, double* out, double* colsum) {
#define DELYAP_NN_CALL(d) acc_tn_impl<d>(rows, H, X, G, out, colsum)
  DELYAP_NN_DISPATCH_D(D, DELYAP_NN_CALL)
#undef DELYAP_NN_CALL
}

#undef DELYAP_NN_DISPATCH_D
#undef DELYAP_NN_INLINE
#undef NN_LD
#undef NN_ST
#undef NN_BC
#undef NN_BCM
}  // namespace small_gemm
#pragma GCC diagnostic pop
#endif

}  // namespace delyap::nn
