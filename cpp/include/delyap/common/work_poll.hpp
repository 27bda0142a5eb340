// The one rule for how often long-running code looks at its cancel flag (Ctrl-C): by work done,
// not by step count. One step of a random-matrix product costs 10 flops at d = 2 and 10^10 at
// d = 1500, so "every 1024 steps" is either far too often (a GPU reading host-mapped memory
// across the bus) or minutes too late. Code charges each piece of work its flop estimate and
// the flag is read once per kPollFlops (or kPollCharges small charges); operations larger than
// that are cut into chunks of poll_chunk() units, each charged as it completes.
#pragma once

#include "delyap/common/config.hpp"

namespace delyap {

// ≈ 6.7e7 flops between reads of the flag: ≤ 0.1 s for plain scalar code (≥ 0.7 GFlop/s),
// a few ms for blocked BLAS-3 code, so a stop request is seen well within 1 s; and a read is
// ≥ 10^7 flops apart, so even a microsecond-long read (host-mapped memory) costs nothing.
constexpr double kPollFlops = double(1 << 26);
// Tiny pieces of work cost more than their flops (a thread block's barriers, sampling, loop
// overhead: a GPU block's SGD step of 500 flops takes microseconds), so each charge counts at
// least this much: the flag is read at least every kPollCharges charges, whatever their size.
constexpr double kPollCharges = 256.0;

// Blocked, vectorised kernels (GEMM, blocked QR) run ≥ 8× faster than the scalar code the
// budget is sized for: they charge chunks of kBlockedSpeedup budgets (as short in wall time),
// wide enough that re-packing a large matrix per chunk stays negligible.
constexpr double kBlockedSpeedup = 8.0;

// How many units of `flops_per_unit` each fit between two reads of the flag (at least 1), for
// code that runs `speedup` times faster than plain scalar loops.
DELYAP_HD inline Index poll_chunk(double flops_per_unit, double speedup = 1.0) {
  const double n = speedup * kPollFlops / (flops_per_unit > 1.0 ? flops_per_unit : 1.0);
  return n >= 1.0 ? Index(n) : Index(1);
}

// Wraps a `cancelled()` callable (an atomic load on the host, a host-mapped flag on the device).
// charge(flops) returns true once the run must stop. The first call reads the flag, so a run
// that was cancelled before it started does no work.
template <class Cancel>
class WorkPoll {
 public:
  DELYAP_HD explicit WorkPoll(const Cancel& cancelled) : cancelled_(cancelled) {}
  DELYAP_HD bool charge(double flops) {
    owed_ += flops > kPollFlops / kPollCharges ? flops : kPollFlops / kPollCharges;
    if (owed_ < kPollFlops) return false;
    owed_ = 0.0;
    stopped_ = stopped_ || cancelled_();
    return stopped_;
  }
  DELYAP_HD bool operator()(double flops) { return charge(flops); }
  DELYAP_HD bool stopped() const { return stopped_; }

 private:
  const Cancel& cancelled_;
  double owed_ = kPollFlops;
  bool stopped_ = false;
};

// A WorkPoll behind a plain function pointer, for kernels compiled once per ISA level and
// called through a dispatch table (a template cannot cross that boundary).
struct PollRef {
  void* self;
  bool (*fn)(void*, double);
  bool operator()(double flops) const { return fn(self, flops); }

  template <class Poll>
  static PollRef of(Poll& poll) {
    return PollRef{&poll, [](void* p, double f) { return static_cast<Poll*>(p)->charge(f); }};
  }
};

}  // namespace delyap
