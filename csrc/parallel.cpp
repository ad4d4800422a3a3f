#include "parallel.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "loaded_library.h"

namespace dt {
namespace {

// One parallel_for call: chunks handed out by an atomic counter to whichever thread asks next,
// the first exception kept and rethrown on the calling thread.
struct Job {
  const std::function<void(int64_t)>* chunk_fn;
  int64_t n_chunks;
  std::atomic<int64_t> next{0};
  std::mutex error_mutex;
  std::exception_ptr error;

  void drain() {
    for (;;) {
      const int64_t c = next.fetch_add(1);
      if (c >= n_chunks) return;
      try {
        (*chunk_fn)(c);
      } catch (...) {
        std::lock_guard<std::mutex> lk(error_mutex);
        if (!error) error = std::current_exception();
      }
    }
  }
  static void drain_trampoline(void* job) { static_cast<Job*>(job)->drain(); }
};

// Workers sleep on a condition variable between jobs. One job runs at a time (a mutex serialises
// callers), which matches how kernels are launched: one op after another from Python.
class Pool {
 public:
  static Pool& get() {
    static Pool pool;
    return pool;
  }

  void run(Job& job, int threads) {
    std::lock_guard<std::mutex> job_lock(job_mutex_);
    grow(threads - 1);
    {
      std::lock_guard<std::mutex> lk(m_);
      job_ = &job;
      active_workers_ = threads - 1;
      pending_ = threads - 1;
      ++generation_;
    }
    cv_.notify_all();
    job.drain();  // the calling thread takes chunks too
    std::unique_lock<std::mutex> lk(m_);
    done_cv_.wait(lk, [&] { return pending_ == 0; });
    job_ = nullptr;
  }

  ~Pool() {
    {
      std::lock_guard<std::mutex> lk(m_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
  }

 private:
  void grow(int wanted) {
    while (static_cast<int>(workers_.size()) < wanted) {
      int index = static_cast<int>(workers_.size());
      workers_.emplace_back([this, index] { loop(index); });
    }
  }

  void loop(int index) {
    uint64_t seen = 0;
    for (;;) {
      Job* job;
      {
        std::unique_lock<std::mutex> lk(m_);
        cv_.wait(lk, [&] { return stop_ || (generation_ != seen && index < active_workers_); });
        if (stop_) return;
        seen = generation_;
        job = job_;
      }
      job->drain();
      {
        std::lock_guard<std::mutex> lk(m_);
        if (--pending_ == 0) done_cv_.notify_one();
      }
    }
  }

  std::mutex job_mutex_;
  std::mutex m_;
  std::condition_variable cv_, done_cv_;
  std::vector<std::thread> workers_;
  Job* job_ = nullptr;
  int active_workers_ = 0;
  int pending_ = 0;
  uint64_t generation_ = 0;
  bool stop_ = false;
};

// GNU OpenMP's entry point for `#pragma omp parallel` (also exported by LLVM's libomp and Intel's
// libiomp5): runs fn(data) on a team of num_threads threads, the caller included, and joins.
using GompParallel = void (*)(void (*)(void*), void*, unsigned, unsigned);
std::atomic<GompParallel> g_gomp_parallel{nullptr};

}  // namespace

bool use_openmp_runtime(const std::string& library_path) {
  if (library_path.empty()) {
    g_gomp_parallel.store(nullptr);
    return true;
  }
  // Only a runtime already in the process (PyTorch's), never a second copy.
  auto fn = reinterpret_cast<GompParallel>(
      symbol_from_loaded_library(library_path, "GOMP_parallel"));
  if (fn == nullptr) return false;
  g_gomp_parallel.store(fn);
  return true;
}

bool using_openmp_runtime() { return g_gomp_parallel.load() != nullptr; }

void parallel_for(int64_t n, int64_t grain, int num_threads,
                  const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  int64_t max_chunks = (n + grain - 1) / grain;
  int threads = static_cast<int>(std::min<int64_t>(std::max(num_threads, 1), max_chunks));
  if (threads <= 1) {
    fn(0, n);
    return;
  }
  // A few chunks per thread balance uneven work without much scheduling overhead.
  int64_t n_chunks = std::min<int64_t>(max_chunks, static_cast<int64_t>(threads) * 4);
  int64_t chunk = (n + n_chunks - 1) / n_chunks;
  n_chunks = (n + chunk - 1) / chunk;
  std::function<void(int64_t)> chunk_fn = [&](int64_t c) {
    int64_t b = c * chunk;
    fn(b, std::min(n, b + chunk));
  };
  Job job;
  job.chunk_fn = &chunk_fn;
  job.n_chunks = n_chunks;
  if (GompParallel gomp = g_gomp_parallel.load()) {
    gomp(&Job::drain_trampoline, &job, static_cast<unsigned>(threads), 0);
  } else {
    Pool::get().run(job, threads);
  }
  if (job.error) std::rethrow_exception(job.error);
}

}  // namespace dt
