// History of one large trajectory whose state lives where an executor runs (device memory for
// a GPU trajectory, common/exec.hpp): the anchor times stay on the host, where the driver's
// step control and the interval search read them; states, derivatives and interval
// coefficients live in the executor's memory, one slot of dim contiguous doubles each, so
// thread d of a read touches component d of every row (coalesced). Same ring and same
// polynomial form as HistoryView (history.hpp); every per-component loop runs on the executor.
#pragma once

#include <vector>

#include "delyap/dde/history.hpp"
#include "delyap/dde/step_kernels.hpp"

namespace delyap {

template <class Exec>
struct VectorHistoryView : HistoryRing<ContiguousLayout> {
  Exec exec;
  double* x = nullptr;     // executor memory [cap * dim]
  double* f = nullptr;     // [cap * dim]
  double* coef = nullptr;  // [cap * n_coef * dim]
  int dim = 0;
  int n_coef = 3;

  const double* state(Index i) const { return x + slot(i) * dim; }
  const double* deriv(Index i) const { return f + slot(i) * dim; }
  const double* coefficients(Index i) const { return coef + slot(i) * n_coef * dim; }

  // xi, fi, c: executor memory.
  void push_anchor(double ti, const double* xi, const double* fi) {
    const Index s = slot(size);
    t[s] = ti;
    exec.for_each(dim, CopyElements{x + s * dim, xi});
    exec.for_each(dim, CopyElements{f + s * dim, fi});
    ++size;
  }
  void push_interval(const double* c, double t1, const double* x1, const double* f1) {
    exec.for_each(Index(n_coef) * dim, CopyElements{coef + slot(size - 1) * n_coef * dim, c});
    push_anchor(t1, x1, f1);
  }

  void eval_interval(Index i, double s, double* out) const {  // as HistoryViewT's
    const double h = time(i + 1) - time(i);
    if (!(h > 0.0) || s == time(i + 1)) {
      exec.for_each(dim, CopyElements{out, state(i + 1)});
      return;
    }
    exec.for_each(dim, PolynomialRead{state(i), coefficients(i), n_coef, dim, h,
                                      (s - time(i)) / h, out});
  }

  // x(s) for s in the window; false when s is older than the window. Neutral equations (which
  // read x'(s)) are not solved this way: a derivative request is refused.
  bool eval(double s, double* out, double* derivative = nullptr, bool left = false,
            Index* cursor = nullptr) const {
    if (derivative) return false;
    Index i = 0;
    const Read where = locate(&s, &i, left, cursor);
    if (where == Read::TooOld) return false;
    if (where == Read::PastEnd) {
      exec.for_each(dim, LinearExtrapolation{state(size - 1), deriv(size - 1), s - last_time(),
                                             out});
      return true;
    }
    eval_interval(i, s, out);
    return true;
  }
};

// Owner of a VectorHistoryView: grows by doubling (order preserved) as HistoryBuffer does, so
// memory stays bounded by the most anchors one delay window ever held.
template <class Exec>
class VectorHistoryBuffer {
 public:
  using View = VectorHistoryView<Exec>;
  using Array = typename Exec::template Array<double>;

  VectorHistoryBuffer(Exec exec, int dim, int n_coef, Index initial_capacity = 64) {
    view_.exec = exec;
    view_.dim = dim;
    view_.n_coef = n_coef;
    Index cap = 4;
    while (cap < initial_capacity) cap <<= 1;
    allocate(cap);
  }
  VectorHistoryBuffer(const VectorHistoryBuffer&) = delete;
  VectorHistoryBuffer& operator=(const VectorHistoryBuffer&) = delete;

  View& view() { return view_; }
  Index peak_size() const { return peak_; }

  bool ensure(Index needed) {
    if (view_.size > peak_) peak_ = view_.size;
    if (needed <= view_.cap) return true;
    const View old = view_;
    std::vector<double> t_old;
    t_old.swap(t_);
    Array x_old = std::move(x_), f_old = std::move(f_), c_old = std::move(c_);
    Index cap = old.cap;
    while (cap < needed) cap <<= 1;
    allocate(cap);
    // The ring is at most two runs of slots: [head, cap) then [0, ...).
    const Index first = std::min(old.size, old.cap - old.head);
    copy_run(old, t_old, old.head, 0, first);
    copy_run(old, t_old, 0, first, old.size - first);
    view_.size = old.size;
    // The old arrays are freed on return while the copies may still be queued: a device
    // executor's free (cudaFree) waits for the device's outstanding work first.
    return true;
  }

 private:
  void allocate(Index cap) {
    const Index dim = view_.dim, nc = view_.n_coef;
    t_.assign(size_t(cap), 0.0);
    x_ = Array(cap * dim);
    f_ = Array(cap * dim);
    c_ = Array(cap * nc * dim);
    view_.t = t_.data();
    view_.x = x_.get();
    view_.f = f_.get();
    view_.coef = c_.get();
    view_.cap = cap;
    view_.head = 0;
    view_.size = 0;
  }
  // n slots of `old` from slot `from` into slots [to, to + n) of the new storage.
  void copy_run(const View& old, const std::vector<double>& t_old, Index from, Index to,
                Index n) {
    if (n <= 0) return;
    const Index dim = view_.dim, nc = view_.n_coef;
    for (Index i = 0; i < n; ++i) t_[size_t(to + i)] = t_old[size_t(from + i)];
    view_.exec.for_each(n * dim, CopyElements{view_.x + to * dim, old.x + from * dim});
    view_.exec.for_each(n * dim, CopyElements{view_.f + to * dim, old.f + from * dim});
    view_.exec.for_each(n * nc * dim, CopyElements{view_.coef + to * nc * dim,
                                                   old.coef + from * nc * dim});
  }

  View view_;
  std::vector<double> t_;
  Array x_, f_, c_;
  Index peak_ = 0;
};

}  // namespace delyap
