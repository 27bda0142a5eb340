// Mini-batch index streams for SGD, drawn from the counter-based generator so that a
// configuration's batches depend only on (seed, stream, step):
//   iid      – B indices i.i.d. uniform (with replacement);
//   without  – B distinct indices (a partial Fisher–Yates shuffle of a persistent permutation);
//   epochs   – a fresh permutation each epoch, cut into ⌊N/B⌋ consecutive batches (the rest of
//              an epoch that does not fill a batch is dropped, as with drop_last=True).
#pragma once

#include <cstdint>

#include "delyap/common/rng.hpp"

namespace delyap {

enum class Sampling : int { Iid = 0, WithoutReplacement = 1, Epochs = 2 };

// Uniform integer in [0, n) from 32 random bits (Lemire's multiply-shift; bias < n / 2^32).
DELYAP_HD inline uint32_t bounded(uint32_t bits, uint32_t n) {
  return uint32_t((uint64_t(bits) * uint64_t(n)) >> 32);
}

// 32-bit words from (seed, stream, base + i/4), four per Philox call.
struct WordStream {
  uint64_t seed, stream, base;
  uint64_t index = 0;
  Philox4x32 block{};
  DELYAP_HD uint32_t next() {
    const uint64_t w = index & 3;
    if (w == 0) block = philox4x32(seed, stream, base + (index >> 2));
    ++index;
    return block.v[w];
  }
};

struct BatchSampler {
  Sampling mode;
  uint32_t n;      // samples
  uint32_t batch;  // B
  uint64_t seed, stream;
  uint32_t* perm;  // n entries (without / epochs); caller storage
  uint64_t epoch = ~uint64_t(0);

  // Counter space: 2^40 blocks per step index leave room for any batch size.
  static constexpr uint64_t kStepStride = uint64_t(1) << 20;
  static constexpr uint64_t kEpochBase = uint64_t(1) << 61;

  DELYAP_HD void init() {
    if (perm)
      for (uint32_t i = 0; i < n; ++i) perm[i] = i;
  }

  // Writes the B sample indices of step `step` to out.
  DELYAP_HD void draw(uint64_t step, uint32_t* out) {
    if (mode == Sampling::Iid) {
      WordStream ws{seed, stream, step * kStepStride};
      for (uint32_t b = 0; b < batch; ++b) out[b] = bounded(ws.next(), n);
    } else if (mode == Sampling::WithoutReplacement) {
      WordStream ws{seed, stream, step * kStepStride};
      for (uint32_t b = 0; b < batch; ++b) {
        const uint32_t j = b + bounded(ws.next(), n - b);
        const uint32_t t = perm[b];
        perm[b] = perm[j];
        perm[j] = t;
        out[b] = perm[b];
      }
    } else {
      const uint64_t per_epoch = n / batch;
      const uint64_t e = step / per_epoch, slot = step % per_epoch;
      if (e != epoch) {  // reshuffle: full Fisher–Yates from the identity
        epoch = e;
        for (uint32_t i = 0; i < n; ++i) perm[i] = i;
        WordStream ws{seed, stream, kEpochBase + e * kStepStride};
        for (uint32_t i = n - 1; i > 0; --i) {
          const uint32_t j = bounded(ws.next(), i + 1);
          const uint32_t t = perm[i];
          perm[i] = perm[j];
          perm[j] = t;
        }
      }
      for (uint32_t b = 0; b < batch; ++b) out[b] = perm[slot * batch + b];
    }
  }
};

}  // namespace delyap
