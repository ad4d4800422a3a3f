#include "film.h"
#include "parallel.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace dt {
namespace {

// 8 lanes of partial sums: the reductions vectorise without -ffast-math (which would let the
// compiler reassociate every float expression in the file).
typedef float v8 __attribute__((vector_size(32)));

float hsum(v8 v) {
  float s = 0.f;
  for (int i = 0; i < 8; ++i) s += v[i];
  return s;
}

float sum_of(const float* p, int64_t n) {
  v8 acc = {};
  int64_t c = 0;
  for (; c + 8 <= n; c += 8) {
    v8 v;
    std::memcpy(&v, p + c, sizeof(v));
    acc += v;
  }
  float s = hsum(acc);
  for (; c < n; ++c) s += p[c];
  return s;
}

float centred_sq_sum(const float* p, int64_t n, float mean) {
  v8 acc = {};
  int64_t c = 0;
  for (; c + 8 <= n; c += 8) {
    v8 v;
    std::memcpy(&v, p + c, sizeof(v));
    v -= mean;
    acc += v * v;
  }
  float s = hsum(acc);
  for (; c < n; ++c) s += (p[c] - mean) * (p[c] - mean);
  return s;
}

// One row of FiLM + residual: o = res + g * x + b (res may be null). Shared by film and film_norm.
inline void film_row(const float* __restrict__ x, const float* __restrict__ g,
                     const float* __restrict__ bt, const float* __restrict__ res,
                     float* __restrict__ o, int64_t C) {
  if (res) {
    for (int64_t c = 0; c < C; ++c) o[c] = res[c] + g[c] * x[c] + bt[c];
  } else {
    for (int64_t c = 0; c < C; ++c) o[c] = g[c] * x[c] + bt[c];
  }
}

}  // namespace

void film_forward_cpu(const float* x, const float* gamma, const float* beta, const float* residual,
                      float* out, int64_t B, int64_t L, int64_t C, int num_threads) {
  // One task per (b, l) row: each row reads its sample's gamma/beta (hot in cache) and the inner
  // loop over channels is a straight multiply-add the compiler vectorises.
  const int64_t rows = B * L;
  const int64_t grain = streaming_grain(C);
  parallel_for(rows, grain, num_threads, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t b = r / L;
      film_row(x + r * C, gamma + b * C, beta + b * C, residual ? residual + r * C : nullptr,
               out + r * C, C);
    }
  });
}

void film_norm_forward_cpu(const float* x, const float* gamma, const float* beta,
                           const float* residual, const float* norm_weight,
                           const float* norm_bias, float eps, const int64_t* group_widths,
                           int n_groups, float* out, float* normed, int64_t B, int64_t L,
                           int64_t C, int num_threads) {
  DT_CHECK(n_groups >= 1 && n_groups <= kMaxNormGroups, "film_norm: 1 to 8 norm groups");
  // One task per (b, l) row: the row is written to `out`, and re-read from L1 for the group
  // statistics and the normalised copy, so memory sees 2 reads and 2 writes per element.
  const int64_t rows = B * L;
  const int64_t grain = streaming_grain(C);
  parallel_for(rows, grain, num_threads, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t b = r / L;
      float* __restrict__ o = out + r * C;
      float* __restrict__ nrm = normed + r * C;
      film_row(x + r * C, gamma + b * C, beta + b * C, residual ? residual + r * C : nullptr, o,
               C);
      int64_t start = 0;
      for (int gi = 0; gi < n_groups; ++gi) {
        const int64_t w = group_widths[gi];
        const float* og = o + start;
        const float mean = sum_of(og, w) / static_cast<float>(w);
        const float sq = centred_sq_sum(og, w, mean);
        const float rstd = 1.f / std::sqrt(sq / static_cast<float>(w) + eps);
        for (int64_t c = start; c < start + w; ++c)
          nrm[c] = (o[c] - mean) * rstd * norm_weight[c] + norm_bias[c];
        start += w;
      }
    }
  });
}

}  // namespace dt
