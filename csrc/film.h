// FiLM + residual:  out[b, l, c] = residual[b, l, c] + gamma[b, c] * x[b, l, c] + beta[b, c]
//
//   x, residual, out : (B, L, C) contiguous      gamma, beta : (B, C) contiguous
//   residual may be null (then it counts as zero). out may alias residual (in-place update of the
//   residual stream), but not x.
//
// film_norm: the same, then the next block's pre-norm of the result, in the same pass:
//   normed[b, l, c] = (out[b, l, c] - mean_g) * rstd_g * norm_weight[c] + norm_bias[c]
// where mean_g, rstd_g = 1 / sqrt(var_g + eps) are taken over the channel group g holding c
// (consecutive groups of widths group_widths[0..n_groups), summing to C; one group = LayerNorm).
// Statistics are two-pass (mean, then centred variance) in fp32 over the rounded `out`.
#pragma once

#include <cstdint>

#include "common.h"

namespace dt {

void film_forward_cpu(const float* x, const float* gamma, const float* beta, const float* residual,
                      float* out, int64_t B, int64_t L, int64_t C, int num_threads);

// Groups per row the kernels accept (the model's regions: lip, eye, global).
constexpr int kMaxNormGroups = 8;

void film_norm_forward_cpu(const float* x, const float* gamma, const float* beta,
                           const float* residual, const float* norm_weight,
                           const float* norm_bias, float eps, const int64_t* group_widths,
                           int n_groups, float* out, float* normed, int64_t B, int64_t L,
                           int64_t C, int num_threads);

#ifdef DT_WITH_CUDA
// Launches on `stream` (a cudaStream_t passed as an integer); dtype applies to every tensor.
void film_forward_cuda(std::uintptr_t x, std::uintptr_t gamma, std::uintptr_t beta,
                       std::uintptr_t residual, std::uintptr_t out, int64_t B, int64_t L,
                       int64_t C, DType dtype, std::uintptr_t stream);

void film_norm_forward_cuda(std::uintptr_t x, std::uintptr_t gamma, std::uintptr_t beta,
                            std::uintptr_t residual, std::uintptr_t norm_weight,
                            std::uintptr_t norm_bias, float eps, const int64_t* group_widths,
                            int n_groups, std::uintptr_t out, std::uintptr_t normed, int64_t B,
                            int64_t L, int64_t C, DType dtype, std::uintptr_t stream);
#endif

}  // namespace dt
