// The history ring (dde/history.hpp, history_buffer.hpp): interpolation, interval lookup,
// eviction, growth, and the one-sided reads at jumps (zero-length intervals), including the
// snap of reads a rounding error away from a jump.
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "delyap/dde/history_buffer.hpp"
#include "history_fixtures.hpp"

using namespace delyap;
using delyap::testing::load_jump;

namespace {

// A cubic and its derivative: cubic Hermite data reproduces it exactly on every interval.
double cubic(double t) { return 0.5 * t * t * t - t * t + 2.0 * t - 1.0; }
double cubic_slope(double t) { return 1.5 * t * t - 2.0 * t + 2.0; }

template <class View>
void push_cubic(View& v, double t) {
  const double x = cubic(t), f = cubic_slope(t);
  if (v.size == 0) {
    v.push_anchor(t, &x, &f);
    return;
  }
  const Index last = v.size - 1;
  const double x0 = v.state(last)[0], f0 = v.deriv(last)[0];
  double c[4];
  hermite_coefficients(&x0, &f0, &x, &f, t - v.time(last), 1, v.n_coef, c);
  v.push_interval(c, t, &x, &f);
}

double read(const HistoryView& v, double s, bool left) {
  double out = NAN;
  REQUIRE(v.eval(s, &out, nullptr, left));
  return out;
}

}  // namespace

TEST_CASE("a history of cubic Hermite intervals reproduces a cubic and its slope", "[history]") {
  HistoryBuffer buf(1, 3, 4);
  HistoryView& v = buf.view();
  const double times[] = {-1.0, -0.7, -0.2, 0.1, 0.15, 0.9};
  for (double t : times) {
    REQUIRE(buf.ensure(v.size + 1));
    push_cubic(v, t);
  }
  for (double s = -1.0; s <= 0.9; s += 0.0137) {
    double x, dx;
    REQUIRE(v.eval(s, &x, &dx));
    CHECK(x == Approx(cubic(s)).margin(1e-14));
    CHECK(dx == Approx(cubic_slope(s)).margin(1e-13));
  }
  // Past the last anchor: the tangent line there (the first iterate of a long step).
  double x;
  REQUIRE(v.eval(1.4, &x));
  CHECK(x == Approx(cubic(0.9) + 0.5 * cubic_slope(0.9)).margin(1e-14));
  // Older than the window: refused, not extrapolated.
  CHECK_FALSE(v.eval(-1.01, &x));
  // ... but a rounding error short of its start is its start.
  REQUIRE(v.eval(-1.0 - 1e-14, &x));
  CHECK(x == cubic(-1.0));
}

TEST_CASE("find_interval picks the interval containing s, by side at shared anchors",
          "[history]") {
  HistoryBuffer buf(1, 3, 16);
  HistoryView& v = buf.view();
  for (int i = 0; i <= 10; ++i) push_cubic(v, 0.5 * i);
  for (int i = 0; i < 10; ++i) {
    const double mid = 0.5 * i + 0.2;
    CHECK(v.find_interval(mid) == i);
    CHECK(v.find_interval(mid, true) == i);
  }
  // At an interior anchor t_i both neighbours contain it: right reads take [t_i, t_i+1],
  // left reads [t_i−1, t_i].
  CHECK(v.find_interval(1.5) == 3);
  CHECK(v.find_interval(1.5, true) == 2);
  // The ends of the window belong to its first and last interval whatever the side.
  CHECK(v.find_interval(0.0) == 0);
  CHECK(v.find_interval(0.0, true) == 0);
  CHECK(v.find_interval(5.0) == 9);
  CHECK(v.find_interval(5.0, true) == 9);
}

TEST_CASE("eviction keeps exactly what reads at t ≥ t_min need", "[history]") {
  HistoryBuffer buf(1, 3, 8);
  HistoryView& v = buf.view();
  for (int i = 0; i <= 6; ++i) push_cubic(v, double(i));
  v.evict_before(2.5);
  CHECK(v.time(0) == 2.0);  // the interval containing 2.5 stays
  CHECK(v.size == 5);
  double x;
  REQUIRE(v.eval(2.5, &x));
  CHECK(x == Approx(cubic(2.5)).margin(1e-14));
  CHECK_FALSE(v.eval(1.9, &x));
  v.evict_before(3.0);  // an anchor time: [3, 4] serves it, [2, 3] can go
  CHECK(v.time(0) == 3.0);
  v.evict_before(100.0);  // never below one interval
  CHECK(v.size == 2);
  CHECK(v.time(0) == 5.0);
  CHECK(v.last_time() == 6.0);
}

TEST_CASE("growth preserves order and values across a wrapped ring", "[history]") {
  HistoryBuffer buf(1, 3, 8);
  HistoryView& v = buf.view();
  REQUIRE(buf.capacity() == 8);
  // Slide a window of ≤ 6 anchors far enough that head wraps around several times.
  double t = 0.0;
  for (int i = 0; i < 30; ++i, t += 0.25) {
    v.evict_before(t - 1.0);
    REQUIRE(buf.ensure(v.size + 1));
    push_cubic(v, t);
  }
  REQUIRE(buf.capacity() == 8);
  REQUIRE(v.head != 0);  // wrapped: growth has to unroll the ring
  const Index size = v.size;
  std::vector<double> before;
  for (double s = v.time(0); s <= v.last_time(); s += 0.01) before.push_back(read(v, s, false));
  const double first = v.time(0);
  REQUIRE(buf.ensure(9));
  CHECK(buf.capacity() == 16);
  CHECK(v.size == size);
  CHECK(v.time(0) == first);
  for (Index i = 0; i + 1 < v.size; ++i) CHECK(v.time(i + 1) == v.time(i) + 0.25);
  size_t j = 0;
  for (double s = v.time(0); s <= v.last_time(); s += 0.01) CHECK(read(v, s, false) == before[j++]);
  // And the grown ring keeps working: more anchors than the old capacity.
  for (int i = 0; i < 8; ++i, t += 0.25) push_cubic(v, t);
  CHECK(v.size == size + 8);
  CHECK(read(v, t - 0.3, false) == Approx(cubic(t - 0.3)).margin(1e-14));
  CHECK(buf.peak_size() >= size);
}

TEST_CASE("a jump is read from the side the read asks for", "[history][jump]") {
  HistoryBuffer buf(1, 3, 8);
  load_jump(buf);
  const HistoryView& v = buf.view();
  CHECK(read(v, 0.0, false) == 3.0);  // integrating forward from t0: the solution side
  CHECK(read(v, 0.0, true) == 1.0);   // the end of a lagged window: the history side
  CHECK(read(v, -0.5, true) == 1.0);
  CHECK(read(v, 0.5, false) == Approx(3.25).margin(1e-15));
  CHECK(read(v, 0.5, true) == Approx(3.25).margin(1e-15));
}

TEST_CASE("a read a rounding error off a jump snaps onto it and keeps its side",
          "[history][jump]") {
  HistoryBuffer buf(1, 3, 8);
  load_jump(buf);
  const HistoryView& v = buf.view();
  using Ring = HistoryRing<ContiguousLayout>;
  for (double off : {-1e-13, -4e-16, 4e-16, 1e-13}) {
    INFO("s = " << off);
    // Unsnapped, a right read short of the jump would give 1 and a left one past it 3.
    CHECK(read(v, off, false) == Approx(3.0).margin(1e-12));
    CHECK(read(v, off, true) == Approx(1.0).margin(1e-12));
    // Only a read on the wrong side of the jump moves: a left read just past it onto the
    // interval [-1, 0] that ends there, a right read just short of it onto the zero-length
    // interval [0, 0] (the value after the jump).
    for (bool left : {false, true}) {
      double s = off;
      Index i = -1;
      REQUIRE(v.locate(&s, &i, left) == Ring::Read::Interval);
      const bool wrong_side = left ? off > 0 : off < 0;
      CHECK(s == (wrong_side ? 0.0 : off));
      CHECK(i == (left ? 1 : off < 0 ? 2 : 3));
    }
  }
  // Beyond the tolerance (1e-11·(1 + |s|)) a read is an ordinary one: no snap.
  CHECK(read(v, -1e-9, false) == 1.0);
  CHECK(read(v, 1e-9, true) == Approx(3.0 + 0.5e-9).margin(1e-15));
  CHECK(Ring::jump_tolerance(0.0) == 1e-11);
  CHECK(Ring::jump_tolerance(-9.0) == Approx(1e-10));
}

TEST_CASE("a left read just past a jump at the last anchor is its left limit", "[history][jump]") {
  // The history ends with the jump at t0 (y0 ≠ history): a lag landing a rounding error past
  // t0 during the first step reads the history, not the tangent extrapolated from y0.
  HistoryBuffer buf(1, 3, 8);
  HistoryView& v = buf.view();
  const double one = 1.0, zero = 0.0, c0[3] = {0.0, 0.0, 0.0};
  v.push_anchor(-1.0, &one, &zero);
  v.push_interval(c0, 0.0, &one, &zero);
  const double y0 = 3.0, f0 = 2.0;
  v.push_anchor(0.0, &y0, &f0);
  CHECK(read(v, 1e-13, true) == 1.0);
  CHECK(read(v, 1e-13, false) == Approx(3.0 + 2e-13).margin(1e-16));  // extrapolation
  CHECK(read(v, 1e-9, true) == Approx(3.0 + 2e-9).margin(1e-16));     // a real step past t0
  CHECK(read(v, 0.0, false) == 3.0);
  CHECK(read(v, 0.0, true) == 1.0);
}

TEST_CASE("an interleaved view reads the same history as the contiguous one", "[history]") {
  const int dim = 2, n_coef = 3;
  const Index cap = 8, stride = 3;  // three trajectories side by side; this one is lane 1
  std::vector<double> t(cap * stride, NAN), x(cap * dim * stride, NAN),
      f(cap * dim * stride, NAN), c(cap * n_coef * dim * stride, NAN);
  InterleavedHistoryView iv;
  iv.stride_ = stride;
  iv.t = t.data() + 1;
  iv.x = x.data() + 1;
  iv.f = f.data() + 1;
  iv.coef = c.data() + 1;
  iv.cap = cap;
  iv.dim = dim;
  iv.n_coef = n_coef;
  HistoryBuffer buf(dim, n_coef, cap);
  HistoryView& v = buf.view();
  auto push = [&](double ti, bool jump) {
    const double xi[2] = {std::sin(ti), ti * ti}, fi[2] = {std::cos(ti), 2 * ti};
    for (int which = 0; which < 2; ++which) {
      if (jump || (which == 0 ? v.size : iv.size) == 0) {
        if (which == 0) v.push_anchor(ti, xi, fi); else iv.push_anchor(ti, xi, fi);
        continue;
      }
      double cc[2 * 3];
      const Index last = (which == 0 ? v.size : iv.size) - 1;
      double x0[2], f0[2];
      for (int d = 0; d < dim; ++d) {
        x0[d] = which == 0 ? v.state(last)[d] : iv.state(last)[d * stride];
        f0[d] = which == 0 ? v.deriv(last)[d] : iv.deriv(last)[d * stride];
      }
      hermite_coefficients(x0, f0, xi, fi, ti - (which == 0 ? v.time(last) : iv.time(last)),
                           dim, n_coef, cc);
      if (which == 0) v.push_interval(cc, ti, xi, fi); else iv.push_interval(cc, ti, xi, fi);
    }
  };
  for (double ti : {0.0, 0.3, 0.7, 1.2}) push(ti, false);
  push(1.2, true);  // a jump (same data on both sides: only the bookkeeping matters)
  push(1.6, false);
  for (double s = 0.0; s <= 1.8; s += 0.05)
    for (bool left : {false, true}) {
      double a[2], b[2], da[2], db[2];
      REQUIRE(v.eval(s, a, da, left));
      REQUIRE(iv.eval(s, b, db, left));
      for (int d = 0; d < dim; ++d) {
        CHECK(a[d] == b[d]);
        CHECK(da[d] == db[d]);
      }
    }
  // Lanes 0 and 2 untouched.
  for (Index i = 0; i < cap; ++i) {
    CHECK(std::isnan(t[i * stride]));
    CHECK(std::isnan(t[i * stride + 2]));
  }
}

namespace {
// HostVectorExec (memory of its own, as a device executor has) that counts its loops: every
// per-component loop of a history on an executor must run there (on a GPU a plain loop over
// device memory would read garbage).
struct CountingExec : HostVectorExec {
  int* calls = nullptr;
  template <class F>
  void for_each(Index n, const F& f) const {
    ++*calls;
    SerialExec::for_each(n, f);
  }
};
}  // namespace

TEST_CASE("a history in an executor's memory is the host history, bit for bit",
          "[history][exec]") {
  const int dim = 2, n_coef = 4;
  int calls = 0;
  CountingExec exec;
  exec.calls = &calls;
  HistoryBuffer host(dim, n_coef, 4);
  HistoryBufferT<CountingExec> dev(exec, dim, n_coef, 4);
  auto& h = host.view();
  auto& e = dev.view();
  // Slide a window so the ring wraps, grow it while wrapped, with a jump in the middle.
  double t = 0.0;
  for (int i = 0; i < 40; ++i, t += 0.3) {
    const double xi[2] = {std::sin(t), t * t}, fi[2] = {std::cos(t), 2 * t};
    const Index window = i < 20 ? 2 : 12;  // a longer delay later: growth of a wrapped ring
    h.evict_before(t - window * 0.3);
    e.evict_before(t - window * 0.3);
    REQUIRE(host.ensure(h.size + 1));
    REQUIRE(dev.ensure(e.size + 1));
    const int before = calls;
    if (h.size == 0 || i == 25) {  // i = 25: a jump (a repeated time)
      if (i == 25) t -= 0.3;
      h.push_anchor(t, xi, fi);
      e.push_anchor(t, xi, fi);
      CHECK(calls > before);
      continue;
    }
    double c[n_coef * dim];
    for (int k = 0; k < n_coef * dim; ++k) c[k] = std::sin(1.7 * k + t);  // any coefficients
    h.push_interval(c, t, xi, fi);
    e.push_interval(c, t, xi, fi);
    CHECK(calls >= before + 2);  // coefficients, then the anchor
  }
  REQUIRE(dev.capacity() == host.capacity());
  REQUIRE(host.capacity() >= 16);
  REQUIRE(e.size == h.size);
  for (Index i = 0; i < h.size; ++i) REQUIRE(e.time(i) == h.time(i));
  for (double s = h.time(0); s <= h.last_time() + 0.5; s += 0.01)
    for (bool left : {false, true}) {
      double a[2], b[2], da[2], db[2];
      const int before = calls;
      REQUIRE(h.eval(s, a, da, left));
      REQUIRE(e.eval(s, b, db, left));
      CHECK(calls >= before + 2);  // the value and the derivative
      for (int d = 0; d < dim; ++d) {
        CHECK(a[d] == b[d]);
        CHECK(da[d] == db[d]);
      }
    }
  double out[2];
  CHECK_FALSE(e.eval(h.time(0) - 1.0, out));  // older than the window
}
