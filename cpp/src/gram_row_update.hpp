// The host's Gram row update, compiled once per x86 ISA level and chosen at load time.
#pragma once

#include <cstdint>

#include "delyap/common/config.hpp"

namespace delyap::bindings {

// Same contract as delyap::subtract_batch_rows (lyap/gram_rows.hpp).
void subtract_batch_rows_host(double* q, Index n, int k, const double* K, const uint32_t* rows,
                              const double* g, Index m);

// Same contract as delyap::gather_batch_rows (all rows).
void gather_batch_rows_host(const double* U, const uint32_t* rows, Index m, const double* q,
                            Index n, int k, double scale, double* out);

// Which build of the kernel this process runs ("x86-64-v3" or "portable"), for `delyap info`.
const char* gram_kernel_isa();

struct HostRowUpdate {
  // The host runs a configuration on one thread: it always owns every entry (i0 = 0, di = 1).
  void operator()(double* q, Index n, int k, const double* K, const uint32_t* rows,
                  const double* g, Index m, Index = 0, Index = 1) const {
    subtract_batch_rows_host(q, n, k, K, rows, g, m);
  }
  void gather(const double* U, const uint32_t* rows, Index m, const double* q, Index n, int k,
              double scale, double* out, Index = 0, Index = 1) const {
    gather_batch_rows_host(U, rows, m, q, n, k, scale, out);
  }
};

}  // namespace delyap::bindings
