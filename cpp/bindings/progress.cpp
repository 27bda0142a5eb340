// Progress reporting of long runs: the hook delyap._progress installs around a call (the
// counting and the calls to it happen in run_interruptible, interruptible.hpp).
#include <pybind11/pybind11.h>

#include "interruptible.hpp"

namespace py = pybind11;

void register_progress(py::module_& m) {
  m.def("_set_progress_callback", &delyap::bindings::set_progress_callback, py::arg("fn"),
        "Install fn(items_done) (or None) as this thread's progress callback for the runs it "
        "starts; returns the previous one. Private: use the progress= argument.");
  // What a single-trajectory solve counts to (thousandths of its time span).
  m.attr("PROGRESS_SPAN_UNITS") = py::int_(delyap::kSpanUnits);
}
