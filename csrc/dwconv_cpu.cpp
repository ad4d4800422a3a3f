// C++ CPU kernels of the depthwise temporal convolutions (see dwconv.h for the maths).
//
// multi_dilation_dwconv is a small GEMM per time tile: each task takes one (batch, tile of up to
// 48 time steps), computes the tile's n*C depthwise outputs straight from the input (tile + halo
// rows, transposed once so the convs vectorise over time) into a thread-local packed buffer, then
// multiplies the pointwise weight by it with a register-blocked 6x16 micro-kernel (6 output
// channels x 16 time steps, 12 accumulators).
// Nothing of size (B, L, n*C) is ever written.
#include <algorithm>
#include <cstring>
#include <vector>

#include "dwconv.h"
#include "parallel.h"

namespace dt {
namespace {

// 8 floats: one AVX register with -march=native on x86; GCC/Clang lower it to whatever the target
// has (two SSE registers, NEON pairs), so the code stays portable.
typedef float v8 __attribute__((vector_size(32)));

constexpr int kMR = 6;         // output channels per micro-tile
constexpr int kNR = 16;        // time steps per micro-tile (two v8)
constexpr int64_t kTile = 48;  // time steps per task (3 panels): each weight row brought in from
                               // L2/L3 serves 48 time steps from L1

inline v8 load8(const float* p) {
  v8 v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
inline void store8(float* p, v8 v) { std::memcpy(p, &v, sizeof(v)); }
inline v8 splat(float s) { return v8{s, s, s, s, s, s, s, s}; }

// The GEMM is done transposed, out^T (Cout x T) = W (Cout x K) * D^T (K x T), so the weight is
// read in place (row-major, one broadcast element at a time) and only the small per-tile D^T is
// packed. Packing the (Cout, K) weight instead would cost about as much as a whole small-L call
// (a streaming chunk) every time.
//
// out[t, r] = bias[r] + sum_k w_rows[r][k] * Dp[k][t]   for r < rows, t < cols,
// with out's rows ldo apart. w_rows: kMR weight rows (the caller repeats the last valid row to
// fill a partial tile); Dp: one packed panel of D^T, kNR time steps per k, contiguous.
void micro_kernel(const float* const* w_rows, const float* Dp, int64_t K, const float* bias,
                  float* out, int64_t ldo, int rows, int cols) {
  v8 acc[kMR][2];
#pragma GCC unroll 6
  for (int r = 0; r < kMR; ++r) acc[r][0] = acc[r][1] = splat(bias && r < rows ? bias[r] : 0.f);
  const float *w0 = w_rows[0], *w1 = w_rows[1], *w2 = w_rows[2];
  const float *w3 = w_rows[3], *w4 = w_rows[4], *w5 = w_rows[5];
  for (int64_t k = 0; k < K; ++k) {
    const v8 d0 = load8(Dp + k * kNR);
    const v8 d1 = load8(Dp + k * kNR + 8);
    v8 a;
    a = splat(w0[k]); acc[0][0] += a * d0; acc[0][1] += a * d1;
    a = splat(w1[k]); acc[1][0] += a * d0; acc[1][1] += a * d1;
    a = splat(w2[k]); acc[2][0] += a * d0; acc[2][1] += a * d1;
    a = splat(w3[k]); acc[3][0] += a * d0; acc[3][1] += a * d1;
    a = splat(w4[k]); acc[4][0] += a * d0; acc[4][1] += a * d1;
    a = splat(w5[k]); acc[5][0] += a * d0; acc[5][1] += a * d1;
  }
  // Transposed store: the tile is (channels x time steps), out is (time steps, channels).
  float tmp[kMR][kNR];
  for (int r = 0; r < kMR; ++r) {
    store8(tmp[r], acc[r][0]);
    store8(tmp[r] + 8, acc[r][1]);
  }
  for (int t = 0; t < cols; ++t)
    for (int r = 0; r < rows; ++r) out[t * ldo + r] = tmp[r][t];
}

// xT[c][j] = x[b, t0 - H + j, c] for j < TT (zero outside the sequence): the tile plus its halo,
// transposed so that the depthwise convs below can vectorise over time. Blocked 8 x 8 so both the
// reads and the writes stay within a few cache lines.
void transpose_tile(const float* xb, int64_t L, int64_t C, int64_t t0, int64_t H, int64_t TT,
                    float* xT) {
  for (int64_t j0 = 0; j0 < TT; j0 += 8)
    for (int64_t c0 = 0; c0 < C; c0 += 8) {
      const int64_t j1 = std::min(j0 + 8, TT), c1 = std::min(c0 + 8, C);
      for (int64_t j = j0; j < j1; ++j) {
        const int64_t t = t0 - H + j;
        if (t >= 0 && t < L) {
          const float* src = xb + t * C;
          for (int64_t c = c0; c < c1; ++c) xT[c * TT + j] = src[c];
        } else {
          for (int64_t c = c0; c < c1; ++c) xT[c * TT + j] = 0.f;
        }
      }
    }
}

// Dp[p][i*C + c][0..kNR) = depthwise output (branch i, channel c) at the panel's kNR time steps,
// straight in the micro-kernel's layout: two 8-wide FMAs chains per (i, c) reading the transposed
// tile at offsets -d, 0, +d. Time steps past the sequence end read zeros (bias only; not stored).
void depthwise_panels(const float* xT, int64_t TT, int64_t H, int64_t C, int64_t panels,
                      const float* dw_weight, const float* dw_bias, const int64_t* dil, int n,
                      float* Dp) {
  const int64_t K = n * C;
  for (int64_t p = 0; p < panels; ++p)
    for (int i = 0; i < n; ++i) {
      const int64_t d = dil[i];
      for (int64_t c = 0; c < C; ++c) {
        const float* w = dw_weight + (i * C + c) * 3;
        const v8 w0 = splat(w[0]), w1 = splat(w[1]), w2 = splat(w[2]);
        const v8 bias = splat(dw_bias[i * C + c]);
        const float* xr = xT + c * TT + p * kNR + H;
        float* dst = Dp + p * K * kNR + (i * C + c) * kNR;
        for (int h = 0; h < kNR; h += 8)
          store8(dst + h, bias + w0 * load8(xr + h - d) + w1 * load8(xr + h) +
                              w2 * load8(xr + h + d));
      }
    }
}

}  // namespace

void multi_dilation_dwconv_forward_cpu(const float* x, const float* dw_weight,
                                       const float* dw_bias, const float* pw_weight,
                                       const float* pw_bias, float* out, int64_t B, int64_t L,
                                       int64_t C, int64_t Cout, const int64_t* dil, int n,
                                       int num_threads) {
  DT_CHECK(n >= 1 && n <= kMaxDilations, "multi_dilation_dwconv: 1 to 4 dilations supported");
  if (B * L * Cout == 0) return;
  const int64_t K = n * C;
  int64_t H = 0;  // halo: the largest dilation
  for (int i = 0; i < n; ++i) H = std::max(H, dil[i]);

  // Shrink the time tile (in whole panels) when there would be too few tasks for the threads.
  int64_t tile = kTile;
  while (tile > kNR && B * ((L + tile - 1) / tile) < 2 * std::max(num_threads, 1)) tile -= kNR;
  const int64_t tiles_per_sample = (L + tile - 1) / tile;
  const int64_t TT = tile + 2 * H;  // transposed tile length, halo included

  parallel_for(B * tiles_per_sample, 1, num_threads, [&](int64_t begin, int64_t end) {
    // Grows and is kept: the next call (the next diffusion step) reuses the same memory.
    thread_local std::vector<float> scratch;
    scratch.resize(C * TT + tile * K);
    float* xT = scratch.data();
    float* Dp = xT + C * TT;
    for (int64_t task = begin; task < end; ++task) {
      const int64_t b = task / tiles_per_sample;
      const int64_t t0 = (task % tiles_per_sample) * tile;
      const int64_t rows = std::min(tile, L - t0);
      const int64_t panels = (rows + kNR - 1) / kNR;
      transpose_tile(x + b * L * C, L, C, t0, H, TT, xT);
      depthwise_panels(xT, TT, H, C, panels, dw_weight, dw_bias, dil, n, Dp);
      float* ob = out + (b * L + t0) * Cout;
      for (int64_t o0 = 0; o0 < Cout; o0 += kMR) {
        const int valid = static_cast<int>(std::min<int64_t>(kMR, Cout - o0));
        const float* w_rows[kMR];
        for (int r = 0; r < kMR; ++r) w_rows[r] = pw_weight + (o0 + std::min(r, valid - 1)) * K;
        // These 6 weight rows stay in L1 while the tile's panels stream past them from L2.
        for (int64_t p = 0; p < panels; ++p)
          micro_kernel(w_rows, Dp + p * K * kNR, K, pw_bias ? pw_bias + o0 : nullptr,
                       ob + p * kNR * Cout + o0, Cout, valid,
                       static_cast<int>(std::min<int64_t>(kNR, rows - p * kNR)));
      }
    }
  });
}

void local_dwconv_forward_cpu(const float* x, const float* weight, const float* bias, float* out,
                              int64_t B, int64_t L, int64_t C, int64_t K, int num_threads) {
  if (B * L * C == 0) return;
  const int64_t half = K / 2;
  std::vector<float> wT(K * C);  // (K, C): contiguous channels per tap
  for (int64_t c = 0; c < C; ++c)
    for (int64_t j = 0; j < K; ++j) wT[j * C + c] = weight[c * K + j];
  const float* w = wT.data();
  const int64_t grain = streaming_grain(C);
  parallel_for(B * L, grain, num_threads, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t b = r / L, t = r % L;
      float* __restrict__ o = out + r * C;
      if (bias)
        std::memcpy(o, bias, C * sizeof(float));
      else
        std::fill(o, o + C, 0.f);
      const int64_t j0 = std::max<int64_t>(0, half - t);
      const int64_t j1 = std::min<int64_t>(K, L - t + half);
      for (int64_t j = j0; j < j1; ++j) {
        const float* __restrict__ xr = x + (b * L + t + j - half) * C;
        const float* __restrict__ wj = w + j * C;
        for (int64_t c = 0; c < C; ++c) o[c] += wj[c] * xr[c];
      }
    }
  });
}

}  // namespace dt
