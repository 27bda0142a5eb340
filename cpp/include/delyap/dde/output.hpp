// Output sinks for the driver: dense output at requested times (host and device), or every
// accepted step (host only; memory grows with the number of steps, by the user's choice).
#pragma once

#include <cmath>
#include <vector>

#include "delyap/dde/history.hpp"

namespace delyap {

// What is written per output time: the full state, selected components, or the Kuramoto
// order parameter (r, ψ) of the state read as phases — reductions keep memory at
// n_eval × width when the state is large.
enum class Reduction : int { Full = 0, Components = 1, OrderParameter = 2 };

DELYAP_HD inline int reduced_width(Reduction mode, int dim, Index n_components) {
  return mode == Reduction::Full ? dim
         : mode == Reduction::Components ? int(n_components)
                                         : 2;
}

struct EvalSink {
  const double* t_eval;
  Index n_eval;
  double* y;  // n_eval × width, rows written in order as the solution passes them
  int dim;
  Reduction mode = Reduction::Full;
  const Index* components = nullptr;  // Components mode
  Index n_components = 0;
  double* scratch = nullptr;          // dim doubles for reduced modes
  Index next = 0;

  DELYAP_HD int width() const { return reduced_width(mode, dim, n_components); }

  DELYAP_HD void write(const double* state, double* row) const {
    if (mode == Reduction::Components) {
      for (Index c = 0; c < n_components; ++c) row[c] = state[components[c]];
    } else if (mode == Reduction::OrderParameter) {
      double re = 0.0, im = 0.0;
      for (int d = 0; d < dim; ++d) {
        re += std::cos(state[d]);
        im += std::sin(state[d]);
      }
      re /= dim;
      im /= dim;
      row[0] = std::sqrt(re * re + im * im);
      row[1] = std::atan2(im, re);
    } else {
      for (int d = 0; d < dim; ++d) row[d] = state[d];
    }
  }

  DELYAP_HD void start(double t0, const double* x0) {
    while (next < n_eval && t_eval[next] <= t0) {
      write(x0, y + next * width());
      ++next;
    }
  }
  template <class View>
  DELYAP_HD void step(const View& h, double, double t_new) {
    const Index last = h.size - 2;
    while (next < n_eval && t_eval[next] <= t_new) {
      if (mode == Reduction::Full) {
        h.eval_interval(last, t_eval[next], y + next * dim);
      } else {
        h.eval_interval(last, t_eval[next], scratch);
        write(scratch, y + next * width());
      }
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
