// The attention kernel shared by region_attention_cuda.cu and causal_cross_attention_cuda.cu.
//
// Deliberately simple (it could not be run on a GPU when written, so obviousness beats speed):
// one thread per query row keeps its q row and output accumulator in registers, the block loads
// tiles of kKeyTile keys and values into shared memory (fp32), and each thread runs the online
// softmax over the tile's keys one at a time. No L x S matrix exists anywhere. Key tiles past the
// block's last visible row are skipped.
#pragma once

#include <cfloat>
#include <string>
#include <type_traits>

#include "cuda_common.cuh"

namespace dt {
namespace attn_cuda {

constexpr int kQueryTile = 64;  // threads per block = query rows per block
constexpr int kKeyTile = 32;

// Strided view of one tensor as (batch, row, head, dim): element (b, r, h, i) is at
// b * batch + r * row + h * head + i.
struct Layout {
  int64_t batch, row, head;
};

struct Problem {
  int64_t B, L, S, H;
  Layout q, k, v, out;
  bool causal;        // frame j sees rows < min(S, 2 (j + 1 + lookahead)); else all S rows
  int64_t lookahead;
  float scale;        // softmax scale applied to q . k
};

__device__ __forceinline__ int64_t visible_rows(const Problem& p, int64_t j) {
  if (!p.causal) return p.S;
  const int64_t n = 2 * (j + 1 + p.lookahead);
  return n < p.S ? n : p.S;
}

// grid: (ceil(L / kQueryTile), B * H); block: kQueryTile threads.
template <typename TQ, typename TKV, typename TO, int HD>
__global__ void __launch_bounds__(kQueryTile)
    attention_kernel(const TQ* __restrict__ q, const TKV* __restrict__ k,
                     const TKV* __restrict__ v, TO* __restrict__ out, Problem p) {
  __shared__ float ks[kKeyTile][HD];
  __shared__ float vs[kKeyTile][HD];

  const int64_t bh = blockIdx.y, b = bh / p.H, h = bh % p.H;
  const int64_t l0 = static_cast<int64_t>(blockIdx.x) * kQueryTile;
  const int64_t l = l0 + threadIdx.x;
  const bool active = l < p.L;

  float qr[HD], acc[HD];
  float m = -FLT_MAX, denom = 0.f;
  if (active) {
    const TQ* qp = q + b * p.q.batch + l * p.q.row + h * p.q.head;
#pragma unroll
    for (int i = 0; i < HD; ++i) {
      qr[i] = to_float(qp[i]) * p.scale;
      acc[i] = 0.f;
    }
  }
  const int64_t last = (l0 + kQueryTile < p.L ? l0 + kQueryTile : p.L) - 1;
  const int64_t horizon = visible_rows(p, last);           // rows any thread of the block needs
  const int64_t mine = active ? visible_rows(p, l) : 0;    // rows this thread may see

  const TKV* kb = k + b * p.k.batch + h * p.k.head;
  const TKV* vb = v + b * p.v.batch + h * p.v.head;
  for (int64_t s0 = 0; s0 < horizon; s0 += kKeyTile) {
    const int count = static_cast<int>(horizon - s0 < kKeyTile ? horizon - s0 : kKeyTile);
    __syncthreads();  // the previous tile is no longer read
    for (int e = threadIdx.x; e < count * HD; e += kQueryTile) {
      const int s = e / HD, i = e % HD;
      ks[s][i] = to_float(kb[(s0 + s) * p.k.row + i]);
      vs[s][i] = to_float(vb[(s0 + s) * p.v.row + i]);
    }
    __syncthreads();
    if (!active) continue;
    const int64_t visible = mine - s0;
    const int n = static_cast<int>(visible < count ? visible : count);
    for (int s = 0; s < n; ++s) {
      float score = 0.f;
#pragma unroll
      for (int i = 0; i < HD; ++i) score += qr[i] * ks[s][i];
      if (score > m) {  // rescale the running sums to the new maximum
        const float alpha = expf(m - score);
        denom *= alpha;
#pragma unroll
        for (int i = 0; i < HD; ++i) acc[i] *= alpha;
        m = score;
      }
      const float w = expf(score - m);
      denom += w;
#pragma unroll
      for (int i = 0; i < HD; ++i) acc[i] += w * vs[s][i];
    }
  }
  if (active) {
    TO* op = out + b * p.out.batch + l * p.out.row + h * p.out.head;
    const float inv = 1.f / denom;
#pragma unroll
    for (int i = 0; i < HD; ++i) op[i] = from_float<TO>(acc[i] * inv);
  }
}

template <typename TQ, typename TKV, typename TO>
void launch_attention(const TQ* q, const TKV* k, const TKV* v, TO* out, const Problem& p,
                      int64_t head_dim, cudaStream_t stream, const char* what) {
  if (p.B * p.H * p.L == 0) return;
  DT_CHECK(p.B * p.H <= 65535, std::string(what) + ": batch * heads must be <= 65535");
  const dim3 grid(static_cast<unsigned>((p.L + kQueryTile - 1) / kQueryTile),
                  static_cast<unsigned>(p.B * p.H));
  const auto run = [&](auto tag) {
    constexpr int HD = decltype(tag)::value;
    attention_kernel<TQ, TKV, TO, HD><<<grid, kQueryTile, 0, stream>>>(q, k, v, out, p);
  };
  switch (head_dim) {
    case 16: run(std::integral_constant<int, 16>{}); break;
    case 32: run(std::integral_constant<int, 32>{}); break;
    case 64: run(std::integral_constant<int, 64>{}); break;
    case 128: run(std::integral_constant<int, 128>{}); break;
    default:
      throw std::invalid_argument(std::string(what) +
                                  ": the CUDA kernel supports head dims 16, 32, 64, 128; got " +
                                  std::to_string(head_dim));
  }
  cuda_check(cudaGetLastError(), what);
}

}  // namespace attn_cuda
}  // namespace dt
