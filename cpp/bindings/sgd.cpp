// SGD-at-a-minimum Lyapunov exponents from a Gram matrix: many (η, B) configurations of one
// problem in parallel, configuration i drawing its batches from stream i.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <atomic>
#include <optional>
#include <vector>

#include "delyap/lyap/gram_product.hpp"
#include "dense_blocked.hpp"
#include "scipy_blas.hpp"
#include "gram_args.hpp"
#include "gram_row_update.hpp"
#include "host_thread_group.hpp"
#include "lyapunov_runner.hpp"

namespace py = pybind11;
using namespace delyap;
using delyap::bindings::DArray;
using delyap::bindings::require_shape;
using delyap::bindings::run_host_group;

namespace {

py::dict gram_lyapunov(const DArray& K, const std::optional<DArray>& basis,
                       const std::optional<DArray>& eigenvalues, int outputs, const DArray& lr,
                       const py::array_t<int, py::array::c_style>& batch, int sampling, int k,
                       Index steps, Index transient, int renorm_interval, uint64_t seed,
                       int n_blocks, Index n_running, int threads, int group_threads,
                       uint64_t stream_offset) {
  const bindings::GramArgs args(K, basis, eigenvalues, outputs, lr, batch, sampling, k);
  const Index n = args.n, n_samples = args.n_samples, C = lr.shape(0);
  const int dim = args.dim;
  const double *update_rows = args.update_rows, *gather_rows = args.gather_rows;
  bindings::LyapunovOutputs out(C, k, n_blocks, n_running);
  const Index n_total = (steps + renorm_interval - 1) / renorm_interval;
  std::atomic<bool> cancel{false};
  const bindings::HostDense dense = bindings::host_dense(dim);  // needs the GIL
  bindings::run_interruptible(cancel, [&]() {
    parallel_for(C, threads, cancel, [&](Index c) {
      const int B = batch.at(c);
      GramProblem p{update_rows, gather_rows, n, dim, outputs, lr.at(c), B,
                    Sampling(sampling), k, steps, transient, renorm_interval, seed,
                    stream_offset + uint64_t(c)};
      const Index batch_rows = Index(B) * outputs;
      std::vector<double> mem(GramScratch::doubles_for(dim, k, batch_rows));
      std::vector<uint32_t> words(GramScratch::words_for(n_samples, batch_rows));
      GramScratch s = GramScratch::carve(mem.data(), words.data(), dim, k, batch_rows, n_samples);
      LyapunovAccumulator acc = out.accumulator(c, n_total);
      auto is_cancelled = [&cancel]() { return cancel.load(std::memory_order_relaxed); };
      int status = 0;
      Status st;
      if (group_threads <= 0) {
        st = run_gram_product(SerialGroup{}, p, acc, s, &status, is_cancelled,
                              bindings::HostRowUpdate{}, dense);
      } else {  // test mode: the device's code path, on a group of host threads
        run_host_group(group_threads, [&](const bindings::HostThreadGroup& g) {
          const Status mine =
              run_gram_product(g, p, acc, s, &status, is_cancelled, PortableRowUpdate{});
          if (g.leader()) st = mine;
        });
      }
      out.finish(c, acc, st);
    });
  });
  return out.to_dict();
}

// Test hook: one application of the Gram row update, Q −= K[rows, :]ᵀ G, by the ISA-dispatched
// host kernel or by the portable one (the code the device runs; `parts` > 1 splits the entries
// the way a thread block does), on caller-owned arrays.
DArray gram_subtract_rows(const DArray& q, const DArray& K,
                          const py::array_t<uint32_t, py::array::c_style>& rows, const DArray& g,
                          bool portable, int parts) {
  require_shape(q, "q", {-1, -1});  // k × n (row j = direction j, i.e. column-major n × k)
  const int k = int(q.shape(0));
  const Index n = q.shape(1);
  require_shape(K, "K", {n, n});
  const Index m = rows.shape(0);
  require_shape(rows, "rows", {m});
  require_shape(g, "g", {m, k});
  for (Index r = 0; r < m; ++r)
    if (rows.at(r) >= n) throw py::value_error("rows: index out of range");
  DArray out(q.request());  // a copy
  std::copy(q.data(), q.data() + q.size(), out.mutable_data());
  if (parts < 1) throw py::value_error("parts: must be positive");
  if (portable)  // as `parts` device threads would split it: entries i = p, p + parts, …
    for (int p = 0; p < parts; ++p)
      PortableRowUpdate{}(out.mutable_data(), n, k, K.data(), rows.data(), g.data(), m, p, parts);
  else
    bindings::HostRowUpdate{}(out.mutable_data(), n, k, K.data(), rows.data(), g.data(), m);
  return out;
}

// Test hook: the reduced-coordinate gather out[r, j] = scale · U[rows[r], :] · q[j, :].
DArray gram_gather_rows(const DArray& U, const py::array_t<uint32_t, py::array::c_style>& rows,
                        const DArray& q, double scale, bool portable, int parts) {
  require_shape(q, "q", {-1, -1});  // k × n
  const int k = int(q.shape(0));
  const Index n = q.shape(1);
  require_shape(U, "U", {-1, n});
  const Index m = rows.shape(0);
  require_shape(rows, "rows", {m});
  for (Index r = 0; r < m; ++r)
    if (rows.at(r) >= U.shape(0)) throw py::value_error("rows: index out of range");
  if (parts < 1) throw py::value_error("parts: must be positive");
  DArray out(std::vector<py::ssize_t>{m, Index(k)});
  if (portable)
    for (int p = 0; p < parts; ++p)
      PortableRowUpdate{}.gather(U.data(), rows.data(), m, q.data(), n, k, scale,
                                 out.mutable_data(), p, parts);
  else
    bindings::HostRowUpdate{}.gather(U.data(), rows.data(), m, q.data(), n, k, scale,
                                     out.mutable_data());
  return out;
}

}  // namespace

void register_sgd(py::module_& m) {
  m.def("gram_lyapunov", &gram_lyapunov, py::arg("K"), py::arg("basis"), py::arg("eigenvalues"),
        py::arg("outputs"),
        py::arg("lr"), py::arg("batch"), py::arg("sampling"), py::arg("k"), py::arg("steps"),
        py::arg("transient"), py::arg("renorm_interval"), py::arg("seed"), py::arg("n_blocks"),
        py::arg("n_running"), py::arg("threads"), py::arg("group_threads") = 0,
        py::arg("stream_offset") = 0,
        "group_threads > 0 (tests): run each configuration as the GPU does — portable kernel, "
        "work split over a group of that many host threads with barriers. Configuration c "
        "draws from stream stream_offset + c (a Dask chunk passes its global offset).");
  py::module_ testing = m.def_submodule("_testing");  // test-only entry points (module.cpp)
  testing.def("gram_subtract_rows", &gram_subtract_rows, py::arg("q"), py::arg("K"),
              py::arg("rows"), py::arg("g"), py::arg("portable"), py::arg("parts") = 1);
  testing.def("gram_gather_rows", &gram_gather_rows, py::arg("U"), py::arg("rows"), py::arg("q"),
              py::arg("scale"), py::arg("portable"), py::arg("parts") = 1);
  m.def("gram_kernel_isa", &bindings::gram_kernel_isa,
        "Which build of the SGD Gram kernel runs on this CPU: 'x86-64-v3' (AVX2/FMA) or "
        "'portable'.");
}
