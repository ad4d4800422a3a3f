// Region-grouped self-attention (disenttalk_fast/reference/region_attention.py is the spec):
// per region r, a QKV projection of its channel slice, rotary position embedding on q and k
// (rotate-half convention, positions 0..L-1), and full attention over all L frames per head.
//
//   x, out     : (B, L, d) contiguous, d = sum of the regions' widths, regions in order
//   weights[r] : (3 d_r, d_r) contiguous, rows [q; k; v]      biases[r] : (3 d_r,)
//   d_r is a multiple of head_dim; heads are numbered globally across regions, so head g owns
//   out channels [g * head_dim, (g + 1) * head_dim).
#pragma once

#include <cstdint>
#include <vector>

#include "common.h"

namespace dt {

// fp32. head_dim in {16, 32, 64, 128}. Scratch (packed weights and the projected q, k, v) lives
// in a per-calling-thread buffer that is reused across calls.
void region_attention_forward_cpu(const float* x, const std::vector<const float*>& weights,
                                  const std::vector<const float*>& biases,
                                  const std::vector<int64_t>& widths, float* out, int64_t B,
                                  int64_t L, int64_t head_dim, float rope_base, int num_threads);

#ifdef DT_WITH_CUDA
// Two launches on `stream`: projection + rotary into `workspace` (3 * B * L * d floats, fp32,
// laid out (3, B, H, L, head_dim)), then attention into `out`. dtype applies to x, weights,
// biases and out. head_dim in {16, 32, 64, 128}.
void region_attention_forward_cuda(std::uintptr_t x, const std::vector<std::uintptr_t>& weights,
                                   const std::vector<std::uintptr_t>& biases,
                                   const std::vector<int64_t>& widths, std::uintptr_t workspace,
                                   int splits, std::uintptr_t partial, std::uintptr_t out,
                                   int64_t B, int64_t L, int64_t head_dim, float rope_base,
                                   DType dtype, std::uintptr_t stream);
#endif

}  // namespace dt
