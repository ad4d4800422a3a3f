// The attention kernel shared by region_attention_cuda.cu and causal_cross_attention_cuda.cu.
//
// Deliberately simple (it could not be run on a GPU when written, so obviousness beats speed):
// one thread per query row keeps its q row and output accumulator in registers, the block loads
// tiles of kKeyTile keys and values into shared memory (fp32), and each thread runs the online
// softmax over the tile's keys one at a time. No L x S matrix exists anywhere. Key tiles past the
// block's last visible row are skipped.
//
// Split keys: one block per (query tile, batch x head) gave an H200 336 blocks of 64 threads at
// the paper clip (B 2 x 8 heads x 1325 frames), about five warps per SM. When the grid would not
// give every SM kBlocksPerSm blocks, each query tile's keys are split into `splits` ranges, one
// block each (grid z); every block writes its rows' partial softmax state (running max, sum,
// unnormalised output) to a workspace and combine_kernel merges the ranges. The per-thread pieces
// (attention_splits, split_keys, split_range, attend_tile, partial_index, combine_row) are
// host-callable and checked on the CPU against a plain softmax
// (python_tests/cuda_host/attention_split.cu).
#pragma once

#include <algorithm>
#include <cfloat>
#include <string>
#include <type_traits>

#include "cuda_common.cuh"

namespace dt {
namespace attn_cuda {

constexpr int kQueryTile = 64;  // threads per block = query rows per block
constexpr int kKeyTile = 32;
constexpr int kMinSplitKeys = 2 * kKeyTile;  // a split below this costs more than it saves
constexpr int kMaxSplits = 16;
constexpr int kBlocksPerSm = 8;  // 16 warps of the 64 an SM can hold

// Rows of keys query row j may see: min(S, 2 (j + 1 + lookahead)) for the causal
// cross-attention (audio runs at twice the frame rate), all S otherwise.
__host__ __device__ __forceinline__ int64_t visible_rows(int64_t j, int64_t S, bool causal,
                                                         int64_t lookahead) {
  if (!causal) return S;
  const int64_t n = 2 * (j + 1 + lookahead);
  return n < S ? n : S;
}

// Keys per split: extent / splits rounded up to whole tiles, so every split but the last is full.
__host__ __device__ inline int64_t split_keys(int64_t extent, int splits) {
  const int64_t per = (extent + splits - 1) / splits;
  return (per + kKeyTile - 1) / kKeyTile * kKeyTile;
}

// Key ranges per query tile (see the file comment) for `extent` keys (the most any query row
// sees): enough for kBlocksPerSm blocks per SM, at most one per kMinSplitKeys keys, at most
// kMaxSplits, and no range left empty by the rounding of split_keys.
__host__ __device__ inline int attention_splits(int64_t B, int64_t H, int64_t L, int64_t extent,
                                                int sms) {
  const int64_t blocks = (L + kQueryTile - 1) / kQueryTile * B * H;
  if (blocks <= 0 || extent <= 0) return 1;
  int64_t n = (kBlocksPerSm * static_cast<int64_t>(sms) + blocks - 1) / blocks;
  const int64_t by_keys = (extent + kMinSplitKeys - 1) / kMinSplitKeys;
  n = n < by_keys ? n : by_keys;
  n = n < kMaxSplits ? n : kMaxSplits;
  if (n <= 1) return 1;
  const int64_t keys = split_keys(extent, static_cast<int>(n));
  return static_cast<int>((extent + keys - 1) / keys);
}

// Partial state of query row r (of rows = B H L) in split `split`: element e (0: running max,
// 1: sum, 2 + i: unnormalised output i) at partial[partial_index(...)]. Element-major, so the
// threads of a warp (consecutive rows) write and read consecutive floats.
__host__ __device__ __forceinline__ int64_t partial_index(int split, int64_t r, int e,
                                                          int64_t rows, int head_dim) {
  return (static_cast<int64_t>(split) * (head_dim + 2) + e) * rows + r;
}

// Floats of partial state a split launch needs: (HD + 2) per query row per split.
inline int64_t partial_floats(int64_t B, int64_t H, int64_t L, int64_t head_dim, int splits) {
  return splits > 1 ? static_cast<int64_t>(splits) * B * H * L * (head_dim + 2) : 0;
}

// The keys [begin, end) that split `split` covers of a block whose rows see at most `horizon`.
__host__ __device__ inline void split_range(int split, int64_t keys, int64_t horizon,
                                            int64_t& begin, int64_t& end) {
  begin = split * keys;
  end = begin + keys < horizon ? begin + keys : horizon;
}

// The online-softmax update of one query row (q pre-scaled) by the first n rows of a key / value
// tile: running max m, sum denom and unnormalised output acc.
template <int HD>
__host__ __device__ __forceinline__ void attend_tile(const float (&qr)[HD], const float (*ks)[HD],
                                                     const float (*vs)[HD], int n, float& m,
                                                     float& denom, float (&acc)[HD]) {
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

// Query row r's output from its `splits` partial states (partial_index). A split that saw no key
// (sum exactly 0) adds nothing; a NaN or inf anywhere propagates to the output as it would
// without the split.
template <int HD, typename TO>
__host__ __device__ __forceinline__ void combine_row(const float* partial, int64_t r,
                                                     int64_t rows, int splits, TO* out) {
  float top = -FLT_MAX;
  for (int sp = 0; sp < splits; ++sp) {
    const float m = partial[partial_index(sp, r, 0, rows, HD)];
    if (partial[partial_index(sp, r, 1, rows, HD)] != 0.f && !(m <= top)) top = m;
  }
  float denom = 0.f, acc[HD];
#pragma unroll
  for (int i = 0; i < HD; ++i) acc[i] = 0.f;
  for (int sp = 0; sp < splits; ++sp) {
    const float sum = partial[partial_index(sp, r, 1, rows, HD)];
    if (sum == 0.f) continue;
    const float w = expf(partial[partial_index(sp, r, 0, rows, HD)] - top);
    denom += sum * w;
#pragma unroll
    for (int i = 0; i < HD; ++i) acc[i] += partial[partial_index(sp, r, 2 + i, rows, HD)] * w;
  }
  const float inv = 1.f / denom;
#pragma unroll
  for (int i = 0; i < HD; ++i) out[i] = from_float<TO>(acc[i] * inv);
}

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

__host__ __device__ __forceinline__ int64_t visible_rows(const Problem& p, int64_t j) {
  return visible_rows(j, p.S, p.causal, p.lookahead);
}

// The most keys any query row sees: what the split plan divides.
__host__ __device__ __forceinline__ int64_t key_extent(const Problem& p) {
  return p.L > 0 ? visible_rows(p, p.L - 1) : 0;
}

// How the keys are split: `count` ranges of `keys` keys, the partial states in `partial` (query
// row r = (b H + h) L + l, see partial_index). count 1: one range covering every key, the output
// written directly.
struct Split {
  int count;
  int64_t keys;
  float* partial;
};

// grid: (ceil(L / kQueryTile), B * H, split.count); block: kQueryTile threads.
template <typename TQ, typename TKV, typename TO, int HD>
__global__ void __launch_bounds__(kQueryTile)
    attention_kernel(const TQ* __restrict__ q, const TKV* __restrict__ k,
                     const TKV* __restrict__ v, TO* __restrict__ out, Problem p, Split sp) {
  __shared__ float ks[kKeyTile][HD];
  __shared__ float vs[kKeyTile][HD];

  const int64_t bh = blockIdx.y, b = bh / p.H, h = bh % p.H;
  const int64_t l0 = static_cast<int64_t>(blockIdx.x) * kQueryTile;
  const int64_t l = l0 + threadIdx.x;
  const bool active = l < p.L;

  float qr[HD], acc[HD];
  float m = -FLT_MAX, denom = 0.f;
#pragma unroll
  for (int i = 0; i < HD; ++i) qr[i] = acc[i] = 0.f;
  if (active) {
    const TQ* qp = q + b * p.q.batch + l * p.q.row + h * p.q.head;
#pragma unroll
    for (int i = 0; i < HD; ++i) qr[i] = to_float(qp[i]) * p.scale;
  }
  const int64_t last = (l0 + kQueryTile < p.L ? l0 + kQueryTile : p.L) - 1;
  const int64_t horizon = visible_rows(p, last);           // rows any thread of the block needs
  const int64_t mine = active ? visible_rows(p, l) : 0;    // rows this thread may see
  int64_t begin, end;
  split_range(static_cast<int>(blockIdx.z), sp.keys, horizon, begin, end);

  const TKV* kb = k + b * p.k.batch + h * p.k.head;
  const TKV* vb = v + b * p.v.batch + h * p.v.head;
  for (int64_t s0 = begin; s0 < end; s0 += kKeyTile) {
    const int count = static_cast<int>(end - s0 < kKeyTile ? end - s0 : kKeyTile);
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
    attend_tile<HD>(qr, ks, vs, n, m, denom, acc);
  }
  if (!active) return;
  if (sp.count > 1) {
    const int64_t rows = p.B * p.H * p.L, r = bh * p.L + l;
    const int split = static_cast<int>(blockIdx.z);
    sp.partial[partial_index(split, r, 0, rows, HD)] = m;
    sp.partial[partial_index(split, r, 1, rows, HD)] = denom;
#pragma unroll
    for (int i = 0; i < HD; ++i) sp.partial[partial_index(split, r, 2 + i, rows, HD)] = acc[i];
    return;
  }
  TO* op = out + b * p.out.batch + l * p.out.row + h * p.out.head;
  const float inv = 1.f / denom;
#pragma unroll
  for (int i = 0; i < HD; ++i) op[i] = from_float<TO>(acc[i] * inv);
}

// One thread per query row (b, h, l): merges its split.count partial states into the output.
template <typename TO, int HD>
__global__ void combine_kernel(TO* __restrict__ out, Problem p, Split sp) {
  const int64_t rows = p.B * p.H * p.L;
  for (int64_t r = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; r < rows;
       r += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t l = r % p.L, bh = r / p.L, b = bh / p.H, h = bh % p.H;
    combine_row<HD, TO>(sp.partial, r, rows, sp.count,
                        out + b * p.out.batch + l * p.out.row + h * p.out.head);
  }
}

// Runs the attention with `splits` key ranges (attention_splits; 1: no split) and, when
// splits > 1, `partial` holding partial_floats(...) floats allocated by the caller (PyTorch's
// allocator, so that CUDA-graph capture owns it).
template <typename TQ, typename TKV, typename TO>
void launch_attention(const TQ* q, const TKV* k, const TKV* v, TO* out, const Problem& p,
                      int64_t head_dim, int splits, float* partial, cudaStream_t stream,
                      const char* what) {
  if (p.B * p.H * p.L == 0) return;
  DT_CHECK(p.B * p.H <= 65535, std::string(what) + ": batch * heads must be <= 65535");
  DT_CHECK(splits >= 1 && splits <= kMaxSplits && (splits == 1 || partial != nullptr),
           std::string(what) + ": bad key split");
  const Split sp{splits, splits > 1 ? split_keys(key_extent(p), splits) : p.S, partial};
  const dim3 grid(static_cast<unsigned>((p.L + kQueryTile - 1) / kQueryTile),
                  static_cast<unsigned>(p.B * p.H), static_cast<unsigned>(splits));
  const auto run = [&](auto tag) {
    constexpr int HD = decltype(tag)::value;
    attention_kernel<TQ, TKV, TO, HD><<<grid, kQueryTile, 0, stream>>>(q, k, v, out, p, sp);
    if (splits > 1) {
      const int64_t rows = p.B * p.H * p.L;
      const unsigned blocks = static_cast<unsigned>(std::min<int64_t>((rows + 127) / 128, 65535));
      combine_kernel<TO, HD><<<blocks, 128, 0, stream>>>(out, p, sp);
    }
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

// attention_splits on the current device for `extent` keys (key_extent).
inline int attention_splits_here(int64_t B, int64_t H, int64_t L, int64_t extent) {
  return attention_splits(B, H, L, extent, current_device_sms("attention: SM count"));
}

}  // namespace attn_cuda
}  // namespace dt
