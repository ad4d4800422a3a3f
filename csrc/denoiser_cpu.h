// The FastDenoiser's block stack on the CPU in one call: every block's region attention, W_f,
// convolutions, cross-attention, W_o, FiLM and the next pre-norm, launched from C++ with no
// Python between the kernels (see disenttalk_fast/model/cpu_step.py, whose Python loop is the
// same computation and the fallback where no BLAS can be borrowed).
#pragma once

#include <cstdint>
#include <vector>

namespace dt {

// What every block shares (the model's config).
struct DenoiserShape {
  int64_t dim;                      // d
  int64_t head_dim;
  float rope_base;
  std::vector<int64_t> widths;      // region channel widths, summing to d
  std::vector<int64_t> dilations;   // multi-dilation conv; empty when the model has none
  int64_t local_kernel;             // k of F_conv
  int64_t lookahead;                // cross-attention lookahead, in audio rows
};

// A LayerNorm applied to each channel group separately (one group: a plain LayerNorm).
struct NormParams {
  const float *weight, *bias;  // (d,), (d,)
  float eps;
  std::vector<int64_t> groups;  // group widths, summing to d
};

// One block's parameters (fp32, contiguous, row-major as nn.Linear stores them) and its audio
// keys / values. The norm is the one applied after this block: the next block's pre-norm, or the
// model's output norm after the last block.
struct DenoiserBlockParams {
  std::vector<const float*> qkv_weight, qkv_bias;    // per region: (3w, w), (3w,)
  const float *fuse_weight, *fuse_bias;              // W_f (d, d), (d,)
  const float *dw_weight, *dw_bias;                  // (n, d, 3), (n, d); unused without dilations
  const float *pw_weight, *pw_bias;                  // (d, n d), (d,)
  const float *local_weight, *local_bias;            // (d, k), (d,)
  const float *q_weight, *q_bias;                    // W_q (d, d), (d,)
  const float *out_weight, *out_bias;                // W_o (d, 2d), (d,)
  const float *film_weight, *film_bias;              // (2d, d), (2d,)
  NormParams norm;
  const float *audio_k, *audio_v;                    // (batch, S, H, head_dim) each
};

// Runs the first block's pre-norm `norm0` and the blocks on the residual stream h and writes the
// output-normed stream (batch, L, d) to `out`.
//   h: (rows, L, d) with rows = batch, or batch / 2 when `halves` (classifier-free guidance:
//      both halves of the batch share z and t, so the first block's audio-independent part runs
//      once and is then doubled);
//   temb: (rows, d), the activated timestep embedding;
//   n_audio: rows [0, n_audio) attend to their audio; rows [n_audio, batch) are null-audio rows,
//            whose cross-attention output is their value row v_null whatever the query;
//   S: audio rows per sample (2 L).
void denoiser_blocks_forward_cpu(const DenoiserShape& shape, const NormParams& norm0,
                                 const std::vector<DenoiserBlockParams>& blocks, const float* h,
                                 const float* temb, float* out, int64_t batch,
                                 int64_t L, int64_t S, int64_t n_audio, bool halves,
                                 int num_threads);

}  // namespace dt
