// A small persistent thread pool for the C++ CPU kernels.
//
// Why not OpenMP: the PyTorch wheel ships its own OpenMP runtime; linking a second one into the
// same process oversubscribes the cores and is a known source of hangs. Instead every kernel takes
// an explicit thread count (the Python layer passes torch.get_num_threads()), so this pool and
// PyTorch's never run more threads than the user asked for.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>

namespace dt {

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
