#include <algorithm>
#include <memory>

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

template <int D>
void attend(const float* q, const float* k, const float* v, float* out, int64_t B, int64_t L,
            int64_t S, int64_t H, int64_t lookahead, int num_threads) {
  const int64_t row = H * D;  // stride between consecutive frames / audio rows of one head
  const int64_t tiles = (L + kQueryTile - 1) / kQueryTile;
  const float q_scale = kLog2e / std::sqrt(static_cast<float>(D));
  parallel_for(B * H * tiles, 1, num_threads, [&](int64_t begin, int64_t end) {
    auto st = std::make_unique<TileState<D>>();
    alignas(32) float qs[kQueryTile * D];
    alignas(32) float kT[D * kKeyBlock];
    int counts[kQueryTile];
    for (int64_t task = begin; task < end; ++task) {
      const int64_t tile = task % tiles, bh = task / tiles, b = bh / H, h = bh % H;
      const int64_t l0 = tile * kQueryTile;
      const int nq = static_cast<int>(std::min<int64_t>(kQueryTile, L - l0));
      const float* qb = q + (b * L * H + h) * D;
      const float* kb = k + (b * S * H + h) * D;
      const float* vb = v + (b * S * H + h) * D;
      for (int i = 0; i < nq; ++i)
        for (int j = 0; j < D; ++j) qs[i * D + j] = qb[(l0 + i) * row + j] * q_scale;
      std::fill(qs + nq * D, qs + kQueryTile * D, 0.f);
      st->reset();
      // The tile's last frame sees the most rows; blocks past that are skipped entirely.
      const int64_t horizon = visible_rows(l0 + nq - 1, S, lookahead);
      for (int64_t k0 = 0; k0 < horizon; k0 += kKeyBlock) {
        const int64_t count = std::min<int64_t>(kKeyBlock, horizon - k0);
        // Transpose the key block once per tile so scores vectorise over keys.
        for (int64_t s = 0; s < count; ++s)
          for (int j = 0; j < D; ++j) kT[j * kKeyBlock + s] = kb[(k0 + s) * row + j];
        for (int j = 0; j < D; ++j)
          std::fill(kT + j * kKeyBlock + count, kT + (j + 1) * kKeyBlock, 0.f);
        for (int i = 0; i < nq; ++i) {
          const int64_t visible = visible_rows(l0 + i, S, lookahead) - k0;
          counts[i] = static_cast<int>(std::max<int64_t>(0, std::min(visible, count)));
        }
        attend_block<D>(qs, nq, kT, kKeyBlock, vb + k0 * row, row, counts, *st);
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
  dispatch_head_dim(D, "causal_cross_attention", [&](auto tag) {
    attend<decltype(tag)::value>(q, k, v, out, B, L, S, H, lookahead, num_threads);
  });
}

}  // namespace dt
