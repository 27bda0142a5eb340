// Accumulates log|R_jj| from successive re-orthonormalisations into Lyapunov exponents with
// standard errors by batch means: the post-transient record is cut into n_blocks contiguous
// blocks (consecutive increments are correlated, block means much less so), and
// stderr = sd(block estimates)/√n_blocks. Also records the running estimate for plots.
#pragma once

#include <cmath>

#include "delyap/common/config.hpp"

namespace delyap {

struct LyapunovAccumulator {
  int k;            // exponents
  Index n_total;    // increments expected after the transient
  int n_blocks;
  double* block_sum;   // n_blocks × k
  double* block_time;  // n_blocks
  double* sum;         // k
  double time = 0.0;
  Index n_running;     // running-estimate checkpoints
  double* running;     // n_running × k
  double* running_t;   // n_running (elapsed time since the transient)
  Index count = 0;
  Index recorded = 0;

  DELYAP_HD void reset() {
    for (int b = 0; b < n_blocks; ++b) {
      block_time[b] = 0.0;
      for (int j = 0; j < k; ++j) block_sum[b * k + j] = 0.0;
    }
    for (int j = 0; j < k; ++j) sum[j] = 0.0;
    time = 0.0;
    count = 0;
    recorded = 0;
  }

  DELYAP_HD void add(const double* logs, double dt) {
    const Index b = n_total > 0 ? (count * n_blocks) / n_total : 0;
    const int blk = int(b < n_blocks ? b : n_blocks - 1);
    for (int j = 0; j < k; ++j) {
      block_sum[blk * k + j] += logs[j];
      sum[j] += logs[j];
    }
    block_time[blk] += dt;
    time += dt;
    ++count;
    // Checkpoints are spaced geometrically (for convergence plots on a log axis): checkpoint r
    // is due once count ≥ n_total^((r + 1) / n_running).
    while (recorded < n_running && double(count) >= checkpoint(recorded)) {
      for (int j = 0; j < k; ++j) running[recorded * k + j] = time > 0 ? sum[j] / time : 0.0;
      running_t[recorded] = time;
      ++recorded;
    }
  }

  DELYAP_HD double checkpoint(Index r) const {
    if (r + 1 >= n_running) return double(n_total);
    return std::ceil(std::pow(double(n_total), double(r + 1) / double(n_running)) - 1e-9);
  }

  // exponents (k) and standard errors (k).
  DELYAP_HD void finish(double* exponents, double* stderr_out) const {
    for (int j = 0; j < k; ++j) {
      exponents[j] = time > 0 ? sum[j] / time : NAN;
      double m = 0.0, m2 = 0.0;
      int used = 0;
      for (int b = 0; b < n_blocks; ++b) {
        if (!(block_time[b] > 0)) continue;
        const double e = block_sum[b * k + j] / block_time[b];
        ++used;
        const double delta = e - m;
        m += delta / used;
        m2 += delta * (e - m);
      }
      stderr_out[j] = used > 1 ? std::sqrt(m2 / (used - 1) / used) : NAN;
    }
  }
};

}  // namespace delyap
