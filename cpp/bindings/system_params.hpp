// A built-in system's parameter pack (dde/rhs/batches.hpp) from the numpy arrays Python passes:
// one generic rule for every scalar-parameter system (a list of 1-D arrays, each of length 1 =
// shared or batch = per trajectory, in the order of System::kParameters) and one for the
// linear system's matrices. The same validated pack serves the solve and Lyapunov entry points,
// the fixed-storage host mirror and, with device copies of the arrays, the CUDA kernels.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>  // the list of parameter arrays

#include <algorithm>
#include <string>
#include <vector>

#include "arrays.hpp"
#include "delyap/dde/rhs/batches.hpp"
#include "delyap/dde/rhs/linear.hpp"

namespace delyap::bindings {

using ParamArrays = std::vector<DArray>;

// How a pack is checked against, and built from, its arrays: check() validates the shapes and
// returns the batch size; make() builds the pack on `data` (the arrays' host pointers or their
// device copies, in the same order).
template <class Batch>
struct BatchArrays;

template <class System>
struct BatchArrays<ParamBatch<System>> {
  static constexpr int kParams = parameter_count<System>();

  static Index check(const ParamArrays& a, const std::string& name) {
    if (int(a.size()) != kParams)
      throw py::value_error(name + ": expected " + std::to_string(kParams) +
                            " parameter arrays, got " + std::to_string(a.size()));
    Index batch = 1;
    for (int i = 0; i < kParams; ++i) {
      require_shape(a[i], System::kParameters[i], {-1});
      if (a[i].shape(0) != 1) batch = std::max<Index>(batch, a[i].shape(0));
    }
    for (int i = 0; i < kParams; ++i)
      if (a[i].shape(0) != 1 && a[i].shape(0) != batch)
        throw py::value_error(std::string(System::kParameters[i]) + ": " +
                              std::to_string(a[i].shape(0)) + " values for a batch of " +
                              std::to_string(batch));
    return batch;
  }

  static ParamBatch<System> make(const ParamArrays& a, const double* const* data) {
    ParamBatch<System> p{};
    for (int i = 0; i < kParams; ++i) {
      p.p[i] = data[i];
      p.stride[i] = a[i].shape(0) == 1 ? 0 : 1;
    }
    return p;
  }
};

// x' = A x + Σ B_k x(t − τ_k): [A (1|batch, d, d), B (1|batch, nd, d, d), tau (1|batch, nd)].
template <>
struct BatchArrays<LinearBatch> {
  static Index check(const ParamArrays& a, const std::string& name) {
    if (a.size() != 3) throw py::value_error(name + ": expected the arrays [A, B, tau]");
    require_shape(a[0], "A", {-1, -1, -1});
    require_shape(a[2], "tau", {-1, -1});
    const int d = int(a[0].shape(1)), nd = int(a[2].shape(1));
    require_shape(a[0], "A", {-1, d, d});
    require_shape(a[1], "B", {-1, nd, d, d});
    Index batch = 1;
    for (const DArray& x : a)
      if (x.shape(0) != 1) batch = std::max<Index>(batch, x.shape(0));
    for (const DArray& x : a)
      if (x.shape(0) != 1 && x.shape(0) != batch)
        throw py::value_error("linear: parameter batch sizes do not match");
    if (batch == 0 || a[0].shape(0) == 0 || a[1].shape(0) == 0 || a[2].shape(0) == 0)
      throw py::value_error("linear: empty parameter batch");
    return batch;
  }

  static LinearBatch make(const ParamArrays& a, const double* const* data) {
    const int d = int(a[0].shape(1)), nd = int(a[2].shape(1));
    return LinearBatch{data[0],
                       data[1],
                       data[2],
                       a[0].shape(0) == 1 ? 0 : Index(d) * d,
                       a[1].shape(0) == 1 ? 0 : Index(nd) * d * d,
                       a[2].shape(0) == 1 ? 0 : Index(nd),
                       d,
                       nd};
  }
};

// A built-in system's validated host pack: what every _core entry point of the registry
// builds first. The arrays must outlive it (they are the Python call's arguments).
template <class System>
struct Builtin {
  using Batch = BatchOf<System>;
  Batch batch{};
  Index size = 0;
  int dim = 0, n_delays = 0;

  Builtin(const ParamArrays& a, const std::string& name)
      : size(BatchArrays<Batch>::check(a, name)) {
    batch = BatchArrays<Batch>::make(a, pointers(a).data());
    const System first = batch.at(0);
    dim = first.dim();
    n_delays = first.n_delays();
  }
  System at(Index b) const { return batch.at(b); }
  // at(b) for a trajectory index from Python (the single-point rhs/jacobian entry points).
  System checked_at(Index b) const {
    if (b < 0 || b >= size) throw py::index_error("index: trajectory out of range");
    return batch.at(b);
  }
  // The fixed-storage (device) solver's scratch is sized at compile time.
  void check_device_limits(const std::string& name) const {
    if (dim > Batch::kDim || n_delays > Batch::kDelays)
      throw py::value_error(name + ": the fixed-storage (device) solver supports dim <= " +
                            std::to_string(Batch::kDim) + " and n_delays <= " +
                            std::to_string(Batch::kDelays));
  }

  static std::vector<const double*> pointers(const ParamArrays& a) {
    std::vector<const double*> p;
    for (const DArray& x : a) p.push_back(x.data());
    return p;
  }
};

}  // namespace delyap::bindings
