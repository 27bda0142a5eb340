// Output sinks for the driver, one of each for every storage and executor: dense output at
// requested times (host and device), or every accepted step (collected on the host; memory
// grows with the number of steps, by the user's choice).
#pragma once

#include <cmath>
#include <type_traits>
#include <utility>
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

// Executor memory to host memory: a copy for the host executors, a download for a device one.
namespace detail {
template <class Exec, class = void>
struct has_download : std::false_type {};
template <class Exec>
struct has_download<Exec, decltype((void)std::declval<const Exec&>().download(
                              (double*)nullptr, (const double*)nullptr, Index(0)))>
    : std::true_type {};
}  // namespace detail
template <class Exec>
DELYAP_HD void copy_to_host(const Exec& exec, double* host, const double* src, Index n) {
  if constexpr (detail::has_download<Exec>::value) {
    exec.download(host, src, n);
  } else {
    for (Index i = 0; i < n; ++i) host[i] = src[i];
  }
}

// Dense output at requested times, for any executor (common/exec.hpp): rows of the state or of
// selected components in the executor's memory (y), or the order parameter (r, ψ) computed
// there and written to y_host (host memory; null: y itself, as on the host executors).
template <class Exec = SerialExec>
struct EvalSinkT {
  const double* t_eval;  // host, sorted
  Index n_eval;
  double* y;  // n_eval × width, rows written in order as the solution passes them
  int dim;
  Reduction mode = Reduction::Full;
  const Index* components = nullptr;  // Components mode (executor memory)
  Index n_components = 0;
  double* scratch = nullptr;          // dim doubles for reduced modes (executor memory)
  double* y_host = nullptr;           // n_eval × 2 order-parameter rows, when not in y
  Exec exec = Exec{};
  Index next = 0;

  DELYAP_HD int width() const { return reduced_width(mode, dim, n_components); }

  // Row i of the output from a state.
  DELYAP_HD void write(const double* state, Index i) const {
    if (mode == Reduction::Components) {
      exec.for_each(n_components, GatherComponents{state, components, y + i * n_components});
    } else if (mode == Reduction::OrderParameter) {
      order_parameter(exec.sum(dim, CosOf{state}), exec.sum(dim, SinOf{state}), dim,
                      (y_host ? y_host : y) + 2 * i);
    } else if (mode == Reduction::PhasorCoherence) {  // interleaved (Re z, Im z) per node
      const Index n = dim / 2;
      order_parameter(exec.sum(n, UnitRe{state}), exec.sum(n, UnitIm{state}), n,
                      (y_host ? y_host : y) + 2 * i);
    } else {
      exec.for_each(dim, CopyElements{y + i * dim, state});
    }
  }

  DELYAP_HD void start(double t0, const double* x0) {
    for (; next < n_eval && t_eval[next] <= t0; ++next) write(x0, next);
  }
  template <class View>
  DELYAP_HD void step(const View& h, double, double t_new) {
    const Index last = h.size - 2;
    for (; next < n_eval && t_eval[next] <= t_new; ++next) {
      if (mode == Reduction::Full) {
        h.eval_interval(last, t_eval[next], y + next * dim);
      } else {
        h.eval_interval(last, t_eval[next], scratch);
        write(scratch, next);
      }
    }
  }
};
using EvalSink = EvalSinkT<SerialExec>;

// Every accepted step, copied to the host (the single-trajectory default without t_eval).
template <class Exec = SerialExec>
struct StepSinkT {
  std::vector<double> t, y;
  int dim;
  Exec exec;
  explicit StepSinkT(int d, Exec e = Exec{}) : dim(d), exec(e) {}
  void start(double t0, const double* x0) { record(t0, x0); }
  template <class View>
  void step(const View& h, double, double t_new) { record(t_new, h.state(h.size - 1)); }

 private:
  void record(double ti, const double* xi) {
    t.push_back(ti);
    y.resize(y.size() + size_t(dim));
    copy_to_host(exec, y.data() + y.size() - size_t(dim), xi, dim);
  }
};
using StepSink = StepSinkT<SerialExec>;

}  // namespace delyap
