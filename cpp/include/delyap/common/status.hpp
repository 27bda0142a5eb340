// Per-trajectory outcome codes. The core never throws across a trajectory: it returns one of
// these, so one failing member of an ensemble cannot sink the others.
#pragma once

#include "delyap/common/config.hpp"

namespace delyap {

enum class Status : int {
  Success = 0,
  MaxSteps = 1,           // max_steps accepted+rejected steps used before t_final
  StepUnderflow = 2,      // the controller asked for a step below min_step
  NonFinite = 3,          // the state became NaN/inf and shrinking the step did not help
  RhsError = 4,           // a user right-hand side reported failure (e.g. raised in Python)
  DelayOutOfRange = 5,    // a delayed time fell outside the stored history window
  Cancelled = 6,          // stopped from outside (Ctrl-C or an error elsewhere)
  HistoryFull = 7,        // fixed-capacity history buffer (device builds) overflowed
  NotRun = 8,             // never started (e.g. cancelled before its turn)
  Unsupported = 9,        // a feature the fixed-storage (device) solver lacks, e.g. lags
                          // that depend on the state, or too many discontinuity points
  TimeResolution = 10,    // t + h rounds to t: the span is too short for the precision of t
                          // (|t| too large for the steps or output times asked for)
  LostDirection = 11,     // Lyapunov QR: a tangent direction collapsed onto the others (its
                          // orthogonal part < kWindowKept of its size) within one window, so
                          // its exponent is rounding noise or −∞ (lyap/qr_window.hpp)
  kLast = LostDirection,
};

DELYAP_HD inline const char* status_name(Status s) {
  switch (s) {
    case Status::Success: return "success";
    case Status::MaxSteps: return "max_steps";
    case Status::StepUnderflow: return "step_underflow";
    case Status::NonFinite: return "non_finite";
    case Status::RhsError: return "rhs_error";
    case Status::DelayOutOfRange: return "delay_out_of_range";
    case Status::Cancelled: return "cancelled";
    case Status::HistoryFull: return "history_full";
    case Status::NotRun: return "not_run";
    case Status::Unsupported: return "unsupported";
    case Status::TimeResolution: return "time_resolution";
    case Status::LostDirection: return "lost_direction";
  }
  return "unknown";
}

}  // namespace delyap
