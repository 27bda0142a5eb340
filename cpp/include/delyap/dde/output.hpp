// Output sinks for the driver: dense output at requested times (host and device), or every
// accepted step (host only; memory grows with the number of steps, by the user's choice).
#pragma once

#include <cmath>
#include <vector>

#include "delyap/common/exec.hpp"
#include "delyap/dde/history.hpp"

namespace delyap {

// What is written per output time: the full state, selected components, or an order
// parameter (r, ψ) — of the state read as phases θ_d (Kuramoto), or as interleaved
// (Re z_d, Im z_d) phasors reduced to their phases z_d/|z_d| (Stuart–Landau); the Python layer
// picks the one the system declares. Reductions keep memory at n_eval × width when the state
// is large.
enum class Reduction : int { Full = 0, Components = 1, OrderParameter = 2, PhasorCoherence = 3 };

DELYAP_HD inline int reduced_width(Reduction mode, int dim, Index n_components) {
  return mode == Reduction::Full ? dim
         : mode == Reduction::Components ? int(n_components)
                                         : 2;
}

// Output reductions as functors of the component index, so a device executor runs them too.
struct GatherComponents {
  const double* state;
  const Index* components;
  double* row;
  DELYAP_HD void operator()(Index c) const { row[c] = state[components[c]]; }
};
struct CosOf {
  const double* v;
  DELYAP_HD double operator()(Index d) const { return std::cos(v[d]); }
};
struct SinOf {
  const double* v;
  DELYAP_HD double operator()(Index d) const { return std::sin(v[d]); }
};
// Re and Im of the unit phasor z_d/|z_d| of node d (state interleaved Re, Im). A node at z = 0
// has no phase: it adds 0 (never NaN, which would read as a failed output).
struct UnitRe {
  const double* v;
  DELYAP_HD double operator()(Index d) const {
    const double a = std::hypot(v[2 * d], v[2 * d + 1]);
    return a > 0.0 ? v[2 * d] / a : 0.0;
  }
};
struct UnitIm {
  const double* v;
  DELYAP_HD double operator()(Index d) const {
    const double a = std::hypot(v[2 * d], v[2 * d + 1]);
    return a > 0.0 ? v[2 * d + 1] / a : 0.0;
  }
};
// (r, ψ) of the order parameter r e^{iψ} = (1/N) Σ_d e^{iφ_d} from the two sums.
DELYAP_HD inline void order_parameter(double cos_sum, double sin_sum, Index n, double* row) {
  const double re = cos_sum / double(n), im = sin_sum / double(n);
  row[0] = std::sqrt(re * re + im * im);
  row[1] = std::atan2(im, re);
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
    const SerialExec exec;
    if (mode == Reduction::Components) {
      exec.for_each(n_components, GatherComponents{state, components, row});
    } else if (mode == Reduction::OrderParameter) {
      order_parameter(exec.sum(dim, CosOf{state}), exec.sum(dim, SinOf{state}), dim, row);
    } else if (mode == Reduction::PhasorCoherence) {
      const Index n = dim / 2;
      order_parameter(exec.sum(n, UnitRe{state}), exec.sum(n, UnitIm{state}), n, row);
    } else {
      exec.for_each(dim, CopyElements{row, state});
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
