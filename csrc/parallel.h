// Parallel loops for the C++ CPU kernels: on PyTorch's own OpenMP threads when its runtime can
// be shared, else on a small persistent thread pool of ours.
//
// Why not link OpenMP: the PyTorch wheel ships its own OpenMP runtime; linking a second one into
// the same process oversubscribes the cores and is a known source of hangs, and the build does not
// depend on torch. Instead the Python layer finds the runtime PyTorch loaded and hands its path to
// use_openmp_runtime, which borrows it with dlopen(RTLD_NOLOAD). Why share at all: after each of
// PyTorch's parallel ops its OpenMP workers keep spinning for a while, and a pool of our own then
// fights them for the same cores (a fused denoiser step at 2 threads measured 96 ms with our own
// pool, ~62 ms with the spinning cut short). Every kernel takes an explicit thread count (the
// Python layer passes torch.get_num_threads()).
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <string>

namespace dt {

// Runs parallel loops on the OpenMP runtime at `library_path` from now on, if that library is
// already loaded in the process and exports GOMP_parallel; false (nothing changed) otherwise.
// An empty path goes back to the built-in pool.
bool use_openmp_runtime(const std::string& library_path);
bool using_openmp_runtime();

// Runs fn(begin, end) over [0, n) split into contiguous chunks of at least `grain` items, on at
// most `num_threads` threads (the caller's thread included). num_threads <= 1 runs inline.
void parallel_for(int64_t n, int64_t grain, int num_threads,
                  const std::function<void(int64_t, int64_t)>& fn);

// Rows per task for a bandwidth-bound pass over rows of `row_elems` floats. Waking a pool thread
// costs tens of microseconds (more on a busy machine) — about what a streaming pass over 128K
// floats takes — so smaller passes run inline on the calling thread.
inline int64_t streaming_grain(int64_t row_elems) {
  return std::max<int64_t>(1, (int64_t{1} << 17) / std::max<int64_t>(row_elems, 1));
}

}  // namespace dt
