// FiLM + residual:  out[b, l, c] = residual[b, l, c] + gamma[b, c] * x[b, l, c] + beta[b, c]
//
//   x, residual, out : (B, L, C) contiguous      gamma, beta : (B, C) contiguous
//   residual may be null (then it counts as zero). out may alias residual (in-place update of the
//   residual stream), but not x.
#pragma once

#include <cstdint>

#include "common.h"

namespace dt {

void film_forward_cpu(const float* x, const float* gamma, const float* beta, const float* residual,
                      float* out, int64_t B, int64_t L, int64_t C, int num_threads);

#ifdef DT_WITH_CUDA
// Launches on `stream` (a cudaStream_t passed as an integer); dtype applies to every tensor.
void film_forward_cuda(std::uintptr_t x, std::uintptr_t gamma, std::uintptr_t beta,
                       std::uintptr_t residual, std::uintptr_t out, int64_t B, int64_t L,
                       int64_t C, DType dtype, std::uintptr_t stream);
#endif

}  // namespace dt
