#include "attention_cuda.cuh"
#include "causal_cross_attention.h"

namespace dt {

void causal_cross_attention_forward_cuda(std::uintptr_t q, std::uintptr_t k, std::uintptr_t v,
                                         std::uintptr_t out, int64_t B, int64_t L, int64_t S,
                                         int64_t H, int64_t D, int64_t lookahead, int splits,
                                         std::uintptr_t partial, DType dtype,
                                         std::uintptr_t stream) {
  DT_CHECK(S >= 1, "causal_cross_attention_forward_cuda: S must be >= 1");
  attn_cuda::Problem p;
  p.B = B;
  p.L = L;
  p.S = S;
  p.H = H;
  p.q = p.out = {L * H * D, H * D, D};
  p.k = p.v = {S * H * D, H * D, D};
  p.causal = true;
  p.lookahead = lookahead;
  p.scale = 1.f / sqrtf(static_cast<float>(D));
  DT_DISPATCH_FLOATING(dtype, [&] {
    attn_cuda::launch_attention(ptr<const scalar_t>(q), ptr<const scalar_t>(k),
                                ptr<const scalar_t>(v), ptr<scalar_t>(out), p, D, splits,
                                ptr<float>(partial), as_stream(stream),
                                "causal_cross_attention_forward_cuda");
  });
}

int attention_splits_cuda(int64_t B, int64_t H, int64_t L, int64_t S, bool causal,
                          int64_t lookahead) {
  const int64_t extent = L > 0 ? attn_cuda::visible_rows(L - 1, S, causal, lookahead) : 0;
  return attn_cuda::attention_splits_here(B, H, L, extent);
}

int64_t attention_partial_floats(int64_t B, int64_t H, int64_t L, int64_t head_dim, int splits) {
  return attn_cuda::partial_floats(B, H, L, head_dim, splits);
}

}  // namespace dt
