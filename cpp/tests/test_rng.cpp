// Philox4x32-10 (common/rng.hpp) against the known-answer vectors of the Random123
// distribution (kat_vectors: counter words, key words, expected output), and the uniforms
// built on it.
#include <catch2/catch.hpp>

#include <cmath>
#include <array>
#include <cstdint>
#include <set>

#include "delyap/common/rng.hpp"

using namespace delyap;

namespace {
// philox4x32 takes the key as one 64-bit seed and the counter as (counter, stream): the
// Random123 words are their low and high halves.
Philox4x32 from_words(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0,
                      uint32_t k1) {
  const uint64_t counter = uint64_t(c0) | (uint64_t(c1) << 32);
  const uint64_t stream = uint64_t(c2) | (uint64_t(c3) << 32);
  const uint64_t seed = uint64_t(k0) | (uint64_t(k1) << 32);
  return philox4x32(seed, stream, counter);
}

void require_words(const Philox4x32& r, uint32_t a, uint32_t b, uint32_t c, uint32_t d) {
  CHECK(r.v[0] == a);
  CHECK(r.v[1] == b);
  CHECK(r.v[2] == c);
  CHECK(r.v[3] == d);
}
}  // namespace

TEST_CASE("Philox4x32-10 matches the Random123 known-answer vectors", "[rng]") {
  SECTION("counter and key all zeros") {
    require_words(from_words(0, 0, 0, 0, 0, 0), 0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu,
                  0x9b00dbd8u);
  }
  SECTION("counter and key all ones") {
    const uint32_t m = 0xffffffffu;
    require_words(from_words(m, m, m, m, m, m), 0x408f276du, 0x41c83b0eu, 0xa20bc7c6u,
                  0x6d5451fdu);
  }
  SECTION("digits of pi") {
    // Distinct words in every position: a swapped counter, key or output word fails here.
    require_words(from_words(0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u, 0xa4093822u,
                             0x299f31d0u),
                  0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u);
  }
}

TEST_CASE("uniform2 draws lie in (0, 1), depend on every input, and look uniform", "[rng]") {
  const int n = 200000;
  double sum = 0.0, sum2 = 0.0, lo = 1.0, hi = 0.0;
  for (int i = 0; i < n; ++i) {
    double u0, u1;
    uniform2(12345, 7, uint64_t(i), &u0, &u1);
    for (double u : {u0, u1}) {
      sum += u;
      sum2 += u * u;
      lo = std::fmin(lo, u);
      hi = std::fmax(hi, u);
    }
  }
  REQUIRE(lo > 0.0);
  REQUIRE(hi < 1.0);
  const double m = 2.0 * n;
  // Mean 1/2 and variance 1/12, within ~5 standard errors of the sample estimates.
  CHECK(std::fabs(sum / m - 0.5) < 5.0 * std::sqrt(1.0 / 12.0 / m));
  CHECK(std::fabs(sum2 / m - sum * sum / (m * m) - 1.0 / 12.0) < 5.0 * 0.0745 / std::sqrt(m));

  // A pure function of (seed, stream, counter): repeatable, and each input changes the draw.
  double a0, a1, b0, b1;
  uniform2(1, 2, 3, &a0, &a1);
  uniform2(1, 2, 3, &b0, &b1);
  CHECK(a0 == b0);
  CHECK(a1 == b1);
  std::set<double> seen{a0};
  for (auto args : {std::array<uint64_t, 3>{2, 2, 3}, std::array<uint64_t, 3>{1, 3, 3},
                    std::array<uint64_t, 3>{1, 2, 4}}) {
    uniform2(args[0], args[1], args[2], &b0, &b1);
    seen.insert(b0);
  }
  CHECK(seen.size() == 4);
}

TEST_CASE("normal2 has mean 0 and variance 1", "[rng]") {
  const int n = 100000;
  double sum = 0.0, sum2 = 0.0;
  for (int i = 0; i < n; ++i) {
    double z0, z1;
    normal2(99, 0, uint64_t(i), &z0, &z1);
    sum += z0 + z1;
    sum2 += z0 * z0 + z1 * z1;
  }
  const double m = 2.0 * n;
  CHECK(std::fabs(sum / m) < 5.0 / std::sqrt(m));
  CHECK(std::fabs(sum2 / m - 1.0) < 5.0 * std::sqrt(2.0 / m));
}

TEST_CASE("sample_categorical picks the first bin whose cumulative sum exceeds u", "[rng]") {
  const double cumulative[] = {0.25, 0.25, 0.75, 1.0};  // bin 1 has probability 0
  CHECK(sample_categorical(cumulative, 4, 0.0) == 0);
  CHECK(sample_categorical(cumulative, 4, 0.2499) == 0);
  CHECK(sample_categorical(cumulative, 4, 0.25) == 2);  // never the empty bin
  CHECK(sample_categorical(cumulative, 4, 0.7) == 2);
  CHECK(sample_categorical(cumulative, 4, 0.75) == 3);
  CHECK(sample_categorical(cumulative, 4, 0.9999999) == 3);
}
