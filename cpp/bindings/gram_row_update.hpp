// The host's Gram row update, compiled once per x86 ISA level and chosen at load time.
#pragma once

#include <cstdint>

#include "delyap/common/config.hpp"

namespace delyap::bindings {

// Same contract as delyap::subtract_batch_rows (lyap/gram_rows.hpp).
void subtract_batch_rows_host(double* q, Index n, int k, const double* K, const uint32_t* rows,
                              const double* g, Index m);

// Which build of the kernel this process runs ("x86-64-v3" or "portable"), for `delyap info`.
const char* gram_kernel_isa();

struct HostRowUpdate {
  void operator()(double* q, Index n, int k, const double* K, const uint32_t* rows,
                  const double* g, Index m) const {
    subtract_batch_rows_host(q, n, k, K, rows, g, m);
  }
};

}  // namespace delyap::bindings
