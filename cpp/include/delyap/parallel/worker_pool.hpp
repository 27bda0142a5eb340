// A persistent pool for splitting one computation (e.g. a large network's right-hand side)
// over threads many times per second: the workers sleep between jobs instead of being spawned
// per call. Each job is split into one contiguous chunk per thread (the caller takes the
// first), so results never depend on the thread count: every element is computed by the same
// code, whichever thread owns it.
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "delyap/common/config.hpp"

namespace delyap {

class WorkerPool {
 public:
  explicit WorkerPool(int threads) : n_threads_(threads < 1 ? 1 : threads) {
    for (int w = 1; w < n_threads_; ++w) workers_.emplace_back([this, w] { work(w); });
  }
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;
  ~WorkerPool() {
    {
      std::lock_guard<std::mutex> lock(m_);
      stop_ = true;
      ++generation_;
    }
    wake_.notify_all();
    for (auto& t : workers_) t.join();
  }

  int threads() const { return n_threads_; }

  // Runs body(begin, end) over [0, n) in n_threads contiguous chunks; returns when all are done.
  void run(Index n, const std::function<void(Index, Index)>& body) {
    if (n_threads_ == 1) {
      body(0, n);
      return;
    }
    {
      std::lock_guard<std::mutex> lock(m_);
      body_ = &body;
      n_ = n;
      pending_ = n_threads_ - 1;
      ++generation_;
    }
    wake_.notify_all();
    body(0, chunk_end(0, n));
    std::unique_lock<std::mutex> lock(m_);
    done_.wait(lock, [this] { return pending_ == 0; });
    body_ = nullptr;
  }

 private:
  Index chunk_end(int w, Index n) const { return n * (w + 1) / n_threads_; }

  void work(int w) {
    long seen = 0;
    for (;;) {
      const std::function<void(Index, Index)>* body;
      Index n;
      {
        std::unique_lock<std::mutex> lock(m_);
        wake_.wait(lock, [&] { return generation_ != seen; });
        seen = generation_;
        if (stop_) return;
        body = body_;
        n = n_;
      }
      (*body)(n * w / n_threads_, chunk_end(w, n));
      {
        std::lock_guard<std::mutex> lock(m_);
        --pending_;
      }
      done_.notify_one();
    }
  }

  int n_threads_;
  std::vector<std::thread> workers_;
  std::mutex m_;
  std::condition_variable wake_, done_;
  const std::function<void(Index, Index)>* body_ = nullptr;
  Index n_ = 0;
  int pending_ = 0;
  long generation_ = 0;
  bool stop_ = false;
};

}  // namespace delyap
