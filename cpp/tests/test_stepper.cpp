// The Runge–Kutta stepper (dde/stepper.hpp) on x'(t) = −x(t − 1), history 1 on [−1, 0) and
// x(0) = 2 (a jump at t0), with fixed steps landing on the breakpoints 1, 2, …. The solution
// is a polynomial of degree n + 1 on [n, n + 1], built exactly below by integrating the
// previous piece. A method of order p reads exact history and integrates exactly as long as
// the pieces are polynomials its quadrature and its interpolant reproduce, so each method
// must match the closed form to rounding up to a known time and not beyond; past it, the
// error must fall as h^p.
#include <catch2/catch.hpp>

#include "delyap/dde/trajectory.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include "delyap/dde/history_buffer.hpp"
#include "delyap/dde/stepper.hpp"

using namespace delyap;

namespace {

constexpr double kY0 = 2.0;  // x(0); the history is 1 before it

struct NegativeDelayed {
  int dim() const { return 1; }
  int n_delays() const { return 1; }
  double delay(int) const { return 1.0; }
  bool rhs(double, const double*, const double* xd, double* out) const {
    out[0] = -xd[0];
    return true;
  }
};

// Piece n of the solution as coefficients in u = t − n ∈ [0, 1]:
// P_n(u) = P_{n−1}(1) − ∫_0^u P_{n−1}(v) dv, with P_{−1} = 1 (the history), P_0(0) = x(0).
struct ExactSolution {
  std::vector<std::vector<double>> pieces;
  explicit ExactSolution(int n_pieces) {
    std::vector<double> prev{1.0};
    for (int n = 0; n < n_pieces; ++n) {
      double start = 0.0;
      for (double c : prev) start += c;  // P_{n−1}(1)
      std::vector<double> p(prev.size() + 1, 0.0);
      p[0] = n == 0 ? kY0 : start;
      for (size_t m = 0; m < prev.size(); ++m) p[m + 1] = -prev[m] / double(m + 1);
      pieces.push_back(p);
      prev = p;
    }
  }
  double operator()(double t) const {
    int n = int(std::floor(t));
    if (n >= int(pieces.size())) n = int(pieces.size()) - 1;
    const double u = t - n;
    const std::vector<double>& p = pieces[n];
    double v = 0.0;
    for (size_t m = p.size(); m-- > 0;) v = v * u + p[m];
    return v;
  }
};

// Largest error per piece [n, n + 1], at step ends and in the dense output inside steps.
struct Errors {
  std::vector<double> ends, dense;
  double max() const {
    double m = 0.0;
    for (double e : ends) m = std::fmax(m, e);
    for (double e : dense) m = std::fmax(m, e);
    return m;
  }
};

// Integrates to t_end with step dt (1/dt an integer, so steps land on the breakpoints) and
// compares step ends and the dense output inside each step with the closed form.
Errors integrate_fixed(Method method, double dt, int t_end) {
  const NegativeDelayed sys;
  const ExactSolution exact(t_end + 1);
  const Tableau& tab = tableau_for(method);
  const int n_coef = coefficients_for(tab);
  HistoryBuffer buffer(1, n_coef, 8);
  HistoryView& hist = buffer.view();
  const double one = 1.0, zero = 0.0;
  const std::vector<double> flat(n_coef, 0.0);
  hist.push_anchor(-1.0, &one, &zero);
  hist.push_interval(flat.data(), 0.0, &one, &zero);

  std::vector<double> scratch(StepWorkspace::doubles_needed(1, 1));
  StepWorkspace ws = StepWorkspace::carve(scratch.data(), 1, 1);
  SolverOptions opt;
  SolveStats stats;
  DdeStepper<NegativeDelayed> stepper(sys, tab, opt, hist, ws, stats);

  double t = 0.0, x = kY0, f = 0.0;
  REQUIRE(stepper.eval_rhs(t, &x, &f) == Status::Success);  // right-hand limits at t0
  REQUIRE(f == -1.0);
  hist.push_anchor(t, &x, &f);  // the solution side of the jump at t0
  Errors e{std::vector<double>(t_end, 0.0), std::vector<double>(t_end, 0.0)};
  auto record = [&](std::vector<double>& where, double s, double value) {
    const int n = std::min(int(std::ceil(s)) - 1, t_end - 1);  // a step end n + 1 is piece n's
    where[n] = std::fmax(where[n], std::fabs(value - exact(s)));
  };
  while (t < t_end) {
    hist.evict_before(t - 1.0);
    REQUIRE(buffer.ensure(hist.size + 2));
    double err_norm = 0.0;
    bool converged = false;
    REQUIRE(stepper.attempt(t, dt, &x, &f, &err_norm, &converged) == Status::Success);
    REQUIRE(converged);
    REQUIRE_FALSE(stepper.read_ahead);  // steps ≤ the delay never read inside themselves
    stepper.build_coefficients(dt, &x, &f);
    hist.push_interval(ws.coef, t + dt, ws.x1, ws.f1);
    for (double theta : {0.25, 0.5, 0.8}) {
      double y;
      hist.eval_interval(hist.size - 2, t + theta * dt, &y);
      record(e.dense, t + theta * dt, y);
    }
    t += dt;
    x = ws.x1[0];
    f = ws.f1[0];
    record(e.ends, t, x);
    // On a breakpoint the next step starts from right-hand limits of the lagged values (the
    // FSAL stage closed this one with left-hand limits), as the driver does.
    if (t == std::floor(t)) REQUIRE(stepper.eval_rhs(t, &x, &f) == Status::Success);
  }
  return e;
}

}  // namespace

TEST_CASE("the closed form is right: x' = −x(t − 1) on each piece, continuous at breakpoints",
          "[stepper]") {
  const ExactSolution exact(6);
  for (double t = 0.05; t < 5.9; t += 0.1) {
    const double h = 1e-6;
    const double slope = (exact(t + h) - exact(t - h)) / (2 * h);
    const double lagged = t < 1 ? 1.0 : exact(t - 1);
    CHECK(slope == Approx(-lagged).margin(1e-8));
  }
  for (int n = 1; n < 6; ++n) CHECK(exact(n - 1e-12) == Approx(exact(n)).margin(1e-10));
  CHECK(exact(0.0) == kY0);
  CHECK(exact(1.0) == Approx(1.0));  // 2 − t
}

TEST_CASE("each method is exact while the solution is a polynomial it reproduces",
          "[stepper]") {
  // A step end is exact while the method's quadrature order p covers the piece's degree and
  // the previous piece was read exactly; the dense output inside a step while the interpolant
  // (cubic Hermite, or DP5's quartic continuous extension) also has the piece's degree.
  // Euler: both on [0, 1] (x linear). BS3: both up to the cubic on [2, 3]. RK4 (Simpson's
  // rule): ends up to the quartic on [3, 4], dense up to [2, 3]. DP5: ends up to the quintic on
  // [4, 5], dense up to the quartic on [3, 4].
  struct Case {
    Method method;
    int exact_ends, exact_dense;  // pieces [0, n) exact
  };
  for (const Case c : {Case{Method::Euler, 1, 1}, Case{Method::BS3, 3, 3},
                       Case{Method::RK4, 4, 3}, Case{Method::DP5, 5, 4}}) {
    INFO(tableau_for(c.method).name);
    for (double dt : {1.0, 0.5, 0.125}) {
      INFO("dt = " << dt);
      const Errors e = integrate_fixed(c.method, dt, c.exact_ends + 1);
      for (int n = 0; n < c.exact_ends; ++n) CHECK(e.ends[n] < 1e-13);
      for (int n = 0; n < c.exact_dense; ++n) CHECK(e.dense[n] < 1e-13);
      // ... and not one piece longer: the claims are sharp (a method of a higher order than
      // its tableau says, or an interpolant of a higher degree, would pass the first checks).
      CHECK(e.ends[c.exact_ends] > 1e-11);
      CHECK(e.dense[c.exact_dense] > 1e-11);
    }
  }
}

TEST_CASE("the global error falls as h^p with p the method's order", "[stepper]") {
  struct Case {
    Method method;
    double dt;  // the coarsest step; then dt/2, dt/4
  };
  for (const Case c : {Case{Method::Euler, 1.0 / 64}, Case{Method::BS3, 1.0 / 8},
                       Case{Method::RK4, 1.0 / 8}, Case{Method::DP5, 1.0 / 4}}) {
    const int p = tableau_for(c.method).order;
    INFO(tableau_for(c.method).name);
    double prev = 0.0;
    for (int halvings = 0; halvings < 3; ++halvings) {
      const double err = integrate_fixed(c.method, c.dt / double(1 << halvings), 8).max();
      if (halvings > 0) {
        const double observed = std::log2(prev / err);
        INFO("observed order " << observed << " at dt = " << c.dt / double(1 << halvings));
        CHECK(std::fabs(observed - p) < 0.3);
      }
      prev = err;
    }
  }
}
