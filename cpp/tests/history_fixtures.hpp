// Histories shared by the C++ history tests.
#pragma once

#include "delyap/dde/history_buffer.hpp"

namespace delyap::testing {

// History 1 on [-2, 0] (anchors -2, -1, 0), then a jump at t0 = 0 to y0 = 3 with slope 0.5
// on [0, 1]: anchors -2, -1, 0, 0, 1.
inline void load_jump(HistoryBuffer& buf) {
  HistoryView& v = buf.view();
  const double one = 1.0, zero = 0.0, c0[3] = {0.0, 0.0, 0.0};
  v.push_anchor(-2.0, &one, &zero);
  v.push_interval(c0, -1.0, &one, &zero);
  v.push_interval(c0, 0.0, &one, &zero);
  const double y0 = 3.0, f0 = 0.5, y1 = 3.5;
  v.push_anchor(0.0, &y0, &f0);
  double c[3];
  hermite_coefficients(&y0, &f0, &y1, &f0, 1.0, 1, 3, c);
  v.push_interval(c, 1.0, &y1, &f0);
}

}  // namespace delyap::testing
