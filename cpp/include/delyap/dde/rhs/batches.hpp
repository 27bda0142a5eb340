// The registry's one parameter family: trajectory b's system from flat parameter arrays (host
// or device memory). The solve and Lyapunov entry points, the fixed-storage host mirror and the
// CUDA kernels all build their per-trajectory systems through `batch.at(b)`.
//
// A built-in system with scalar parameters declares (see delayed_logistic.hpp):
//   static constexpr const char* kParameters[] = {...};  // names, in constructor order
//   static constexpr int kMaxDim, kMaxDelays;              // fixed-storage scratch sizes
// and is constructible as System{p0, p1, ...} from those values: ParamBatch<System> then serves
// it. A system with array parameters (LinearDde) declares `using Batch = ...` instead: its own
// DELYAP_HD pack with the same `at(b)`, kDim and kDelays.
#pragma once

#include <cstddef>
#include <type_traits>
#include <utility>

#include "delyap/common/config.hpp"

namespace delyap {

template <class System>
constexpr int parameter_count() {
  return int(sizeof(System::kParameters) / sizeof(System::kParameters[0]));
}

// One pointer and one stride per parameter: value of trajectory b = p[i][b * stride[i]]
// (stride 0: one value shared by the batch, 1: one value per trajectory).
template <class System>
struct ParamBatch {
  static constexpr int kParams = parameter_count<System>();
  static constexpr int kDim = System::kMaxDim, kDelays = System::kMaxDelays;
  const double* p[kParams];
  Index stride[kParams];

  DELYAP_HD System at(Index b) const { return build(b, std::make_index_sequence<kParams>{}); }

 private:
  template <std::size_t... I>
  DELYAP_HD System build(Index b, std::index_sequence<I...>) const {
    return System{p[I][b * stride[I]]...};
  }
};

namespace detail {
template <class S, class = void>
struct batch_of {
  using type = ParamBatch<S>;
};
template <class S>
struct batch_of<S, std::void_t<typename S::Batch>> {
  using type = typename S::Batch;
};
}  // namespace detail

// The parameter pack a built-in system's batch travels in.
template <class System>
using BatchOf = typename detail::batch_of<System>::type;

}  // namespace delyap
