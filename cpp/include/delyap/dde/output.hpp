// Output sinks for the driver: dense output at requested times (host and device), or every
// accepted step (host only; memory grows with the number of steps, by the user's choice).
#pragma once

#include <vector>

#include "delyap/dde/history.hpp"

namespace delyap {

struct EvalSink {
  const double* t_eval;
  Index n_eval;
  double* y;  // n_eval × dim, rows written in order as the solution passes them
  int dim;
  Index next = 0;

  DELYAP_HD void start(double t0, const double* x0) {
    while (next < n_eval && t_eval[next] <= t0) {
      for (int d = 0; d < dim; ++d) y[next * dim + d] = x0[d];
      ++next;
    }
  }
  DELYAP_HD void step(const HistoryView& h, double, double t_new) {
    const Index last = h.size - 2;
    while (next < n_eval && t_eval[next] <= t_new) {
      h.eval_interval(last, t_eval[next], y + next * dim);
      ++next;
    }
  }
};

struct StepSink {
  std::vector<double> t, y;
  int dim;
  explicit StepSink(int d) : dim(d) {}
  void start(double t0, const double* x0) { record(t0, x0); }
  void step(const HistoryView& h, double, double t_new) { record(t_new, h.state(h.size - 1)); }

 private:
  void record(double ti, const double* xi) {
    t.push_back(ti);
    y.insert(y.end(), xi, xi + dim);
  }
};

}  // namespace delyap
