#include "denoiser_cpu.h"

#include <algorithm>
#include <cstring>

#include "blas.h"
#include "causal_cross_attention.h"
#include "common.h"
#include "dwconv.h"
#include "film.h"
#include "region_attention.h"

namespace dt {
namespace {

// Copies rows [0, rows) of a (rows, n) matrix into rows [rows, total) cyclically: guidance's
// first block computes one half of the batch, and both halves continue from it.
void repeat_rows(float* m, int64_t rows, int64_t total, int64_t n) {
  for (int64_t r = rows; r < total; ++r)
    std::memcpy(m + r * n, m + (r % rows) * n, n * sizeof(float));
}

}  // namespace

void denoiser_blocks_forward_cpu(const DenoiserShape& shape, const NormParams& norm0,
                                 const std::vector<DenoiserBlockParams>& blocks, const float* h,
                                 const float* temb, float* out, int64_t batch,
                                 int64_t L, int64_t S, int64_t n_audio, bool halves,
                                 int num_threads) {
  const int64_t d = shape.dim, hd = shape.head_dim;
  DT_CHECK(!blocks.empty(), "denoiser_blocks_forward_cpu: no blocks");
  DT_CHECK(hd > 0 && d % hd == 0, "denoiser_blocks_forward_cpu: dim not a multiple of head_dim");
  DT_CHECK(!halves || batch % 2 == 0, "denoiser_blocks_forward_cpu: halves needs an even batch");
  const int64_t rows0 = halves ? batch / 2 : batch;  // rows of h, x and temb
  DT_CHECK(n_audio >= 0 && n_audio <= rows0,
           "denoiser_blocks_forward_cpu: audio rows must come first and fit in h's rows");
  auto sums_to_d = [d](const std::vector<int64_t>& widths) {
    int64_t total = 0;
    for (int64_t w : widths) {
      if (w <= 0) return false;
      total += w;
    }
    return total == d;
  };
  DT_CHECK(sums_to_d(shape.widths) && sums_to_d(norm0.groups),
           "denoiser_blocks_forward_cpu: region widths and norm groups must sum to dim");
  for (const auto& p : blocks)
    DT_CHECK(sums_to_d(p.norm.groups), "denoiser_blocks_forward_cpu: norm groups must sum to dim");
  if (batch * L * d == 0) return;
  const int64_t heads = d / hd, n = batch * L * d;
  const int n_dil = static_cast<int>(shape.dilations.size());

  // Kept between calls (one diffusion step to the next): no allocation, no page faults. Only
  // up to kKeptFloats, though: a long offline clip's buffers are not held for the thread's life.
  constexpr size_t kKeptFloats = size_t{8} << 20;  // 32 MiB
  thread_local std::vector<float> work;
  const size_t need = static_cast<size_t>(7 * n + 4 * batch * d + 3 * d);
  if (work.size() < need) work.resize(need);
  struct Release {
    std::vector<float>& w;
    ~Release() {
      if (w.size() > kKeptFloats) std::vector<float>().swap(w);
    }
  } release{work};
  float* hbuf[2] = {work.data(), work.data() + n};
  float* xbuf = hbuf[1] + n;
  float* a = xbuf + n;        // attention output, then F_conv, then F_attn
  float* s1 = a + n;          // W_f output; the cross-attention queries when s is s2
  float* s2 = s1 + n;         // multi-dilation conv output
  float* fin = s2 + n;        // W_o [F_conv ; F_attn] + b_o
  float* film = fin + n;      // (rows0, 2d): gamma | beta per timestep row
  float* gamma = film + 2 * batch * d;
  float* beta = gamma + batch * d;
  float* null_out = beta + batch * d;  // W_o's F_attn half times v_null
  float* ones = null_out + d;
  float* zeros = ones + d;

  // The first pre-norm, by the FiLM + norm kernel with the identity modulation (1 * h + 0 is h
  // exactly), which also copies h into the residual buffer; both halves carry that stream into
  // the first block's FiLM.
  std::fill(ones, ones + d, 1.f);
  std::fill(zeros, zeros + d, 0.f);
  film_norm_forward_cpu(h, ones, zeros, nullptr, norm0.weight, norm0.bias, norm0.eps,
                        norm0.groups.data(), static_cast<int>(norm0.groups.size()), hbuf[0],
                        xbuf, 1, rows0 * L, d, num_threads);
  repeat_rows(hbuf[0], rows0 * L, batch * L, d);

  int cur = 0;
  for (size_t i = 0; i < blocks.size(); ++i) {
    const DenoiserBlockParams& p = blocks[i];
    const int64_t rows = i == 0 ? rows0 : batch;  // rows whose audio-independent part runs
    const int64_t rl = rows * L;

    region_attention_forward_cpu(xbuf, p.qkv_weight, p.qkv_bias, shape.widths, a, rows, L, hd,
                                 shape.rope_base, num_threads);
    linear_rows_parallel(a, rl, d, d, p.fuse_weight, d, d, p.fuse_bias, s1, d, false,
                         num_threads);
    float* s = s1;
    float* q = s2;
    if (n_dil > 0) {
      multi_dilation_dwconv_forward_cpu(s1, p.dw_weight, p.dw_bias, p.pw_weight, p.pw_bias, s2,
                                        rows, L, d, d, shape.dilations.data(), n_dil,
                                        num_threads);
      s = s2;
      q = s1;
    }
    local_dwconv_forward_cpu(s, p.local_weight, p.local_bias, a, rows, L, d, shape.local_kernel,
                             num_threads);
    // W_o = [W_conv | W_attn] (d, 2d): its halves are column slices, rows 2d apart.
    linear_rows_parallel(a, rl, d, d, p.out_weight, d, 2 * d, p.out_bias, fin, d, false,
                         num_threads);
    repeat_rows(fin, rl, batch * L, d);
    if (n_audio > 0) {
      linear_rows_parallel(s, n_audio * L, d, d, p.q_weight, d, d, p.q_bias, q, d, false,
                           num_threads);
      causal_cross_attention_forward_cpu(q, p.audio_k, p.audio_v, a, n_audio, L, S, heads, hd,
                                         shape.lookahead, num_threads);
      linear_rows_parallel(a, n_audio * L, d, d, p.out_weight + d, d, 2 * d, nullptr, fin, d,
                           true, num_threads);
    }
    if (n_audio < batch) {
      // A null row's keys and values repeat one learned row, so its cross-attention output is
      // that value row whatever the query: its share of W_o is one vector for every frame.
      linear_rows(p.audio_v + n_audio * S * d, 1, d, d, p.out_weight + d, d, 2 * d, nullptr,
                  null_out, d, false);
      for (int64_t r = n_audio * L; r < batch * L; ++r) {
        float* f = fin + r * d;
        for (int64_t c = 0; c < d; ++c) f[c] += null_out[c];
      }
    }
    // FiLM of the distinct timestep rows only (with guidance the halves share t).
    linear_rows(temb, rows0, d, d, p.film_weight, 2 * d, d, p.film_bias, film, 2 * d, false);
    for (int64_t b = 0; b < batch; ++b) {
      const float* f = film + (b % rows0) * 2 * d;
      std::memcpy(gamma + b * d, f, d * sizeof(float));
      std::memcpy(beta + b * d, f + d, d * sizeof(float));
    }
    const bool last = i + 1 == blocks.size();
    film_norm_forward_cpu(fin, gamma, beta, hbuf[cur], p.norm.weight, p.norm.bias, p.norm.eps,
                          p.norm.groups.data(), static_cast<int>(p.norm.groups.size()),
                          hbuf[1 - cur], last ? out : xbuf, batch, L, d, num_threads);
    cur = 1 - cur;
  }
}

}  // namespace dt
