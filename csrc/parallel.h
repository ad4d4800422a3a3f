// A small persistent thread pool for the C++ CPU kernels.
//
// Why not OpenMP: the PyTorch wheel ships its own OpenMP runtime; linking a second one into the
// same process oversubscribes the cores and is a known source of hangs. Instead every kernel takes
// an explicit thread count (the Python layer passes torch.get_num_threads()), so this pool and
// PyTorch's never run more threads than the user asked for.
#pragma once

#include <cstdint>
#include <functional>

namespace dt {

// Runs fn(begin, end) over [0, n) split into contiguous chunks of at least `grain` items, on at
// most `num_threads` threads (the caller's thread included). num_threads <= 1 runs inline.
void parallel_for(int64_t n, int64_t grain, int num_threads,
                  const std::function<void(int64_t, int64_t)>& fn);

}  // namespace dt
