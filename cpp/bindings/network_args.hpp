// The sparse digraph and node data of a delay-coupled network as they arrive from Python, with
// their validation; shared by the CPU and GPU entry points.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <optional>

#include "arrays.hpp"
#include "delyap/dde/output.hpp"
#include "delyap/dde/rhs/network.hpp"

namespace delyap::bindings {

using IndexArray = py::array_t<Index, py::array::c_style>;
using IntArray = py::array_t<int, py::array::c_style>;
using ClassArray = py::array_t<unsigned char, py::array::c_style>;

struct NetworkArgs {
  IndexArray indptr;
  IntArray indices;
  DArray weights;
  std::optional<ClassArray> klass;
  DArray tau;        // distinct delays (n_classes,)
  DArray omega;      // (N,)
  DArray inv_norm;   // (N,)
  DArray coupling;   // (batch,)
  double alpha = 0.0;  // Kuramoto's Sakaguchi phase lag (Stuart–Landau has none)

  int n() const { return int(indptr.shape(0)) - 1; }
  CsrGraph graph() const {
    return CsrGraph{indptr.data(), indices.data(), weights.data(),
                    klass ? klass->data() : nullptr, n()};
  }
  void check() const {
    const int N = n();
    if (N < 1) throw py::value_error("adjacency: no nodes");
    const Index E = indices.shape(0);
    require_shape(weights, "adjacency weights", {E});
    if (klass) require_shape(*klass, "edge delay classes", {E});
    require_shape(omega, "omega", {N});
    require_shape(inv_norm, "normalisation", {N});
    require_shape(tau, "tau", {-1});
    require_shape(coupling, "coupling", {-1});
    if (!std::isfinite(alpha)) throw py::value_error("alpha: must be finite");
    if (indptr.at(0) != 0 || indptr.at(N) != E)
      throw py::value_error("adjacency: indptr does not match the edge count");
    for (int i = 0; i < N; ++i)
      if (indptr.at(i + 1) < indptr.at(i)) throw py::value_error("adjacency: indptr decreases");
    for (Index e = 0; e < E; ++e) {
      if (indices.at(e) < 0 || indices.at(e) >= N)
        throw py::value_error("adjacency: column index out of range");
      if (klass && klass->at(e) >= tau.shape(0))
        throw py::value_error("edge delay classes: class index out of range");
    }
  }
};

}  // namespace delyap::bindings
