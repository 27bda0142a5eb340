// The registry of built-in systems: one line per system. Each line X(System, name) makes, in
// delyap._core, solve_<name>, lyapunov_<name>, <name>_rhs, <name>_jacobian and the host mirror
// solve_fixed_<name> (dde_systems.cpp, lyapunov.cpp, fixed_solve.cpp), and in the CUDA module
// solve_fixed_<name> (cuda/dde_ensemble.cu). The system itself is declared once, in its header
// (dde/rhs/*.hpp: parameters, rhs, Jacobian, delays, device limits; see batches.hpp).
#pragma once

#include "delyap/dde/rhs/delayed_logistic.hpp"
#include "delyap/dde/rhs/linear.hpp"
#include "delyap/dde/rhs/mackey_glass.hpp"

#define DELYAP_BUILTIN_SYSTEMS(X)      \
  X(MackeyGlass, mackey_glass)         \
  X(LinearDde, linear)                 \
  X(DelayedLogistic, delayed_logistic)
