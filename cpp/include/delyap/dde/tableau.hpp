// Butcher tableaux as constexpr data (no global mutable state; usable on the device).
// Error weights e = b - b_hat include the FSAL stage where the pair uses it.
// Dense output: x(t + θh) = x + h Σ_j k_j Σ_m dense[j][m] θ^(m+1); methods without their own
// continuous extension (n_dense == 0) use the cubic Hermite interpolant of (x, f) at both ends.
#pragma once

#include "delyap/common/config.hpp"

namespace delyap {

constexpr int kMaxStages = 7;
constexpr int kMaxDense = 4;

struct Tableau {
  const char* name;
  int stages;
  int order;        // order of the propagated solution
  int error_order;  // order of the embedded estimate (0: fixed-step method)
  bool fsal;        // last stage is f(t + h, x_new)
  int n_dense;      // number of dense-output polynomial coefficients (0: Hermite)
  double c[kMaxStages];
  double a[kMaxStages][kMaxStages];
  double b[kMaxStages];
  double e[kMaxStages];
  double dense[kMaxStages][kMaxDense];

  DELYAP_HD constexpr bool adaptive() const { return error_order > 0; }
};

constexpr Tableau kEuler = {
    "Euler", 1, 1, 0, false, 0, {0.0}, {{0.0}}, {1.0}, {0.0}, {{0.0}}};

constexpr Tableau kRK4 = {"RK4",
                          4,
                          4,
                          0,
                          false,
                          0,
                          {0.0, 0.5, 0.5, 1.0},
                          {{0.0}, {0.5}, {0.0, 0.5}, {0.0, 0.0, 1.0}},
                          {1.0 / 6.0, 1.0 / 3.0, 1.0 / 3.0, 1.0 / 6.0},
                          {0.0},
                          {{0.0}}};

// Bogacki–Shampine 3(2), FSAL. e = b - b_hat with b_hat = (7/24, 1/4, 1/3, 1/8).
constexpr Tableau kBS3 = {"BS3",
                          4,
                          3,
                          2,
                          true,
                          0,
                          {0.0, 0.5, 0.75, 1.0},
                          {{0.0}, {0.5}, {0.0, 0.75}, {2.0 / 9.0, 1.0 / 3.0, 4.0 / 9.0}},
                          {2.0 / 9.0, 1.0 / 3.0, 4.0 / 9.0, 0.0},
                          {-5.0 / 72.0, 1.0 / 12.0, 1.0 / 9.0, -1.0 / 8.0},
                          {{0.0}}};

// Dormand–Prince 5(4), FSAL, with Shampine's 4th-order continuous extension (as in scipy's RK45).
constexpr Tableau kDP5 = {
    "DP5",
    7,
    5,
    4,
    true,
    4,
    {0.0, 1.0 / 5.0, 3.0 / 10.0, 4.0 / 5.0, 8.0 / 9.0, 1.0, 1.0},
    {{0.0},
     {1.0 / 5.0},
     {3.0 / 40.0, 9.0 / 40.0},
     {44.0 / 45.0, -56.0 / 15.0, 32.0 / 9.0},
     {19372.0 / 6561.0, -25360.0 / 2187.0, 64448.0 / 6561.0, -212.0 / 729.0},
     {9017.0 / 3168.0, -355.0 / 33.0, 46732.0 / 5247.0, 49.0 / 176.0, -5103.0 / 18656.0},
     {35.0 / 384.0, 0.0, 500.0 / 1113.0, 125.0 / 192.0, -2187.0 / 6784.0, 11.0 / 84.0}},
    {35.0 / 384.0, 0.0, 500.0 / 1113.0, 125.0 / 192.0, -2187.0 / 6784.0, 11.0 / 84.0, 0.0},
    {-71.0 / 57600.0, 0.0, 71.0 / 16695.0, -71.0 / 1920.0, 17253.0 / 339200.0, -22.0 / 525.0,
     1.0 / 40.0},
    {{1.0, -8048581381.0 / 2820520608.0, 8663915743.0 / 2820520608.0,
      -12715105075.0 / 11282082432.0},
     {0.0, 0.0, 0.0, 0.0},
     {0.0, 131558114200.0 / 32700410799.0, -68118460800.0 / 10900136933.0,
      87487479700.0 / 32700410799.0},
     {0.0, -1754552775.0 / 470086768.0, 14199869525.0 / 1410260304.0,
      -10690763975.0 / 1880347072.0},
     {0.0, 127303824393.0 / 49829197408.0, -318862633887.0 / 49829197408.0,
      701980252875.0 / 199316789632.0},
     {0.0, -282668133.0 / 205662961.0, 2019193451.0 / 616988883.0, -1453857185.0 / 822651844.0},
     {0.0, 40617522.0 / 29380423.0, -110615467.0 / 29380423.0, 69997945.0 / 29380423.0}}};

enum class Method : int { Euler = 0, RK4 = 1, BS3 = 2, DP5 = 3 };

#ifdef __CUDACC__
// Device copies in constant memory (a kernel cannot read host globals); `static` keeps one per
// translation unit, as CUDA's whole-program compilation wants.
static __constant__ Tableau kEulerDevice = kEuler;
static __constant__ Tableau kRK4Device = kRK4;
static __constant__ Tableau kBS3Device = kBS3;
static __constant__ Tableau kDP5Device = kDP5;
#endif

DELYAP_HD inline const Tableau& tableau_for(Method m) {
#ifdef __CUDA_ARCH__
  switch (m) {
    case Method::Euler: return kEulerDevice;
    case Method::RK4: return kRK4Device;
    case Method::BS3: return kBS3Device;
    default: return kDP5Device;
  }
#else
  switch (m) {
    case Method::Euler: return kEuler;
    case Method::RK4: return kRK4;
    case Method::BS3: return kBS3;
    default: return kDP5;
  }
#endif
}

}  // namespace delyap
