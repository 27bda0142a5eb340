// The neural pass's BufferPool (nn/buffer_pool.hpp): a freed buffer is handed out again for
// the same size class, idle memory stays within its limits, and UninitVec's large blocks go
// through it.
#include <catch2/catch.hpp>

#include <set>
#include <vector>

#include "delyap/nn/buffer_pool.hpp"

using delyap::nn::BufferPool;
using delyap::nn::UninitVec;

namespace {
constexpr size_t MiB = size_t(1) << 20;

// Acquires n buffers of `bytes` and releases them all: what the pool then holds idle.
std::pair<size_t, size_t> idle_after_release(size_t n, size_t bytes) {
  BufferPool& pool = BufferPool::instance();
  std::vector<void*> held;
  for (size_t i = 0; i < n; ++i) held.push_back(pool.acquire(bytes));
  for (void* p : held) pool.release(p);
  return pool.idle();
}
}  // namespace

TEST_CASE("BufferPool hands a freed buffer out again for the same size class", "[nn]") {
  BufferPool& pool = BufferPool::instance();
  void* p = pool.acquire(3 * MiB + 5);
  pool.release(p);
  void* q = pool.acquire(3 * MiB);  // same 2 MiB-rounded size: the idle buffer
  CHECK(q == p);
  void* r = pool.acquire(MiB);  // q is live: a new one
  CHECK(r != q);
  pool.release(q);
  void* s = pool.acquire(MiB / 4);  // the idle 4 MiB buffer is more than twice too large
  CHECK(s != q);
  for (void* b : {r, s}) pool.release(b);
}

TEST_CASE("UninitVec takes its large blocks from the pool", "[nn]") {
  const void* first = nullptr;
  {
    UninitVec v(BufferPool::kMinBytes / sizeof(double) * 4);
    v.back() = 1.0;
    first = v.data();
  }
  UninitVec w(BufferPool::kMinBytes / sizeof(double) * 4);
  CHECK(static_cast<const void*>(w.data()) == first);
  UninitVec small(16);  // below kMinBytes: the ordinary heap
  small[0] = 2.0;
  CHECK(small[0] == 2.0);
}

TEST_CASE("BufferPool keeps at most kMaxIdle buffers and kMaxIdleBytes idle", "[nn]") {
  const auto many = idle_after_release(BufferPool::kMaxIdle + 3, MiB);
  CHECK(many.first == BufferPool::kMaxIdle);
  CHECK(many.second <= BufferPool::kMaxIdleBytes);
  const size_t big = BufferPool::kMaxIdleBytes / 2;  // untouched: address space only
  const auto large = idle_after_release(3, big);
  CHECK(large.second <= BufferPool::kMaxIdleBytes);
  CHECK(large.second >= 2 * big);  // the smallest go first: both big ones that fit stay
}

// (Before the fix, an oversized buffer's release freed the smallest idle buffers one by one and
// then itself: a pass with one oversized array, e.g. the stages of a long integration, emptied
// the pool every step.)
TEST_CASE("BufferPool: an oversized buffer's release keeps the idle ones", "[nn]") {
  BufferPool& pool = BufferPool::instance();
  void* a = pool.acquire(4 * MiB);
  void* b = pool.acquire(8 * MiB);
  pool.release(a);
  pool.release(b);
  const auto before = pool.idle();
  void* big = pool.acquire(BufferPool::kMaxIdleBytes + 2 * MiB);  // address space only
  pool.release(big);
  CHECK(pool.idle() == before);  // nothing evicted, the oversized one not kept
}
