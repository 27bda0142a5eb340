// Validation shared by the CPU and GPU entry points of the SGD Gram product: K and its
// (optional) range basis, the configurations, and the rows the kernels read.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>  // std::optional arguments

#include <optional>
#include <vector>

#include "arrays.hpp"

namespace delyap::bindings {

struct GramArgs {
  Index n = 0;           // rows of K (N·c)
  Index n_samples = 0;   // N
  int dim = 0;           // direction length: n, or rank(K) in range coordinates
  int max_batch = 1;
  const double* update_rows = nullptr;  // K, or U Λ (n × rank, row-major)
  const double* gather_rows = nullptr;  // null, or U (n × rank, row-major)
  std::vector<double> scaled;           // storage of U Λ

  GramArgs(const DArray& K, const std::optional<DArray>& basis,
           const std::optional<DArray>& eigenvalues, int outputs, const DArray& lr,
           const py::array_t<int, py::array::c_style>& batch, int sampling, int k) {
    require_shape(K, "K", {-1, -1});
    n = K.shape(0);
    require_shape(K, "K", {n, n});
    if (outputs < 1 || n % outputs != 0) throw py::value_error("outputs: must divide K's size");
    n_samples = n / outputs;
    const Index C = lr.shape(0);
    require_shape(lr, "lr", {C});
    require_shape(batch, "batch_size", {C});
    if (C <= 0) throw py::value_error("lr: no configurations");
    if (sampling < 0 || sampling > 2) throw py::value_error("sampling: unknown mode");
    if (basis.has_value() != eigenvalues.has_value())
      throw py::value_error("basis, eigenvalues: give both or neither");
    dim = int(n);
    update_rows = K.data();
    if (basis) {
      require_shape(*basis, "basis", {n, -1});
      dim = int(basis->shape(1));
      require_shape(*eigenvalues, "eigenvalues", {Index(dim)});
      scaled.resize(size_t(n) * dim);
      for (Index i = 0; i < n; ++i)
        for (int a = 0; a < dim; ++a) scaled[i * dim + a] = basis->at(i, a) * eigenvalues->at(a);
      update_rows = scaled.data();
      gather_rows = basis->data();
    }
    if (k < 1 || k > dim) throw py::value_error("n_exponents: must be between 1 and rank(K)");
    for (Index c = 0; c < C; ++c) {
      const int B = batch.at(c);
      if (B < 1 || B > n_samples) throw py::value_error("batch_size: must be in [1, N]");
      if (B > max_batch) max_batch = B;
    }
  }
};

}  // namespace delyap::bindings
