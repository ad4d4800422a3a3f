// Depthwise temporal convolutions over channels-last (B, L, C) tensors, "same" zero padding.
//
// multi_dilation_dwconv (paper Eq. 5):
//   dw_i[b, t, c] = dw_bias[i, c] + sum_{j<3} dw_weight[i, c, j] * x[b, t + (j - 1) * dil[i], c]
//   out[b, t, o]  = pw_bias[o] + sum_i sum_c pw_weight[o, i * C + c] * dw_i[b, t, c]
//     x (B, L, C); dw_weight (n, C, 3); dw_bias (n, C); pw_weight (Cout, n * C);
//     pw_bias (Cout,) or null; out (B, L, Cout). The fused kernels read a tile of time steps plus
//     the halo (max dilation on each side) once and never write the (B, L, n*C) concatenation.
//
// local_dwconv (the F_conv path of Eq. 6), kernel K odd:
//   out[b, t, c] = bias[c] + sum_{j<K} weight[c, j] * x[b, t + j - K/2, c]
//     x, out (B, L, C); weight (C, K); bias (C,) or null.
//
// All tensors contiguous; out must not alias any input.
#pragma once

#include <cstdint>

#include "common.h"

namespace dt {

// Dilations handled by one fused call: at most this many branches, each dilation >= 1.
constexpr int kMaxDilations = 4;

void multi_dilation_dwconv_forward_cpu(const float* x, const float* dw_weight,
                                       const float* dw_bias, const float* pw_weight,
                                       const float* pw_bias, float* out, int64_t B, int64_t L,
                                       int64_t C, int64_t Cout, const int64_t* dilations,
                                       int n_dil, int num_threads);

void local_dwconv_forward_cpu(const float* x, const float* weight, const float* bias, float* out,
                              int64_t B, int64_t L, int64_t C, int64_t K, int num_threads);

#ifdef DT_WITH_CUDA
// Launch on `stream` (a cudaStream_t as an integer); dtype applies to every tensor.
void multi_dilation_dwconv_forward_cuda(std::uintptr_t x, std::uintptr_t dw_weight,
                                        std::uintptr_t dw_bias, std::uintptr_t pw_weight,
                                        std::uintptr_t pw_bias, std::uintptr_t out, int64_t B,
                                        int64_t L, int64_t C, int64_t Cout,
                                        const int64_t* dilations, int n_dil, DType dtype,
                                        std::uintptr_t stream);

void local_dwconv_forward_cuda(std::uintptr_t x, std::uintptr_t weight, std::uintptr_t bias,
                               std::uintptr_t out, int64_t B, int64_t L, int64_t C, int64_t K,
                               DType dtype, std::uintptr_t stream);
#endif

}  // namespace dt
