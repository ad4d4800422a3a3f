#include <algorithm>
#include <memory>
#include <vector>

#include "attention_cpu.h"
#include "causal_cross_attention.h"
#include "parallel.h"

namespace dt {
namespace {

using namespace attn_cpu;

constexpr int64_t kRowsPerFrame = 2;  // audio runs at twice the frame rate

// Number of audio rows frame j may see.
inline int64_t visible_rows(int64_t j, int64_t S, int64_t lookahead) {
  return std::min(S, kRowsPerFrame * (j + 1 + lookahead));
}

// Keys transposed block by block (key_block_index) to (B, H, Sk / kKeyBlock, D, kKeyBlock),
// Sk = S rounded up to whole key blocks (zero-padded), so the score micro-kernel reads
// contiguous keys; done once per call instead of once per query tile.
void transpose_keys(const float* k, float* kT, int64_t B, int64_t S, int64_t Sk, int64_t H,
                    int64_t D, int num_threads) {
  parallel_for(B * H, 1, num_threads, [&](int64_t begin, int64_t end) {
    for (int64_t bh = begin; bh < end; ++bh) {
      const int64_t b = bh / H, h = bh % H;
      const float* src = k + (b * S * H + h) * D;
      float* dst = kT + bh * D * Sk;
      // Eight keys at a time: their rows stay in L1 while every dim writes 8 contiguous floats.
      for (int64_t s0 = 0; s0 < S; s0 += 8) {
        const int64_t n = std::min<int64_t>(8, S - s0);
        float* block = dst + key_block_index(s0, D);
        for (int64_t j = 0; j < D; ++j)
          for (int64_t t = 0; t < n; ++t) block[j * kKeyBlock + t] = src[(s0 + t) * H * D + j];
      }
      if (Sk > S) {
        float* last = dst + key_block_index(Sk - kKeyBlock, D);
        for (int64_t j = 0; j < D; ++j)
          std::fill(last + j * kKeyBlock + S % kKeyBlock, last + (j + 1) * kKeyBlock, 0.f);
      }
    }
  });
}

template <int D>
void attend(const float* q, const float* kT, const float* v, float* out, int64_t B, int64_t L,
            int64_t S, int64_t Sk, int64_t H, int64_t lookahead, int num_threads) {
  const int64_t row = H * D;  // stride between consecutive frames / audio rows of one head
  const int64_t tiles = (L + kQueryTile - 1) / kQueryTile;
  const float q_scale = kLog2e / std::sqrt(static_cast<float>(D));
  parallel_for(B * H * tiles, 1, num_threads, [&](int64_t begin, int64_t end) {
    auto st = std::make_unique<TileState<D>>();
    alignas(32) float qs[kQueryTile * D];
    int counts[kQueryTile];
    for (int64_t task = begin; task < end; ++task) {
      const int64_t tile = task % tiles, bh = task / tiles, b = bh / H, h = bh % H;
      const int64_t l0 = tile * kQueryTile;
      const int nq = static_cast<int>(std::min<int64_t>(kQueryTile, L - l0));
      const float* qb = q + (b * L * H + h) * D;
      const float* kTb = kT + bh * D * Sk;
      const float* vb = v + (b * S * H + h) * D;
      for (int i = 0; i < nq; ++i)
        for (int j = 0; j < D; ++j) qs[i * D + j] = qb[(l0 + i) * row + j] * q_scale;
      std::fill(qs + nq * D, qs + kQueryTile * D, 0.f);
      st->reset();
      // The tile's last frame sees the most rows; blocks past that are skipped entirely, and
      // inside a block each group of rows stops at its own last visible key.
      const int64_t horizon = visible_rows(l0 + nq - 1, S, lookahead);
      for (int64_t k0 = 0; k0 < horizon; k0 += kKeyBlock) {
        const int64_t count = std::min<int64_t>(kKeyBlock, horizon - k0);
        for (int i = 0; i < nq; ++i) {
          const int64_t visible = visible_rows(l0 + i, S, lookahead) - k0;
          counts[i] = static_cast<int>(std::max<int64_t>(0, std::min(visible, count)));
        }
        attend_block<D>(qs, nq, kTb + k0 * D, vb + k0 * row, row, counts, *st);
      }
      for (int i = 0; i < nq; ++i) st->write_row(i, out + ((b * L + l0 + i) * H + h) * D);
    }
  });
}

}  // namespace

void causal_cross_attention_forward_cpu(const float* q, const float* k, const float* v,
                                        float* out, int64_t B, int64_t L, int64_t S, int64_t H,
                                        int64_t D, int64_t lookahead, int num_threads) {
  DT_CHECK(S >= 1, "causal_cross_attention_forward_cpu: S must be >= 1");
  if (B * L * H == 0) return;
  const int64_t Sk = (S + kKeyBlock - 1) / kKeyBlock * kKeyBlock;
  // Per-calling-thread scratch, reused across calls (see region_attention_cpu.cpp).
  thread_local std::vector<float> scratch;
  const size_t need = static_cast<size_t>(B * H * D * Sk);
  if (scratch.size() < need) scratch.resize(need);
  dispatch_head_dim(D, "causal_cross_attention", [&](auto tag) {
    transpose_keys(k, scratch.data(), B, S, Sk, H, D, num_threads);
    attend<decltype(tag)::value>(q, scratch.data(), v, out, B, L, S, Sk, H, lookahead,
                                 num_threads);
  });
}

}  // namespace dt
