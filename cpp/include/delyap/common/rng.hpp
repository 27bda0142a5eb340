// Counter-based random numbers (Philox4x32-10, Salmon et al. 2011): the value drawn for
// (seed, stream, counter) is a pure function of those three, so results do not depend on the
// number of threads, the order of work, or the device.
#pragma once

#include <cmath>
#include <cstdint>

#include "delyap/common/config.hpp"

namespace delyap {

struct Philox4x32 {
  uint32_t v[4];
};

DELYAP_HD inline uint32_t mulhilo32(uint32_t a, uint32_t b, uint32_t* hi) {
  const uint64_t p = uint64_t(a) * uint64_t(b);
  *hi = uint32_t(p >> 32);
  return uint32_t(p);
}

// Philox4x32 with 10 rounds; key from the seed, counter from (counter, stream).
DELYAP_HD inline Philox4x32 philox4x32(uint64_t seed, uint64_t stream, uint64_t counter) {
  uint32_t c0 = uint32_t(counter), c1 = uint32_t(counter >> 32);
  uint32_t c2 = uint32_t(stream), c3 = uint32_t(stream >> 32);
  uint32_t k0 = uint32_t(seed), k1 = uint32_t(seed >> 32);
  for (int r = 0; r < 10; ++r) {
    uint32_t hi0, hi1;
    const uint32_t lo0 = mulhilo32(0xD2511F53u, c0, &hi0);
    const uint32_t lo1 = mulhilo32(0xCD9E8D57u, c2, &hi1);
    const uint32_t n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
    c0 = n0; c1 = n1; c2 = n2; c3 = n3;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return Philox4x32{{c0, c1, c2, c3}};
}

// Two uniforms in (0, 1) with 53 random bits each.
DELYAP_HD inline void uniform2(uint64_t seed, uint64_t stream, uint64_t counter, double* u0,
                               double* u1) {
  const Philox4x32 r = philox4x32(seed, stream, counter);
  const uint64_t a = (uint64_t(r.v[0]) << 21) ^ uint64_t(r.v[1]);
  const uint64_t b = (uint64_t(r.v[2]) << 21) ^ uint64_t(r.v[3]);
  const double scale = 1.0 / 9007199254740992.0;  // 2^-53
  *u0 = (double(a & ((uint64_t(1) << 53) - 1)) + 0.5) * scale;
  *u1 = (double(b & ((uint64_t(1) << 53) - 1)) + 0.5) * scale;
}

// Two independent standard normals (Box–Muller).
DELYAP_HD inline void normal2(uint64_t seed, uint64_t stream, uint64_t counter, double* z0,
                              double* z1) {
  double u0, u1;
  uniform2(seed, stream, counter, &u0, &u1);
  const double r = std::sqrt(-2.0 * std::log(u0));
  const double phi = 6.283185307179586 * u1;
  *z0 = r * std::cos(phi);
  *z1 = r * std::sin(phi);
}

// Index drawn from a discrete distribution given by its cumulative sums (last = 1).
DELYAP_HD inline int sample_categorical(const double* cumulative, int n, double u) {
  int lo = 0, hi = n - 1;
  while (lo < hi) {
    const int mid = (lo + hi) >> 1;
    if (u < cumulative[mid]) hi = mid; else lo = mid + 1;
  }
  return lo;
}

}  // namespace delyap
