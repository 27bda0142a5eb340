// BufferPool (nn/buffer_pool.hpp): a buffer larger than the pool's idle limit is freed on
// release without evicting the idle buffers that fit (before the fix, its release freed the
// smallest idle buffers one by one and then itself: a pass with one oversized array, e.g. the
// stages of a long integration, emptied the pool every step).
#include <catch2/catch.hpp>

#include "delyap/nn/buffer_pool.hpp"

using delyap::nn::BufferPool;

TEST_CASE("BufferPool: an oversized buffer's release keeps the idle ones", "[nn]") {
  constexpr size_t MiB = size_t(1) << 20;
  BufferPool& pool = BufferPool::instance();
  void* a = pool.acquire(4 * MiB);
  void* b = pool.acquire(8 * MiB);
  pool.release(a);
  pool.release(b);
  const auto before = pool.idle();
  void* big = pool.acquire(BufferPool::kMaxIdleBytes + 2 * MiB);  // address space only
  pool.release(big);
  CHECK(pool.idle() == before);
  void* again = pool.acquire(4 * MiB);  // the idle 4 MiB buffer is still there
  CHECK(again == a);
  pool.release(again);
}
