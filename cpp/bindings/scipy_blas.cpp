#include "scipy_blas.hpp"

#include <pybind11/pybind11.h>

#include <mutex>
#include <string>
#if defined(__unix__) || defined(__APPLE__)
#include <dlfcn.h>
#endif

#include "delyap/lyap/blocked_linalg.hpp"

namespace py = pybind11;

namespace delyap::bindings {

namespace {

// The C function pointer in `module`.__pyx_capi__[name], or null unless its prototype (the
// capsule's name) is `prototype` once Cython's typedef of double (…_cython_blas_d) reads double.
void* capsule_pointer(const char* module, const char* name, const char* prototype) {
  py::object capsule = py::module_::import(module).attr("__pyx_capi__")[py::str(name)];
  if (!PyCapsule_CheckExact(capsule.ptr())) return nullptr;
  const char* cname = PyCapsule_GetName(capsule.ptr());
  if (cname == nullptr) {
    PyErr_Clear();
    return nullptr;
  }
  const std::string normalised =
      py::str(py::module_::import("re").attr("sub")(R"(\b__pyx_t_\w+_d\b)", "double", cname));
  if (normalised != prototype) return nullptr;
  void* p = PyCapsule_GetPointer(capsule.ptr(), cname);
  if (p == nullptr) PyErr_Clear();
  return p;
}

const FortranLapack* load() {
  static FortranLapack f;
  try {
    f.dgemm = reinterpret_cast<decltype(f.dgemm)>(capsule_pointer(
        "scipy.linalg.cython_blas", "dgemm",
        "void (char *, char *, int *, int *, int *, double *, double *, int *, double *, "
        "int *, double *, double *, int *)"));
    f.dgeqrf = reinterpret_cast<decltype(f.dgeqrf)>(capsule_pointer(
        "scipy.linalg.cython_lapack", "dgeqrf",
        "void (int *, int *, double *, int *, double *, double *, int *, int *)"));
    f.dorgqr = reinterpret_cast<decltype(f.dorgqr)>(capsule_pointer(
        "scipy.linalg.cython_lapack", "dorgqr",
        "void (int *, int *, int *, double *, int *, double *, double *, int *, int *)"));
  } catch (const py::error_already_set& e) {
    // No scipy, or no such export: Eigen it is, for good. Anything else, above all a Ctrl-C
    // that lands during the (slow) first import, propagates: swallowing it here would lose
    // the interrupt and switch scipy off for the rest of the process; the lookup is retried.
    if (e.matches(PyExc_ImportError) || e.matches(PyExc_AttributeError) ||
        e.matches(PyExc_KeyError))
      return nullptr;
    throw;
  }
  return f.dgemm && f.dgeqrf && f.dorgqr ? &f : nullptr;
}

// OpenBLAS's thread-count functions in the library that exports `dgemm` (scipy's bundled
// OpenBLAS names them with a scipy_ prefix and, for 64-bit integers, a 64_ suffix: the names
// threadpoolctl tries), or nulls.
struct BlasThreadFns {
  int (*get)() = nullptr;
  void (*set)(int) = nullptr;
};

BlasThreadFns find_thread_fns(void* dgemm) {
  BlasThreadFns fns;
#if defined(__unix__) || defined(__APPLE__)
  Dl_info info;
  if (!dgemm || !dladdr(dgemm, &info) || !info.dli_fname) return fns;
  void* lib = dlopen(info.dli_fname, RTLD_LAZY | RTLD_NOLOAD);  // already loaded: a handle
  if (!lib) return fns;
  for (const char* prefix : {"scipy_", ""})
    for (const char* suffix : {"", "64_", "_64"}) {
      const std::string get = std::string(prefix) + "openblas_get_num_threads" + suffix;
      const std::string set = std::string(prefix) + "openblas_set_num_threads" + suffix;
      void* g = dlsym(lib, get.c_str());
      void* s = dlsym(lib, set.c_str());
      if (g && s) {
        fns.get = reinterpret_cast<int (*)()>(g);
        fns.set = reinterpret_cast<void (*)(int)>(s);
        return fns;  // the handle stays open: the library stays loaded anyway
      }
    }
  dlclose(lib);
#else
  (void)dgemm;
#endif
  return fns;
}

std::mutex pin_mutex;
int pin_users = 0, pin_saved = 1;

const BlasThreadFns& thread_fns() {
  static const BlasThreadFns fns = [] {
    const FortranLapack* f = scipy_lapack();
    return find_thread_fns(f ? reinterpret_cast<void*>(f->dgemm) : nullptr);
  }();
  return fns;
}

}  // namespace

SingleThreadedBlas::SingleThreadedBlas(bool active) : active_(active && thread_fns().set) {
  if (!active_) return;
  const BlasThreadFns& fns = thread_fns();
  std::lock_guard<std::mutex> lock(pin_mutex);
  if (pin_users++ == 0) {
    pin_saved = fns.get();
    if (pin_saved != 1) fns.set(1);
  }
}

SingleThreadedBlas::~SingleThreadedBlas() {
  if (!active_) return;
  const BlasThreadFns& fns = thread_fns();
  std::lock_guard<std::mutex> lock(pin_mutex);
  if (--pin_users == 0 && pin_saved != 1) fns.set(pin_saved);
}

const FortranLapack* scipy_lapack() {
  // Once: a lookup that found no scipy is not retried (one that raised, e.g. on Ctrl-C, is:
  // a static whose initialiser throws is initialised again on the next call).
  static const FortranLapack* f = load();
  return f;
}

HostDense host_dense(int d) {
  return HostDense{d >= kBlockedMultiplyMinDim ? scipy_lapack() : nullptr};
}

}  // namespace delyap::bindings
