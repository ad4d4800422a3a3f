// Causal cross-attention from motion frames to audio rows (spec:
// disenttalk_fast/reference/causal_cross_attention.py). Frame j attends to audio rows
// r < min(S, 2 (j + 1 + lookahead)); softmax scale 1/sqrt(D).
//
//   q, out : (B, L, H, D) contiguous      k, v : (B, S, H, D) contiguous, S >= 1
// Rows of one head are H * D elements apart. Key blocks past a query tile's last visible row
// are never touched, which is where the causal mask saves time.
#pragma once

#include <cstdint>

#include "common.h"

namespace dt {

// fp32, D in {16, 32, 64, 128}.
void causal_cross_attention_forward_cpu(const float* q, const float* k, const float* v,
                                        float* out, int64_t B, int64_t L, int64_t S, int64_t H,
                                        int64_t D, int64_t lookahead, int num_threads);

#ifdef DT_WITH_CUDA
// One launch on `stream`; dtype applies to every tensor. D in {16, 32, 64, 128}.
void causal_cross_attention_forward_cuda(std::uintptr_t q, std::uintptr_t k, std::uintptr_t v,
                                         std::uintptr_t out, int64_t B, int64_t L, int64_t S,
                                         int64_t H, int64_t D, int64_t lookahead, int splits,
                                         std::uintptr_t partial, DType dtype,
                                         std::uintptr_t stream);

// Key ranges the CUDA attention splits into on the current device (1: none) for L query rows
// over S keys (causal: the cross-attention's 2:1 rule with `lookahead`), and the floats of partial
// state the caller allocates for them (see attention_cuda.cuh).
int attention_splits_cuda(int64_t B, int64_t H, int64_t L, int64_t S, bool causal,
                          int64_t lookahead);
int64_t attention_partial_floats(int64_t B, int64_t H, int64_t L, int64_t head_dim, int splits);
#endif

}  // namespace dt
