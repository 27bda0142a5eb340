// Host owner of a HistoryView: grows (doubling, order preserved) when a step needs more room.
// Growth only happens while the window holds more anchors than ever before, so memory stays
// bounded by the largest number of steps inside one delay window, not by the time span.
#pragma once

#include <vector>

#include "delyap/dde/history.hpp"

namespace delyap {

class HistoryBuffer {
 public:
  HistoryBuffer(int dim, int n_coef, Index initial_capacity = 64) {
    view_.dim = dim;
    view_.n_coef = n_coef;
    allocate(round_up_pow2(initial_capacity));
  }
  HistoryBuffer(const HistoryBuffer&) = delete;
  HistoryBuffer& operator=(const HistoryBuffer&) = delete;

  HistoryView& view() { return view_; }
  const HistoryView& view() const { return view_; }
  Index capacity() const { return view_.cap; }
  Index peak_size() const { return peak_; }

  // Makes room for `needed` anchors; returns true (host buffers can always grow).
  bool ensure(Index needed) {
    if (view_.size > peak_) peak_ = view_.size;
    if (needed <= view_.cap) return true;
    HistoryView old = view_;
    std::vector<double> t_old, x_old, f_old, c_old;
    t_old.swap(t_);
    x_old.swap(x_);
    f_old.swap(f_);
    c_old.swap(c_);
    allocate(round_up_pow2(needed));
    const int dim = old.dim, nc = old.n_coef;
    for (Index i = 0; i < old.size; ++i) {
      const Index s = old.slot(i);
      t_[i] = t_old[s];
      for (int d = 0; d < dim; ++d) {
        x_[i * dim + d] = x_old[s * dim + d];
        f_[i * dim + d] = f_old[s * dim + d];
      }
      for (int k = 0; k < nc * dim; ++k) c_[i * nc * dim + k] = c_old[s * nc * dim + k];
    }
    view_.head = 0;
    view_.size = old.size;
    return true;
  }

 private:
  static Index round_up_pow2(Index n) {
    Index c = 4;
    while (c < n) c <<= 1;
    return c;
  }
  void allocate(Index cap) {
    const int dim = view_.dim, nc = view_.n_coef;
    t_.assign(cap, 0.0);
    x_.assign(cap * dim, 0.0);
    f_.assign(cap * dim, 0.0);
    c_.assign(cap * nc * dim, 0.0);
    view_.t = t_.data();
    view_.x = x_.data();
    view_.f = f_.data();
    view_.coef = c_.data();
    view_.cap = cap;
    view_.head = 0;
    view_.size = 0;
  }

  HistoryView view_;
  std::vector<double> t_, x_, f_, c_;
  Index peak_ = 0;
};

}  // namespace delyap
