// A thread group of real host threads with a barrier: the CUDA block semantics (shared memory,
// __syncthreads) emulated on the CPU, so the block-cooperative algorithms can be tested here
// with several threads — races and missing syncs show up as differences from SerialGroup.
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace delyap::bindings {

class HostBarrier {
 public:
  explicit HostBarrier(int n) : n_(n) {}
  void wait() {
    std::unique_lock<std::mutex> lock(m_);
    const long gen = generation_;
    if (++waiting_ == n_) {
      waiting_ = 0;
      ++generation_;
      cv_.notify_all();
    } else {
      cv_.wait(lock, [&] { return generation_ != gen; });
    }
  }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  int n_;
  int waiting_ = 0;
  long generation_ = 0;
};

struct HostThreadGroup {
  int r, n;
  HostBarrier* barrier;
  int rank() const { return r; }
  int size() const { return n; }
  bool leader() const { return r == 0; }
  void sync() const { barrier->wait(); }
};

// Runs body(group) on n threads that form one group.
inline void run_host_group(int n, const std::function<void(const HostThreadGroup&)>& body) {
  HostBarrier barrier(n);
  std::vector<std::thread> threads;
  for (int r = 1; r < n; ++r)
    threads.emplace_back([&, r] { body(HostThreadGroup{r, n, &barrier}); });
  body(HostThreadGroup{0, n, &barrier});
  for (auto& t : threads) t.join();
}

}  // namespace delyap::bindings
