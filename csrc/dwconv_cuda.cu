// CUDA kernels of the depthwise temporal convolutions (see dwconv.h for the maths).
//
// multi_dilation_dwconv: one block owns kTL time steps of one sample and NB = 64 * COLS output
// channels (COLS = 4: 256 channels, COLS = 1: 64). It walks the input channels in chunks of kKC:
// the chunk's input tile plus the halo (max dilation rows each side) is loaded into shared memory,
// the n depthwise outputs are computed from it into shared memory, and the chunk's slice of the
// pointwise weight is multiplied in with fp32 FMAs (each thread owns an 8 x COLS register tile).
// The (B, L, n*C) concatenation never exists in global memory. With the 256-wide blocks the input
// is read once (Cout <= 256); when that would leave SMs idle (short sequences: B=2, L=250 gives 16
// blocks) the launcher switches to 64-wide blocks, which re-read the tile from L2 per 64 outputs.
// Deliberately simple (SIMT FMAs, no tensor cores): correctness first, it was written without a
// GPU to test on.
#include <algorithm>

#include "cuda_common.cuh"
#include "dwconv.h"

namespace dt {
namespace {

constexpr int kThreads = 256;
constexpr int kTL = 32;       // time steps per block
constexpr int kKC = 8;        // input channels per shared-memory chunk
constexpr int kRowsPerThread = 8;
constexpr int kMaxHalo = 64;  // largest dilation the kernel accepts (shared-memory budget)
static_assert(kTL == (kThreads / 64) * kRowsPerThread, "thread tile mismatch");

struct Dilations {
  int d[kMaxDilations];
  int n;
  int halo;  // max dilation
};

template <typename T, int COLS>
__global__ void __launch_bounds__(kThreads)
    multi_dilation_kernel(const T* __restrict__ x, const T* __restrict__ dw_weight,
                          const T* __restrict__ dw_bias, const T* __restrict__ pw_weight,
                          const T* __restrict__ pw_bias, T* __restrict__ out, int L, int C,
                          int Cout, Dilations dil) {
  constexpr int kNB = 64 * COLS;  // output channels per pass of a block
  extern __shared__ float smem[];
  const int n = dil.n, H = dil.halo;
  const int K = n * C;             // pointwise input width
  const int KCn = n * kKC;         // pointwise rows contributed by one channel chunk
  const int xrows = kTL + 2 * H;
  float* x_s = smem;                         // [xrows][kKC]
  float* d_s = x_s + xrows * kKC;            // [kTL][KCn]
  float* w_s = d_s + kTL * KCn;              // [KCn][kNB + 1] (padded: conflict-free stores)
  const int wld = kNB + 1;

  const int b = blockIdx.z;
  const int t0 = blockIdx.x * kTL;
  const int tid = threadIdx.x;
  const int tx = tid % 64, ty = tid / 64;  // columns tx + 64 j, rows ty * 8 + r
  const T* xb = x + (int64_t)b * L * C;

  for (int o0 = blockIdx.y * kNB; o0 < Cout; o0 += gridDim.y * kNB) {
    float acc[kRowsPerThread][COLS];
#pragma unroll
    for (int j = 0; j < COLS; ++j) {
      const int o = o0 + tx + 64 * j;
      const float bias = (pw_bias != nullptr && o < Cout) ? to_float(pw_bias[o]) : 0.f;
#pragma unroll
      for (int r = 0; r < kRowsPerThread; ++r) acc[r][j] = bias;
    }

    for (int c0 = 0; c0 < C; c0 += kKC) {
      // 1. Input tile + halo, zero outside the sequence ("same" padding) and past C.
      for (int idx = tid; idx < xrows * kKC; idx += kThreads) {
        const int row = idx / kKC, kk = idx % kKC;
        const int t = t0 - H + row, c = c0 + kk;
        x_s[idx] = (t >= 0 && t < L && c < C) ? to_float(xb[(int64_t)t * C + c]) : 0.f;
      }
      // 2. This chunk's pointwise weights, transposed to [k][o]; zero past C and Cout.
      for (int idx = tid; idx < KCn * kNB; idx += kThreads) {
        const int col = idx / KCn, k = idx % KCn;
        const int i = k / kKC, c = c0 + k % kKC, o = o0 + col;
        w_s[k * wld + col] =
            (c < C && o < Cout) ? to_float(pw_weight[(int64_t)o * K + i * C + c]) : 0.f;
      }
      __syncthreads();
      // 3. Depthwise outputs of the tile for every dilation.
      for (int idx = tid; idx < kTL * KCn; idx += kThreads) {
        const int row = idx / KCn, k = idx % KCn;
        const int i = k / kKC, kk = k % kKC, c = c0 + kk;
        float v = 0.f;
        if (c < C) {
          const int d = dil.d[i];
          const T* w = dw_weight + ((int64_t)i * C + c) * 3;
          v = to_float(dw_bias[i * C + c]) + to_float(w[0]) * x_s[(row + H - d) * kKC + kk] +
              to_float(w[1]) * x_s[(row + H) * kKC + kk] +
              to_float(w[2]) * x_s[(row + H + d) * kKC + kk];
        }
        d_s[row * KCn + k] = v;
      }
      __syncthreads();
      // 4. out_tile += D_chunk (kTL x KCn) * W_chunk (KCn x kNB).
      for (int k = 0; k < KCn; ++k) {
        float a[kRowsPerThread], w[COLS];
#pragma unroll
        for (int r = 0; r < kRowsPerThread; ++r) a[r] = d_s[(ty * kRowsPerThread + r) * KCn + k];
#pragma unroll
        for (int j = 0; j < COLS; ++j) w[j] = w_s[k * wld + tx + 64 * j];
#pragma unroll
        for (int r = 0; r < kRowsPerThread; ++r)
#pragma unroll
          for (int j = 0; j < COLS; ++j) acc[r][j] += a[r] * w[j];
      }
      __syncthreads();  // before the next chunk overwrites the shared tiles
    }

#pragma unroll
    for (int r = 0; r < kRowsPerThread; ++r) {
      const int t = t0 + ty * kRowsPerThread + r;
      if (t >= L) continue;
#pragma unroll
      for (int j = 0; j < COLS; ++j) {
        const int o = o0 + tx + 64 * j;
        if (o < Cout) out[((int64_t)b * L + t) * Cout + o] = from_float<T>(acc[r][j]);
      }
    }
  }
}

// local_dwconv, general case (any odd K, any channel count or alignment): one thread per output
// element; the K taps of neighbouring threads overlap, so the repeated reads of x hit L1/L2.
template <typename T>
__global__ void local_dwconv_kernel(const T* __restrict__ x, const T* __restrict__ weight,
                                    const T* __restrict__ bias, T* __restrict__ out, int64_t L,
                                    int64_t C, int K, int64_t total) {
  const int half = K / 2;
  for (int64_t idx = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; idx < total;
       idx += (int64_t)gridDim.x * blockDim.x) {
    const int64_t c = idx % C, row = idx / C, t = row % L;
    float acc = bias != nullptr ? to_float(bias[c]) : 0.f;
    for (int j = 0; j < K; ++j) {
      const int64_t tt = t + j - half;
      if (tt >= 0 && tt < L) acc += to_float(weight[c * K + j]) * to_float(x[idx + (j - half) * C]);
    }
    out[idx] = from_float<T>(acc);
  }
}

// local_dwconv for K = 3, 5, 7: one thread per (sample, run of kLocalRun time steps, group of
// kLocalVec adjacent channels). The general kernel above reads every input K times through the
// cache and spends three 64-bit divisions per output; it reached 18% of an H200's bandwidth. Here
// the thread slides a K-row window down its run in registers, so each input row is loaded once
// per run (plus K - 1 halo rows, mostly L2 hits), kLocalVec channels in one 8- or 16-byte load,
// with the K x kLocalVec weights loaded once and the index arithmetic done once per run. A full
// run is unrolled, so its loads are independent and all in flight together. Consecutive threads
// take consecutive channel groups: a warp's loads and stores are contiguous.
constexpr int kLocalRun = 8;
constexpr int kLocalVec = 4;

// Threads of the run kernel: one per (sample, run, group of V channels).
__host__ __device__ inline int64_t local_run_items(int64_t B, int64_t L, int64_t C, int V) {
  return B * ((L + kLocalRun - 1) / kLocalRun) * (C / V);
}

template <typename T, int V>
struct alignas(sizeof(T) * V) Pack {
  T v[V];
};

// x rows [t, t + 1) of channels [c0, c0 + V) as floats, zeros outside [0, L).
template <typename T, int V>
__host__ __device__ __forceinline__ void load_row(const T* xb, int64_t t, int64_t L, int64_t C,
                                                  int64_t c0, float (&dst)[V]) {
  if (t < 0 || t >= L) {
#pragma unroll
    for (int v = 0; v < V; ++v) dst[v] = 0.f;
    return;
  }
  const Pack<T, V> p = *reinterpret_cast<const Pack<T, V>*>(xb + t * C + c0);
#pragma unroll
  for (int v = 0; v < V; ++v) dst[v] = to_float(p.v[v]);
}

// The work of one thread of local_dwconv_run_kernel: `item` numbers (b, run, channel group) with
// the channel group fastest. Host-callable, so its indexing can be checked on a CPU.
template <typename T, int K, int V>
__host__ __device__ __forceinline__ void local_dwconv_run(const T* __restrict__ x,
                                                          const T* __restrict__ weight,
                                                          const T* __restrict__ bias,
                                                          T* __restrict__ out, int64_t L,
                                                          int64_t C, int64_t item) {
  constexpr int half = K / 2;
  const int64_t groups = C / V, runs = (L + kLocalRun - 1) / kLocalRun;
  const int64_t c0 = (item % groups) * V;
  const int64_t run = (item / groups) % runs, b = item / (groups * runs);
  const int64_t t0 = run * kLocalRun, t1 = t0 + kLocalRun < L ? t0 + kLocalRun : L;
  const T* xb = x + b * L * C;
  T* ob = out + b * L * C;
  float w[K][V], bv[V];
#pragma unroll
  for (int v = 0; v < V; ++v) {
    bv[v] = bias != nullptr ? to_float(bias[c0 + v]) : 0.f;
#pragma unroll
    for (int j = 0; j < K; ++j) w[j][v] = to_float(weight[(c0 + v) * K + j]);
  }
  float win[K][V];  // win[j] = x row t + j - half for the output row t being computed
#pragma unroll
  for (int j = 0; j < K - 1; ++j) load_row<T, V>(xb, t0 + j - half, L, C, c0, win[j]);
  auto step = [&](int64_t t) {
    load_row<T, V>(xb, t + half, L, C, c0, win[K - 1]);
    Pack<T, V> o;
#pragma unroll
    for (int v = 0; v < V; ++v) {
      float acc = bv[v];
#pragma unroll
      for (int j = 0; j < K; ++j) acc += w[j][v] * win[j][v];
      o.v[v] = from_float<T>(acc);
    }
    *reinterpret_cast<Pack<T, V>*>(ob + t * C + c0) = o;
#pragma unroll
    for (int j = 0; j < K - 1; ++j)
#pragma unroll
      for (int v = 0; v < V; ++v) win[j][v] = win[j + 1][v];
  };
  if (t1 - t0 == kLocalRun) {
#pragma unroll
    for (int i = 0; i < kLocalRun; ++i) step(t0 + i);
  } else {  // the sequence's last, partial run
    for (int64_t t = t0; t < t1; ++t) step(t);
  }
}

template <typename T, int K, int V>
__global__ void local_dwconv_run_kernel(const T* __restrict__ x, const T* __restrict__ weight,
                                        const T* __restrict__ bias, T* __restrict__ out,
                                        int64_t L, int64_t C, int64_t items) {
  for (int64_t item = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; item < items;
       item += (int64_t)gridDim.x * blockDim.x)
    local_dwconv_run<T, K, V>(x, weight, bias, out, L, C, item);
}

// Channels per thread of the run kernel: kLocalVec when C and the x / out addresses allow one
// vector load / store per row, else 1.
template <typename T>
int local_vector_width(std::uintptr_t x, std::uintptr_t out, int64_t C) {
  constexpr std::uintptr_t bytes = sizeof(T) * kLocalVec;
  return x % bytes == 0 && out % bytes == 0 && C % kLocalVec == 0 ? kLocalVec : 1;
}

template <typename T, int K>
void launch_local_run(std::uintptr_t x, std::uintptr_t weight, std::uintptr_t bias,
                      std::uintptr_t out, int64_t B, int64_t L, int64_t C, cudaStream_t stream) {
  const int V = local_vector_width<T>(x, out, C);
  const int64_t items = local_run_items(B, L, C, V);
  const int threads = 256;
  const unsigned blocks =
      static_cast<unsigned>(std::min<int64_t>((items + threads - 1) / threads, 65535 * 8));
  auto kernel = V == kLocalVec ? local_dwconv_run_kernel<T, K, kLocalVec>
                               : local_dwconv_run_kernel<T, K, 1>;
  kernel<<<blocks, threads, 0, stream>>>(ptr<const T>(x), ptr<const T>(weight),
                                         ptr<const T>(bias), ptr<T>(out), L, C, items);
}

}  // namespace

void multi_dilation_dwconv_forward_cuda(std::uintptr_t x, std::uintptr_t dw_weight,
                                        std::uintptr_t dw_bias, std::uintptr_t pw_weight,
                                        std::uintptr_t pw_bias, std::uintptr_t out, int64_t B,
                                        int64_t L, int64_t C, int64_t Cout,
                                        const int64_t* dilations, int n_dil, DType dtype,
                                        std::uintptr_t stream) {
  DT_CHECK(n_dil >= 1 && n_dil <= kMaxDilations,
           "multi_dilation_dwconv_forward_cuda: 1 to 4 dilations supported");
  DT_CHECK(L < (1LL << 31) && C * n_dil < (1LL << 31) && Cout < (1LL << 31) && B < 65536,
           "multi_dilation_dwconv_forward_cuda: shape too large");
  if (B * L * Cout == 0) return;
  Dilations dil{};
  dil.n = n_dil;
  for (int i = 0; i < n_dil; ++i) {
    DT_CHECK(dilations[i] >= 1 && dilations[i] <= kMaxHalo,
             "multi_dilation_dwconv_forward_cuda: dilations must be in [1, 64]");
    dil.d[i] = static_cast<int>(dilations[i]);
    dil.halo = std::max(dil.halo, dil.d[i]);
  }
  const int sms = current_device_sms("multi_dilation_dwconv_forward_cuda: SM count");
  const int64_t time_blocks = (L + kTL - 1) / kTL;
  // 256-wide blocks read the input once; fall back to 64-wide ones when there would be fewer
  // blocks than SMs (then more, smaller blocks finish sooner than a few big ones).
  const bool wide = time_blocks * B * ((Cout + 255) / 256) >= sms;
  const int nb = wide ? 256 : 64;
  const int KCn = n_dil * kKC;
  const size_t smem =
      sizeof(float) * ((kTL + 2 * dil.halo) * kKC + kTL * KCn + KCn * (nb + 1));
  const dim3 grid((unsigned)time_blocks, (unsigned)((Cout + nb - 1) / nb), (unsigned)B);
  DT_CHECK(grid.y < 65536, "multi_dilation_dwconv_forward_cuda: Cout too large");
  DT_DISPATCH_FLOATING(dtype, [&] {
    auto kernel = wide ? multi_dilation_kernel<scalar_t, 4> : multi_dilation_kernel<scalar_t, 1>;
    kernel<<<grid, kThreads, smem, as_stream(stream)>>>(
        ptr<const scalar_t>(x), ptr<const scalar_t>(dw_weight), ptr<const scalar_t>(dw_bias),
        ptr<const scalar_t>(pw_weight), ptr<const scalar_t>(pw_bias), ptr<scalar_t>(out),
        (int)L, (int)C, (int)Cout, dil);
  });
  cuda_check(cudaGetLastError(), "multi_dilation_dwconv_forward_cuda launch");
}

void local_dwconv_forward_cuda(std::uintptr_t x, std::uintptr_t weight, std::uintptr_t bias,
                               std::uintptr_t out, int64_t B, int64_t L, int64_t C, int64_t K,
                               DType dtype, std::uintptr_t stream) {
  const int64_t total = B * L * C;
  if (total == 0) return;
  DT_DISPATCH_FLOATING(dtype, [&] {
    const cudaStream_t s = as_stream(stream);
    switch (K) {
      case 3: return launch_local_run<scalar_t, 3>(x, weight, bias, out, B, L, C, s);
      case 5: return launch_local_run<scalar_t, 5>(x, weight, bias, out, B, L, C, s);
      case 7: return launch_local_run<scalar_t, 7>(x, weight, bias, out, B, L, C, s);
      default: {
        const int threads = 256;
        const int64_t blocks = std::min<int64_t>((total + threads - 1) / threads, 65535 * 8);
        local_dwconv_kernel<scalar_t><<<(unsigned)blocks, threads, 0, s>>>(
            ptr<const scalar_t>(x), ptr<const scalar_t>(weight), ptr<const scalar_t>(bias),
            ptr<scalar_t>(out), L, C, (int)K, total);
      }
    }
  });
  cuda_check(cudaGetLastError(), "local_dwconv_forward_cuda launch");
}

}  // namespace dt
