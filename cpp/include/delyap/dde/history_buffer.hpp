// Owner of a history view (history.hpp): grows (doubling, order preserved) when a step needs
// more room. Growth only happens while the window holds more anchors than ever before, so
// memory stays bounded by the largest number of steps inside one delay window, not by the time
// span. HistoryBuffer holds host vectors; HistoryBufferT<Exec> with an executor that has memory
// of its own (a device executor, common/exec.hpp) keeps states, derivatives and coefficients
// there and the anchor times on the host.
#pragma once

#include <algorithm>
#include <type_traits>
#include <vector>

#include "delyap/dde/history.hpp"

namespace delyap {

namespace detail {
// A buffer's arrays: the executor's own (Exec::Array), or host vectors for an executor without
// memory of its own (SerialExec).
template <class Exec, class = void>
struct HistoryArray {
  using type = std::vector<double>;
};
template <class Exec>
struct HistoryArray<Exec, std::void_t<typename Exec::template Array<double>>> {
  using type = typename Exec::template Array<double>;
};
inline double* data_of(std::vector<double>& v) { return v.data(); }
template <class A>
double* data_of(A& a) { return a.get(); }
}  // namespace detail

template <class Exec = SerialExec>
class HistoryBufferT {
 public:
  using View = HistoryViewT<ContiguousLayout, Exec>;
  using Array = typename detail::HistoryArray<Exec>::type;

  HistoryBufferT(Exec exec, int dim, int n_coef, Index initial_capacity = 64) {
    view_.exec = exec;
    view_.dim = dim;
    view_.n_coef = n_coef;
    allocate(round_up_pow2(initial_capacity));
  }
  HistoryBufferT(int dim, int n_coef, Index initial_capacity = 64)
      : HistoryBufferT(Exec{}, dim, n_coef, initial_capacity) {}
  HistoryBufferT(const HistoryBufferT&) = delete;
  HistoryBufferT& operator=(const HistoryBufferT&) = delete;

  View& view() { return view_; }
  const View& view() const { return view_; }
  Index capacity() const { return view_.cap; }
  Index peak_size() const { return peak_; }

  // Makes room for `needed` anchors; returns true (these buffers can always grow).
  bool ensure(Index needed) {
    if (view_.size > peak_) peak_ = view_.size;
    if (needed <= view_.cap) return true;
    const View old = view_;
    std::vector<double> t_old;
    t_old.swap(t_);
    Array x_old = std::move(x_), f_old = std::move(f_), c_old = std::move(c_);
    allocate(round_up_pow2(needed));
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
  static Index round_up_pow2(Index n) {
    Index c = 4;
    while (c < n) c <<= 1;
    return c;
  }
  void allocate(Index cap) {
    const Index dim = view_.dim, nc = view_.n_coef;
    t_.assign(size_t(cap), 0.0);
    x_ = Array(cap * dim);
    f_ = Array(cap * dim);
    c_ = Array(cap * nc * dim);
    view_.t = t_.data();
    view_.x = detail::data_of(x_);
    view_.f = detail::data_of(f_);
    view_.coef = detail::data_of(c_);
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
    view_.exec.for_each(n * nc * dim,
                        CopyElements{view_.coef + to * nc * dim, old.coef + from * nc * dim});
  }

  View view_;
  std::vector<double> t_;
  Array x_, f_, c_;
  Index peak_ = 0;
};

using HistoryBuffer = HistoryBufferT<>;

}  // namespace delyap
