// Read cursors (dde/history.hpp): find_interval and locate started from any hint, stale or out
// of range, give the interval a plain linear scan of the definition gives, and locate keeps
// its snap onto jumps; a read at an interval's end anchor is the stored state; integer powers
// (dde/rhs/mackey_glass.hpp) agree with std::pow.
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "delyap/dde/history_buffer.hpp"
#include "delyap/dde/rhs/mackey_glass.hpp"
#include "history_fixtures.hpp"

using namespace delyap;

namespace {

// The definition, written independently of the search: right reads take the largest
// i ≤ size − 2 with t_i ≤ s, left reads the smallest i with t_{i+1} ≥ s.
Index scan_interval(const HistoryView& v, double s, bool left) {
  const Index last = v.size - 2;
  if (left) {
    for (Index i = 0; i <= last; ++i)
      if (v.time(i + 1) >= s) return i;
    return last;
  }
  Index found = 0;
  for (Index i = 0; i <= last; ++i)
    if (v.time(i) <= s) found = i;
  return found;
}

// Anchors on an uneven grid with two jumps (repeated times), pushed into a small ring that
// wraps around and evicts, as a long run does.
void push_time(HistoryView& v, double t) {
  const double x = std::sin(t), f = std::cos(t), c[3] = {f, 0.0, 0.0};
  if (v.size == 0)
    v.push_anchor(t, &x, &f);
  else
    v.push_interval(c, t, &x, &f);
}

}  // namespace

TEST_CASE("find_interval from any hint equals the definition, jumps and ring wrap included",
          "[history][cursor]") {
  HistoryBuffer buf(1, 3, 16);
  HistoryView& v = buf.view();
  std::vector<double> times;
  double t = -3.0;
  for (int i = 0; i < 40; ++i) {
    times.push_back(t);
    if (i == 9 || i == 23) times.push_back(t);  // a jump: a zero-length interval
    t += 0.05 + 0.1 * ((i * 7) % 5);
  }
  for (double ti : times) {
    v.evict_before(ti - 1.2);  // keeps the window short, so head wraps around the ring
    buf.ensure(v.size + 1);
    push_time(v, ti);
    if (v.size < 2) continue;
    // Read times: every anchor (both sides of a jump), midpoints and the window's ends.
    std::vector<double> reads;
    for (Index i = 0; i < v.size; ++i) {
      reads.push_back(v.time(i));
      if (i + 1 < v.size) reads.push_back(0.5 * (v.time(i) + v.time(i + 1)));
    }
    for (double s : reads)
      for (bool left : {false, true}) {
        const Index want = scan_interval(v, s, left);
        CHECK(v.find_interval(s, left) == want);
        for (Index hint = -2; hint <= v.size + 1; ++hint) {
          INFO("s = " << s << ", left = " << left << ", hint = " << hint << ", size = " << v.size);
          CHECK(v.find_interval(s, left, hint) == want);
        }
      }
  }
}

TEST_CASE("locate with a cursor snaps onto jumps as without one and leaves the interval there",
          "[history][cursor][jump]") {
  // History 1 on [-2, 0], a jump at 0 to 3, slope 0.5 on [0, 1]: anchors -2, -1, 0, 0, 1.
  HistoryBuffer buf(1, 3, 8);
  testing::load_jump(buf);
  HistoryView& v = buf.view();
  using Ring = HistoryRing<ContiguousLayout>;
  for (double s0 : {-1.5, -1e-13, -4e-16, 0.0, 4e-16, 1e-13, 0.5, 1.0})
    for (bool left : {false, true})
      for (Index start = -1; start <= 4; ++start) {
        INFO("s = " << s0 << ", left = " << left << ", cursor = " << start);
        double s_plain = s0, s_cursor = s0;
        Index i_plain = -1, i_cursor = -1, cursor = start;
        REQUIRE(v.locate(&s_plain, &i_plain, left) == Ring::Read::Interval);
        REQUIRE(v.locate(&s_cursor, &i_cursor, left, &cursor) == Ring::Read::Interval);
        CHECK(s_cursor == s_plain);
        CHECK(i_cursor == i_plain);
        CHECK(cursor == i_plain);
        double a = NAN, b = NAN;
        Index again = start;
        REQUIRE(v.eval(s0, &a, nullptr, left));
        REQUIRE(v.eval(s0, &b, nullptr, left, &again));
        CHECK(a == b);
      }
}

TEST_CASE("a read at an interval's end anchor is the anchor's state, not the polynomial's",
          "[history]") {
  // Coefficients whose polynomial ends at 1.9 while the anchor holds 2 (a method's dense output
  // misses its own end point by rounding; exaggerated here so any leak shows).
  HistoryBuffer buf(1, 4, 8);
  HistoryView& v = buf.view();
  const double x0 = 1.0, f0 = 0.0, x1 = 2.0, c[4] = {0.2, 0.3, 0.2, 0.2};
  v.push_anchor(0.0, &x0, &f0);
  v.push_interval(c, 0.5, &x1, &f0);
  for (bool left : {false, true}) {
    double out = NAN;
    REQUIRE(v.eval(0.5, &out, nullptr, left));
    CHECK(out == 2.0);
    REQUIRE(v.eval(0.0, &out, nullptr, left));
    CHECK(out == 1.0);
    REQUIRE(v.eval(0.25, &out, nullptr, left));  // inside: the polynomial
    CHECK(out == Approx(1.0 + 0.5 * (0.2 * 0.5 + 0.3 * 0.25 + 0.2 * 0.125 + 0.2 * 0.0625)));
  }
}

TEST_CASE("Mackey–Glass's integer power agrees with pow and keeps pow's special values",
          "[rhs][power]") {
  for (unsigned k : {0u, 1u, 2u, 3u, 7u, 10u, 17u, 64u})
    for (double x : {0.0, -0.0, 0.3, -0.7, 1.0, 1.37, -2.5, 9.0}) {
      const double want = std::pow(x, double(k));
      const double got = integer_power(x, k);
      INFO("x = " << x << ", k = " << k);
      CHECK(std::signbit(got) == std::signbit(want));
      CHECK(got == Approx(want).epsilon(16 * 2.2e-16).margin(0.0));
    }
  CHECK(std::isnan(integer_power(NAN, 10)));
  CHECK(integer_power(NAN, 0) == 1.0);  // pow(NaN, 0) = 1
  CHECK(std::isinf(integer_power(1e40, 10)));
  // n = 10 takes the multiplications, n = 9.5 and n = −2 keep pow; both give the same rhs.
  const MackeyGlass ten(0.2, 0.1, 10.0, 17.0), half(0.2, 0.1, 9.5, 17.0), neg(0.2, 0.1, -2.0, 1.0);
  CHECK(ten.n_integral);
  CHECK(ten.n_int == 10u);
  CHECK_FALSE(half.n_integral);
  CHECK_FALSE(neg.n_integral);
  for (double x : {0.2, 0.9, 1.3}) {
    double out = 0.0;
    ten.rhs(0.0, &x, &x, &out);
    CHECK(out == Approx(0.2 * x / (1.0 + std::pow(x, 10.0)) - 0.1 * x).epsilon(1e-15));
    half.rhs(0.0, &x, &x, &out);
    CHECK(out == 0.2 * x / (1.0 + std::pow(x, 9.5)) - 0.1 * x);
    neg.rhs(0.0, &x, &x, &out);
    CHECK(out == 0.2 * x / (1.0 + std::pow(x, -2.0)) - 0.1 * x);
  }
}
