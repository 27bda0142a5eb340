// Householder QR (lyap/householder.hpp) by its defining properties, and the blocked host
// kernels (lyap/blocked_linalg.hpp) against it and against a plain triple loop.
#include <catch2/catch.hpp>

#include <cmath>
#include <random>
#include <vector>

#include "delyap/lyap/blocked_linalg.hpp"
#include "delyap/lyap/householder.hpp"

using namespace delyap;

namespace {

using Mat = std::vector<double>;  // column-major unless said otherwise

Mat random_matrix(Index rows, Index cols, uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::normal_distribution<double> normal;
  Mat a(rows * cols);
  for (double& v : a) v = normal(gen);
  return a;
}

double max_abs(const Mat& a) {
  double m = 0.0;
  for (double v : a) m = std::fmax(m, std::fabs(v));
  return m;
}

// Checks that (q, r) is a thin QR of a (n × k, column-major, leading dimension lda for q):
// QᵀQ = I, QR = A, R upper triangular with diag(R) ≥ 0 (> 0 when A has full rank).
void require_thin_qr(const Mat& a, const double* q, Index lda, const Mat& r, Index n, Index k,
                     bool full_rank) {
  const double scale = 1.0 + max_abs(a);
  for (Index i = 0; i < k; ++i)
    for (Index j = 0; j < k; ++j) {
      double dot = 0.0;
      for (Index l = 0; l < n; ++l) dot += q[i * lda + l] * q[j * lda + l];
      CHECK(dot == Approx(i == j ? 1.0 : 0.0).margin(1e-13 * std::sqrt(double(n))));
    }
  for (Index j = 0; j < k; ++j) {
    for (Index i = j + 1; i < k; ++i) CHECK(r[j * k + i] == 0.0);
    if (full_rank) CHECK(r[j * k + j] > 0.0);
    else CHECK(r[j * k + j] >= 0.0);
    for (Index i = 0; i < n; ++i) {
      double qr = 0.0;
      for (Index l = 0; l <= j; ++l) qr += q[l * lda + i] * r[j * k + l];
      CHECK(qr == Approx(a[j * n + i]).margin(1e-13 * scale * double(k)));
    }
  }
}

}  // namespace

TEST_CASE("householder_qr gives Q orthonormal, R upper with positive diagonal, QR = A",
          "[householder]") {
  const Index shapes[][2] = {{1, 1}, {5, 1}, {4, 4}, {10, 3}, {30, 30}, {64, 17}};
  uint64_t seed = 1;
  for (const auto& s : shapes) {
    const Index n = s[0], k = s[1];
    INFO("n = " << n << ", k = " << k);
    const Mat a = random_matrix(n, k, seed++);
    Mat q = a, r(k * k, -1.0), work(k);
    householder_qr(q.data(), n, n, int(k), r.data(), work.data());
    require_thin_qr(a, q.data(), n, r, n, k, true);
  }
}

TEST_CASE("householder_qr: columns whose first entry is negative or zero keep R's diagonal > 0",
          "[householder]") {
  // A negative leading entry takes the other reflector sign (alpha = +norm); the sign fix at
  // the end must still make diag(R) positive. A diagonal matrix with mixed signs: Q = sign(A).
  const Index n = 3;
  Mat a = {-2.0, 0.0, 0.0, 0.0, 3.0, 0.0, 0.0, 0.0, -0.5};
  Mat q = a, r(9), work(3);
  householder_qr(q.data(), n, n, 3, r.data(), work.data());
  require_thin_qr(a, q.data(), n, r, n, 3, true);
  CHECK(r[0] == Approx(2.0));
  CHECK(r[4] == Approx(3.0));
  CHECK(r[8] == Approx(0.5));
  CHECK(q[0] == Approx(-1.0));
  CHECK(q[8] == Approx(-1.0));
}

TEST_CASE("householder_qr of a rank-deficient block stays a QR with orthonormal Q",
          "[householder]") {
  // Column 1 is zero and column 2 repeats column 0: the zero-norm branch (no reflector).
  const Index n = 6, k = 3;
  Mat a = random_matrix(n, k, 7);
  for (Index i = 0; i < n; ++i) {
    a[1 * n + i] = 0.0;
    a[2 * n + i] = a[0 * n + i];
  }
  Mat q = a, r(k * k), work(k);
  householder_qr(q.data(), n, n, int(k), r.data(), work.data());
  require_thin_qr(a, q.data(), n, r, n, k, false);
  CHECK(r[1 * k + 1] == 0.0);
}

TEST_CASE("householder_qr on a block inside a larger array leaves the rest alone",
          "[householder]") {
  const Index n = 7, k = 4, lda = 10;
  const Mat a = random_matrix(n, k, 11);
  Mat big(lda * k, 42.0);
  for (Index j = 0; j < k; ++j)
    for (Index i = 0; i < n; ++i) big[j * lda + i] = a[j * n + i];
  Mat r(k * k), work(k);
  householder_qr(big.data(), lda, n, int(k), r.data(), work.data());
  require_thin_qr(a, big.data(), lda, r, n, k, true);
  for (Index j = 0; j < k; ++j)
    for (Index i = n; i < lda; ++i) CHECK(big[j * lda + i] == 42.0);
}

TEST_CASE("blocked_qr equals householder_qr across panel boundaries", "[blocked]") {
  auto never = [] { return false; };
  // Panels of 48 reflectors: one partial panel, exactly one, several with a remainder, k = n.
  const Index shapes[][2] = {{10, 1}, {60, 20}, {100, 48}, {150, 100}, {97, 97}};
  uint64_t seed = 100;
  for (const auto& s : shapes) {
    const Index n = s[0], k = s[1];
    INFO("n = " << n << ", k = " << k);
    const Mat a = random_matrix(n, k, seed++);
    Mat q1 = a, r1(k * k), work(k);
    householder_qr(q1.data(), n, n, int(k), r1.data(), work.data());
    Mat q2 = a, r2(k * k, -1.0);
    WorkPoll<decltype(never)> poll(never);
    REQUIRE(blocked_qr(q2.data(), n, k, r2.data(), PollRef::of(poll)));
    require_thin_qr(a, q2.data(), n, r2, n, k, true);
    // The thin QR with positive diag(R) is unique: the two agree to rounding.
    const double tol = 1e-12 * double(k);
    for (Index i = 0; i < n * k; ++i) CHECK(q2[i] == Approx(q1[i]).margin(tol));
    for (Index i = 0; i < k * k; ++i) CHECK(r2[i] == Approx(r1[i]).margin(tol * (1 + max_abs(r1))));
  }
}

TEST_CASE("blocked_multiply equals the plain product, thin and wide", "[blocked]") {
  auto never = [] { return false; };
  const Index d = 70;
  Mat A = random_matrix(d, d, 5);  // read as row-major
  for (Index k : {Index(1), Index(12), Index(13), Index(40)}) {
    INFO("k = " << k);
    const Mat q = random_matrix(d, k, 6 + uint64_t(k));
    Mat out(d * k, NAN);
    WorkPoll<decltype(never)> poll(never);
    REQUIRE(blocked_multiply(A.data(), d, q.data(), k, out.data(), PollRef::of(poll)));
    for (Index c = 0; c < k; ++c)
      for (Index i = 0; i < d; ++i) {
        double s = 0.0;
        for (Index l = 0; l < d; ++l) s += A[i * d + l] * q[c * d + l];
        CHECK(out[c * d + i] == Approx(s).margin(1e-12 * d));
      }
  }
}

TEST_CASE("the blocked kernels stop when the poll says so", "[blocked]") {
  int calls = 0;
  auto cancelled = [&calls] { ++calls; return true; };
  const Index n = 200, k = 150;
  Mat q = random_matrix(n, k, 3), r(k * k);
  WorkPoll<decltype(cancelled)> poll(cancelled);
  CHECK_FALSE(blocked_qr(q.data(), n, k, r.data(), PollRef::of(poll)));
  CHECK(calls == 1);  // the first charge reads the flag and the run stops there
  Mat A = random_matrix(n, n, 4), out(n * k);
  WorkPoll<decltype(cancelled)> poll2(cancelled);
  CHECK_FALSE(blocked_multiply(A.data(), n, q.data(), k, out.data(), PollRef::of(poll2)));
}
