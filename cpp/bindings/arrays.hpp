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

}  // namespace delyap::bindings
