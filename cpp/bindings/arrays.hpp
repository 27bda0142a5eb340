// Shape checks for arrays arriving from Python. The Python layer already converts and
// validates user input with friendly messages; these guard the private API against misuse.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <initializer_list>
#include <string>

namespace delyap::bindings {

namespace py = pybind11;
using DArray = py::array_t<double, py::array::c_style>;

inline void require_shape(const py::array& a, const char* name,
                          std::initializer_list<py::ssize_t> shape) {
  bool ok = a.ndim() == py::ssize_t(shape.size());
  py::ssize_t i = 0;
  for (py::ssize_t s : shape) {
    if (!ok) break;
    if (s >= 0 && a.shape(i) != s) ok = false;
    ++i;
  }
  if (!ok) {
    std::string want = "(";
    for (py::ssize_t s : shape) want += (s >= 0 ? std::to_string(s) : std::string("*")) + ",";
    want += ")";
    std::string got = "(";
    for (py::ssize_t k = 0; k < a.ndim(); ++k) got += std::to_string(a.shape(k)) + ",";
    got += ")";
    throw py::value_error(std::string(name) + ": expected shape " + want + ", got " + got);
  }
}

// The initial function's Hermite anchors: times t (n ≥ 2), values x and derivatives f of shape
// (1 or batch, n, dim), and y0 of shape (1 or batch, dim).
inline void require_history(const DArray& t, const DArray& x, const DArray& f, const DArray& y0,
                            py::ssize_t batch, int dim) {
  const py::ssize_t n_hist = t.shape(0);
  require_shape(t, "history times", {-1});
  require_shape(x, "history values", {-1, n_hist, dim});
  require_shape(f, "history derivatives", {x.shape(0), n_hist, dim});
  require_shape(y0, "y0", {-1, dim});
  if (x.shape(0) != 1 && x.shape(0) != batch)
    throw py::value_error("history: leading dimension must be 1 or the batch size");
  if (y0.shape(0) != 1 && y0.shape(0) != batch)
    throw py::value_error("y0: leading dimension must be 1 or the batch size");
  if (n_hist < 2) throw py::value_error("history: need at least two anchors");
}

}  // namespace delyap::bindings
