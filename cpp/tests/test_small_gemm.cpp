// The neural pass's small kernels (nn/small_gemm.hpp) against plain loops in long double: both
// tanh formulations at the edges of their ranges, and each product at every state dimension
// they take, with row and column counts that leave remainders.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "delyap/nn/small_gemm.hpp"

#ifdef DELYAP_NN_SMALL_GEMM
using namespace delyap::nn::small_gemm;
using delyap::nn::kLincombMax;
using delyap::Index;

namespace {

std::vector<double> random_vector(size_t n, uint64_t seed, double scale = 1.0) {
  std::mt19937_64 gen(seed);
  std::normal_distribution<double> normal(0.0, scale);
  std::vector<double> v(n);
  for (double& x : v) x = normal(gen);
  return v;
}

// Runs one of the vector tanh functions over x (a multiple of 8 long).
template <class F>
std::vector<double> vector_tanh(const std::vector<double>& x, F f) {
  std::vector<double> y(x.size());
  for (size_t i = 0; i < x.size(); i += W) {
    V v;
    for (int j = 0; j < W; ++j) v[j] = x[i + j];
    f(v);
    for (int j = 0; j < W; ++j) y[i + j] = v[j];
  }
  return y;
}

#ifdef DELYAP_NN_V4
// tanh_v_table exists only inside x86-64-v4 functions (its reciprocal is an AVX-512 builtin).
DELYAP_NN_V4_TARGET void table_tanh(V& v) { tanh_v_table(v); }
#endif

void check_tanh(const std::vector<double>& y, const std::vector<double>& x, const char* name) {
  for (size_t i = 0; i < x.size(); ++i) {
    INFO(name << ": x = " << x[i]);
    if (std::isnan(x[i])) {
      CHECK(std::isnan(y[i]));
      continue;
    }
    const long double ref = std::tanh(static_cast<long double>(x[i]));
    // 1 − 2/(e^{2x} + 1) and 2/(1 + e^{−2|x|}) − 1 have an absolute error of a few units in
    // the last place of 1 (1.1e-16), not a relative one: tanh(1e-300) may come out as 0.
    CHECK(std::fabs(static_cast<long double>(y[i]) - ref) <= 5e-16L);
    CHECK(std::fabs(y[i]) <= 1.0);
    if (y[i] != 0.0) CHECK(std::signbit(y[i]) == std::signbit(x[i]));
  }
}

}  // namespace

TEST_CASE("small kernels: both tanh formulations to 5e-16 with NaN, inf and the clamp",
          "[nn][small_gemm]") {
  std::vector<double> x = random_vector(4096, 7, 3.0);
  const double inf = std::numeric_limits<double>::infinity();
  for (double v : {0.0, -0.0, 1e-300, -1e-300, 1e-9, -1e-9, 0.02166, -0.02166, 0.3466, 0.5,
                   1.0, 19.99, 20.0, 20.01, -20.0, 25.0, -25.0, 1e300, -1e300, inf, -inf,
                   std::nan("")})
    x.push_back(v);
  // Every multiple of 1/64 on [-21, 21]: each table entry and each exponent k reached.
  for (int i = -21 * 64; i <= 21 * 64; ++i) x.push_back(i / 64.0);
  while (x.size() % W) x.push_back(0.1);
  check_tanh(vector_tanh(x, [](V& v) { tanh_v(v); }), x, "tanh_v");
#ifdef DELYAP_NN_V4
  if (has_x86_64_v4())
    check_tanh(vector_tanh(x, table_tanh), x, "tanh_v_table");
  else
    WARN("no x86-64-v4 CPU: tanh_v_table not tested");
#endif
}

TEST_CASE("small kernels: products and epilogues against plain loops at D = 1..8",
          "[nn][small_gemm]") {
  for (int D = 1; D <= 8; ++D) {
    for (int H : {32, 40, 64}) {
      const Index rows = 37;  // odd: the row-pair loop's remainder
      const auto x = random_vector(rows * D, 11 + D), m = random_vector(D * H, 13 + H, 0.5);
      const auto x2 = random_vector(rows * D, 17 + D), m2 = random_vector(D * H, 19 + H, 0.5);
      const auto bias = random_vector(H, 23), add = random_vector(rows * H, 29);
      const auto act = random_vector(rows * H, 31, 0.5);
      const double* X[2] = {x.data(), x2.data()};
      const double* M[2] = {m.data(), m2.data()};
      INFO("D = " << D << ", H = " << H);

      // z = bias + add + x m + x2 m2, then each epilogue
      std::vector<long double> z(rows * H);
      for (Index r = 0; r < rows; ++r)
        for (int h = 0; h < H; ++h) {
          long double s = static_cast<long double>(bias[h]) + add[r * H + h];
          for (int d = 0; d < D; ++d)
            s += static_cast<long double>(x[r * D + d]) * m[d * H + h] +
                 static_cast<long double>(x2[r * D + d]) * m2[d * H + h];
          z[r * H + h] = s;
        }
      std::vector<double> out(rows * H), da(rows * H);
      for (int mode : {kPlain, kTanh, kTanhDeriv, kTimes}) {
        small_k(D, rows, H, 2, X, M, bias.data(), add.data(), mode, act.data(), out.data(),
                mode == kTanh ? da.data() : nullptr);
        for (Index i = 0; i < rows * H; ++i) {
          long double want = z[i];
          if (mode == kTanh) want = std::tanh(z[i]);
          if (mode == kTanhDeriv) want = z[i] * (1.0L - static_cast<long double>(act[i]) * act[i]);
          if (mode == kTimes) want = z[i] * act[i];
          REQUIRE(std::fabs(out[i] - want) <= 1e-14L * (1.0L + std::fabs(z[i])));
          if (mode == kTanh) REQUIRE(std::fabs(da[i] - (1.0L - want * want)) <= 1e-15L);
        }
      }

      // k = act m2ᵀ (small_n; small_n8 on the transposed weights at D = 8), then += again
      std::vector<double> kout(rows * D), mt(H * 8);
      small_n(D, rows, H, act.data(), m2.data(), false, kout.data());
      small_n(D, rows, H, act.data(), m2.data(), true, kout.data());
      std::vector<double> k8(rows * 8);
      if (D == 8) {
        for (int h = 0; h < H; ++h)
          for (int d = 0; d < 8; ++d) mt[h * 8 + d] = m2[d * H + h];
        small_n8(rows, H, act.data(), mt.data(), k8.data());
      }
      for (Index r = 0; r < rows; ++r)
        for (int d = 0; d < D; ++d) {
          long double s = 0.0L;
          for (int h = 0; h < H; ++h) s += static_cast<long double>(act[r * H + h]) * m2[d * H + h];
          REQUIRE(std::fabs(kout[r * D + d] - 2.0L * s) <= 1e-13L);
          if (D == 8) REQUIRE(std::fabs(k8[r * 8 + d] - s) <= 1e-13L);
        }

      // W's gradient out += xᵀ act, with the column sums of act
      std::vector<double> g(D * H, 1.0), cs(H, 2.0);
      acc_tn(D, rows, H, x.data(), act.data(), g.data(), cs.data());
      for (int h = 0; h < H; ++h) {
        long double c = 2.0L;
        for (Index r = 0; r < rows; ++r) c += act[r * H + h];
        REQUIRE(std::fabs(cs[h] - c) <= 1e-13L);
        for (int d = 0; d < D; ++d) {
          long double s = 1.0L;
          for (Index r = 0; r < rows; ++r)
            s += static_cast<long double>(x[r * D + d]) * act[r * H + h];
          REQUIRE(std::fabs(g[d * H + h] - s) <= 1e-13L);
        }
      }
    }
  }
}

TEST_CASE("small kernels: lincomb against a plain loop, set and accumulated", "[nn][small_gemm]") {
  const Index n = 37;  // four vectors and a remainder
  std::vector<std::vector<double>> xs;
  for (int j = 0; j < kLincombMax; ++j) xs.push_back(random_vector(n, 100 + j));
  const auto c = random_vector(kLincombMax, 99);
  std::vector<const double*> X;
  for (const auto& x : xs) X.push_back(x.data());
  for (int terms : {0, 1, 2, 5, kLincombMax})
    for (bool accumulate : {false, true}) {
      INFO("terms = " << terms << ", accumulate = " << accumulate);
      std::vector<double> out = random_vector(n, 7);
      const std::vector<double> before = out;
      lincomb(n, out.data(), accumulate, terms, c.data(), X.data());
      for (Index i = 0; i < n; ++i) {
        long double want = accumulate ? before[i] : 0.0L;
        for (int j = 0; j < terms; ++j) want += static_cast<long double>(c[j]) * xs[j][i];
        REQUIRE(std::fabs(out[i] - want) <= 1e-14L);
      }
    }
}
#endif
