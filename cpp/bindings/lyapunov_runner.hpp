// Shared plumbing for Lyapunov entry points: accumulator storage per problem, result dicts.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <atomic>
#include <cmath>

#include "arrays.hpp"
#include "delyap/lyap/dde_spectrum.hpp"
#include "delyap/lyap/statistics.hpp"
#include "interruptible.hpp"

namespace delyap::bindings {

// Numpy-backed storage for a batch of accumulators plus the result arrays.
struct LyapunovOutputs {
  Index batch;
  int k, n_blocks;
  Index n_running;
  py::array_t<double> exponents, stderr_, running, running_t, block_sum, block_time, sums;
  py::array_t<int> status;

  LyapunovOutputs(Index b, int k_, int nb, Index nr)
      : batch(b), k(k_), n_blocks(nb), n_running(nr),
        exponents({b, Index(k_)}), stderr_({b, Index(k_)}), running({b, nr, Index(k_)}),
        running_t({b, nr}), block_sum({b, Index(nb), Index(k_)}), block_time({b, Index(nb)}),
        sums({b, Index(k_)}), status(b) {
    std::fill(running.mutable_data(), running.mutable_data() + running.size(), NAN);
    std::fill(running_t.mutable_data(), running_t.mutable_data() + running_t.size(), NAN);
    for (Index i = 0; i < b; ++i) status.mutable_at(i) = int(Status::NotRun);
  }

  LyapunovAccumulator accumulator(Index i, Index n_total) {
    return LyapunovAccumulator{k,
                               n_total,
                               n_blocks,
                               block_sum.mutable_data() + i * n_blocks * k,
                               block_time.mutable_data() + i * n_blocks,
                               sums.mutable_data() + i * k,
                               0.0,
                               n_running,
                               running.mutable_data() + i * n_running * k,
                               running_t.mutable_data() + i * n_running};
  }

  void finish(Index i, const LyapunovAccumulator& acc, Status st) {
    acc.finish(exponents.mutable_data() + i * k, stderr_.mutable_data() + i * k);
    status.mutable_at(i) = int(st);
  }

  py::dict to_dict() const {
    py::dict d;
    d["exponents"] = exponents;
    d["stderr"] = stderr_;
    d["running"] = running;
    d["running_t"] = running_t;
    d["block_sum"] = block_sum;
    d["block_time"] = block_time;
    d["status"] = status;
    return d;
  }
};

// The checked problem of a DDE spectrum (the arguments every lyapunov_* entry point takes).
inline DdeLyapunovProblem dde_lyapunov_problem(double t0, double t_transient, double t_total,
                                               double renorm, int k, int anchors_needed) {
  if (!(t_total > 0)) throw py::value_error("t_total: must be positive");
  if (!(t_transient >= 0)) throw py::value_error("t_transient: must be non-negative");
  if (k < 1) throw py::value_error("n_exponents: must be at least 1");
  if (anchors_needed < 2) throw py::value_error("anchors_needed: must be at least 2");
  return DdeLyapunovProblem{t0, t_transient, t_total, renorm, k, anchors_needed};
}

// qr: the re-orthonormalisation's QR (lyap/tangent.hpp's PortableTangentQr contract).
template <class MakeSystem, class Qr = PortableTangentQr>
py::dict run_dde_lyapunov(Index batch, int dim, const MakeSystem& make_system,
                          const SolverOptions& opt, const DArray& ht, const DArray& hx,
                          const DArray& hf, const DArray& y0, const DdeLyapunovProblem& lp,
                          int n_blocks, Index n_running, int threads, const Qr& qr = Qr{}) {
  if (batch <= 0) throw py::value_error("batch: no trajectories");
  const int Da = dim * (1 + lp.k);
  require_history(ht, hx, hf, y0, batch, Da);
  const Index n_hist = ht.shape(0);
  InitialHistory hist{ht.data(), n_hist, hx.data(), hf.data(),
                      hx.shape(0) == 1 ? 0 : n_hist * Da};
  const Index y0_stride = y0.shape(0) == 1 ? 0 : Da;

  LyapunovOutputs out(batch, lp.k, n_blocks, n_running);
  py::array_t<double> vectors({batch, Index(lp.k), Index(dim)});
  py::array_t<Index> stats({batch, Index(kStatFields)});
  double* vec = vectors.mutable_data();
  Index* st_out = stats.mutable_data();
  std::atomic<bool> cancel{false};
  run_interruptible(cancel, [&]() {
    // A single spectrum also reports how far in time it has come (as a single solve does).
    std::atomic<Index>* const span = batch == 1 ? progress_counter() : nullptr;
    parallel_for(batch, threads, cancel, [&](Index b) {
      const auto sys = make_system(b);
      LyapunovAccumulator acc = out.accumulator(b, lp.renorm_count(max_delay_of(sys)));
      SolveStats s;
      const Status st = dde_lyapunov(sys, opt, hist, b, y0.data() + b * y0_stride, lp, acc,
                                     vec + b * lp.k * dim, s, cancel, qr, span);
      out.finish(b, acc, st);
      write_stats(s, st_out + b * kStatFields);
    });
  });
  py::dict d = out.to_dict();
  d["vectors"] = vectors;
  d["stats"] = stats;
  return d;
}

}  // namespace delyap::bindings
