// C++ CPU kernels of the depthwise temporal convolutions (see dwconv.h for the maths).
//
// multi_dilation_dwconv is a small GEMM per time tile: each task takes one (batch, tile of kTile
// time steps), computes the (tile, n*C) depthwise block into a thread-local buffer straight from
// the input (tile + halo rows, hot in L1/L2), then multiplies it by the pointwise weight with a
// register-blocked 6x16 micro-kernel. The weight is packed once per call into 16-column panels
// (K-major) so the micro-kernel streams it with plain vector loads.
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

constexpr int kMR = 6;      // rows (time steps) per micro-tile
constexpr int kNR = 16;     // output channels per micro-tile (two v8)
constexpr int64_t kKc = 256;  // depth of one K block: a 256x16 weight panel (16 KiB) stays in L1

inline v8 load8(const float* p) {
  v8 v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
inline void store8(float* p, v8 v) { std::memcpy(p, &v, sizeof(v)); }
inline v8 splat(float s) { return v8{s, s, s, s, s, s, s, s}; }

// C[rows x cols] (+)= A[kMR x k] * Bp[k x kNR] (+ bias on the first K block).
// A: row-major with leading dimension lda (rows past `rows` are valid memory, ignored on store);
// Bp: a packed panel, kNR floats per k; bias: kNR floats or null.
void micro_kernel(const float* A, int64_t lda, const float* Bp, int64_t k, const float* bias,
                  bool accumulate, float* C, int64_t ldc, int rows, int cols) {
  v8 acc[kMR][2];
  const v8 b0 = bias ? load8(bias) : splat(0.f);
  const v8 b1 = bias ? load8(bias + 8) : splat(0.f);
#pragma GCC unroll 6
  for (int r = 0; r < kMR; ++r) {
    acc[r][0] = b0;
    acc[r][1] = b1;
  }
  for (int64_t p = 0; p < k; ++p) {
    const v8 w0 = load8(Bp + p * kNR);
    const v8 w1 = load8(Bp + p * kNR + 8);
#pragma GCC unroll 6
    for (int r = 0; r < kMR; ++r) {
      const v8 a = splat(A[r * lda + p]);
      acc[r][0] += a * w0;
      acc[r][1] += a * w1;
    }
  }
  if (rows == kMR && cols == kNR) {
#pragma GCC unroll 6
    for (int r = 0; r < kMR; ++r) {
      float* c = C + r * ldc;
      if (accumulate) {
        acc[r][0] += load8(c);
        acc[r][1] += load8(c + 8);
      }
      store8(c, acc[r][0]);
      store8(c + 8, acc[r][1]);
    }
    return;
  }
  float tmp[kMR][kNR];
  for (int r = 0; r < kMR; ++r) {
    store8(tmp[r], acc[r][0]);
    store8(tmp[r] + 8, acc[r][1]);
  }
  for (int r = 0; r < rows; ++r)
    for (int j = 0; j < cols; ++j) C[r * ldc + j] = (accumulate ? C[r * ldc + j] : 0.f) + tmp[r][j];
}

// Bp[panel][k][j] = W[panel * kNR + j, k] (zero past Cout): K-major 16-wide panels of W (Cout, K).
void pack_weight(const float* W, int64_t Cout, int64_t K, float* Bp, int num_threads) {
  const int64_t panels = (Cout + kNR - 1) / kNR;
  parallel_for(panels, 1, num_threads, [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) {
      float* dst = Bp + p * K * kNR;
      for (int j = 0; j < kNR; ++j) {
        const int64_t o = p * kNR + j;
        if (o < Cout) {
          const float* src = W + o * K;
          for (int64_t k = 0; k < K; ++k) dst[k * kNR + j] = src[k];
        } else {
          for (int64_t k = 0; k < K; ++k) dst[k * kNR + j] = 0.f;
        }
      }
    }
  });
}

// D[t, i*C + c] for t in [0, rows): the depthwise outputs of time steps t0 + t of sample xb.
// wT: (n, 3, C) transposed depthwise weights, so every inner loop runs over contiguous channels.
void depthwise_block(const float* xb, int64_t L, int64_t C, int64_t t0, int64_t rows,
                     const float* wT, const float* dw_bias, const int64_t* dil, int n, float* D,
                     int64_t ldd) {
  for (int64_t t = 0; t < rows; ++t) {
    const int64_t tt = t0 + t;
    const float* xc = xb + tt * C;
    for (int i = 0; i < n; ++i) {
      const float* __restrict__ w = wT + i * 3 * C;
      float* __restrict__ d = D + t * ldd + i * C;
      const float* __restrict__ bi = dw_bias + i * C;
      const int64_t dl = dil[i];
      const bool has_left = tt - dl >= 0, has_right = tt + dl < L;
      const float* xl = xc - dl * C;
      const float* xr = xc + dl * C;
      if (has_left && has_right) {
        for (int64_t c = 0; c < C; ++c)
          d[c] = bi[c] + w[c] * xl[c] + w[C + c] * xc[c] + w[2 * C + c] * xr[c];
      } else {
        for (int64_t c = 0; c < C; ++c) d[c] = bi[c] + w[C + c] * xc[c];
        if (has_left)
          for (int64_t c = 0; c < C; ++c) d[c] += w[c] * xl[c];
        if (has_right)
          for (int64_t c = 0; c < C; ++c) d[c] += w[2 * C + c] * xr[c];
      }
    }
  }
}

// Grows, never shrinks: repeated calls (one per diffusion step) reuse the same memory.
std::vector<float>& scratch(int which) {
  thread_local std::vector<float> buffers[2];
  return buffers[which];
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
  const int64_t panels = (Cout + kNR - 1) / kNR;

  // Packed weight, padded bias and transposed depthwise weights live in the calling thread's
  // scratch; the workers only read them.
  std::vector<float>& shared = scratch(0);
  const int64_t packed_size = panels * K * kNR;
  shared.resize(packed_size + panels * kNR + n * 3 * C);
  float* Bp = shared.data();
  float* bias = Bp + packed_size;
  float* wT = bias + panels * kNR;
  pack_weight(pw_weight, Cout, K, Bp, num_threads);
  for (int64_t o = 0; o < panels * kNR; ++o) bias[o] = (pw_bias && o < Cout) ? pw_bias[o] : 0.f;
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < 3; ++j)
      for (int64_t c = 0; c < C; ++c) wT[(i * 3 + j) * C + c] = dw_weight[(i * C + c) * 3 + j];

  // Time tile: 48 rows (8 micro-rows) keeps the (tile, K) block in L2 for K up to ~1.5k; shrink
  // it when there would be too few tasks to keep every thread busy.
  int64_t tile = 48;
  while (tile > kMR && B * ((L + tile - 1) / tile) < 2 * std::max(num_threads, 1)) tile -= kMR;
  const int64_t tiles_per_sample = (L + tile - 1) / tile;

  parallel_for(B * tiles_per_sample, 1, num_threads, [&](int64_t begin, int64_t end) {
    std::vector<float>& D = scratch(1);
    D.resize(tile * K);
    for (int64_t task = begin; task < end; ++task) {
      const int64_t b = task / tiles_per_sample;
      const int64_t t0 = (task % tiles_per_sample) * tile;
      const int64_t rows = std::min(tile, L - t0);
      depthwise_block(x + b * L * C, L, C, t0, rows, wT, dw_bias, dil, n, D.data(), K);
      // Rows past `rows` in the last micro-tile are read but never stored: keep them finite.
      const int64_t padded = (rows + kMR - 1) / kMR * kMR;
      std::fill(D.begin() + rows * K, D.begin() + padded * K, 0.f);
      float* ob = out + (b * L + t0) * Cout;
      for (int64_t k0 = 0; k0 < K; k0 += kKc) {
        const int64_t kc = std::min(kKc, K - k0);
        for (int64_t p = 0; p < panels; ++p) {
          const float* panel = Bp + p * K * kNR + k0 * kNR;
          const int cols = static_cast<int>(std::min<int64_t>(kNR, Cout - p * kNR));
          for (int64_t m = 0; m < rows; m += kMR) {
            micro_kernel(D.data() + m * K + k0, K, panel, kc, k0 == 0 ? bias + p * kNR : nullptr,
                         k0 > 0, ob + m * Cout + p * kNR, Cout,
                         static_cast<int>(std::min<int64_t>(kMR, rows - m)), cols);
          }
        }
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
  const int64_t grain = std::max<int64_t>(1, 8192 / std::max<int64_t>(C, 1));
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
