// The CUDA attention's per-thread pieces (attention_cuda.cuh: split_keys, split_range,
// attend_tile, partial_index, combine_row, attention_splits) run on the CPU the way the kernels
// use them: every block of the grid (query tile x batch-head x key split) loads its key tiles as
// the kernel does, every row folds them in with attend_tile and writes its partial state, and
// combine_row merges the splits. The shared-memory staging and the barriers are the kernel's own
// (unchanged from the version run on an H200) and are not emulated here.
// Compared with a plain softmax attention, for region attention (every row sees all L keys) and
// causal cross-attention (frame j sees 2 (j + 1 + lookahead) audio rows), with 1 to 16 splits.
// Built and run by test_cuda_host.py. Prints "ok" or one "FAIL ..." line, exit status 1.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "attention_cuda.cuh"

using namespace dt;
using namespace dt::attn_cuda;

template <int HD>
double worst_error(int64_t B, int64_t H, int64_t L, int64_t S, bool causal, int64_t lookahead,
                   int splits, unsigned seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal;
  // (B, rows, H, HD) like the cross-attention tensors.
  std::vector<float> q(B * L * H * HD), k(B * S * H * HD), v(B * S * H * HD);
  for (auto& x : q) x = normal(gen);
  for (auto& x : k) x = normal(gen);
  for (auto& x : v) x = normal(gen);
  Problem p;
  p.B = B, p.L = L, p.S = S, p.H = H;
  p.q = p.out = {L * H * HD, H * HD, HD};
  p.k = p.v = {S * H * HD, H * HD, HD};
  p.causal = causal;
  p.lookahead = lookahead;
  p.scale = 1.f / std::sqrt(static_cast<float>(HD));
  const Split sp{splits, splits > 1 ? split_keys(key_extent(p), splits) : S, nullptr};
  // NaN-filled, with a guard after it: a partial state never written, or written out of
  // place, shows up.
  const int64_t floats = partial_floats(B, H, L, HD, splits), rows = B * H * L;
  std::vector<float> partial(floats + 64, std::nanf(""));
  std::vector<float> out(B * L * H * HD, 12345.f);  // sentinel: unwritten rows show up
  static float ks[kKeyTile][HD], vs[kKeyTile][HD];

  for (int64_t bh = 0; bh < B * H; ++bh)
    for (int64_t l0 = 0; l0 < L; l0 += kQueryTile)
      for (int split = 0; split < splits; ++split) {  // one block of attention_kernel
        const int64_t b = bh / H, h = bh % H;
        const int64_t last = std::min(l0 + kQueryTile, L) - 1;
        const int64_t horizon = visible_rows(p, last);
        int64_t begin, end;
        split_range(split, sp.keys, horizon, begin, end);
        const int rows = static_cast<int>(std::min<int64_t>(kQueryTile, L - l0));
        std::vector<float> m(rows, -FLT_MAX), denom(rows, 0.f), acc(rows * HD, 0.f);
        std::vector<float> qr(rows * HD);
        for (int r = 0; r < rows; ++r)
          for (int i = 0; i < HD; ++i)
            qr[r * HD + i] = q[b * p.q.batch + (l0 + r) * p.q.row + h * p.q.head + i] * p.scale;
        for (int64_t s0 = begin; s0 < end; s0 += kKeyTile) {
          const int count = static_cast<int>(std::min<int64_t>(end - s0, kKeyTile));
          for (int s = 0; s < count; ++s)
            for (int i = 0; i < HD; ++i) {
              ks[s][i] = k[b * p.k.batch + (s0 + s) * p.k.row + h * p.k.head + i];
              vs[s][i] = v[b * p.v.batch + (s0 + s) * p.v.row + h * p.v.head + i];
            }
          for (int r = 0; r < rows; ++r) {
            const int64_t visible = visible_rows(p, l0 + r) - s0;
            const int n = static_cast<int>(visible < count ? visible : count);
            float (&qrow)[HD] = *reinterpret_cast<float(*)[HD]>(&qr[r * HD]);
            float (&arow)[HD] = *reinterpret_cast<float(*)[HD]>(&acc[r * HD]);
            attend_tile<HD>(qrow, ks, vs, n, m[r], denom[r], arow);
          }
        }
        for (int r = 0; r < rows; ++r) {
          const int64_t l = l0 + r;
          if (splits > 1) {
            const int64_t row = bh * L + l;
            partial[partial_index(split, row, 0, rows, HD)] = m[r];
            partial[partial_index(split, row, 1, rows, HD)] = denom[r];
            for (int i = 0; i < HD; ++i)
              partial[partial_index(split, row, 2 + i, rows, HD)] = acc[r * HD + i];
          } else {
            for (int i = 0; i < HD; ++i)
              out[b * p.out.batch + l * p.out.row + h * p.out.head + i] =
                  acc[r * HD + i] / denom[r];
          }
        }
      }
  if (splits > 1) {  // combine_kernel
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t l = r % L, bh = r / L, b = bh / H, h = bh % H;
      combine_row<HD, float>(partial.data(), r, rows, splits,
                             out.data() + b * p.out.batch + l * p.out.row + h * p.out.head);
    }
    for (int64_t i = floats; i < floats + 64; ++i)
      if (!std::isnan(partial[i])) return 1e30;  // written past partial_floats
  }

  double worst = 0;  // against a plain two-pass softmax in double precision
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t l = 0; l < L; ++l) {
        const int64_t n = visible_rows(p, l);
        std::vector<double> score(n);
        double top = -1e300, sum = 0;
        for (int64_t s = 0; s < n; ++s) {
          double dot = 0;
          for (int i = 0; i < HD; ++i)
            dot += double(q[((b * L + l) * H + h) * HD + i]) * k[((b * S + s) * H + h) * HD + i];
          score[s] = dot * p.scale;
          top = std::max(top, score[s]);
        }
        for (auto& x : score) sum += (x = std::exp(x - top));
        for (int i = 0; i < HD; ++i) {
          double want = 0;
          for (int64_t s = 0; s < n; ++s) want += score[s] * v[((b * S + s) * H + h) * HD + i];
          want /= sum;
          const double got = out[((b * L + l) * H + h) * HD + i];
          worst = std::max(worst, std::fabs(got - want));
        }
      }
  return worst;
}

template <int HD>
bool check(int64_t B, int64_t H, int64_t L, int64_t S, bool causal, int64_t lookahead) {
  for (int splits : {1, 2, 3, 5, 16}) {
    const double e = worst_error<HD>(B, H, L, S, causal, lookahead, splits,
                                     unsigned(L * 31 + S * 7 + splits));
    if (!(e < 2e-5)) {
      std::printf("FAIL HD=%d B=%ld H=%ld L=%ld S=%ld causal=%d lookahead=%ld splits=%d error %g\n",
                  HD, long(B), long(H), long(L), long(S), int(causal), long(lookahead), splits, e);
      return false;
    }
  }
  return true;
}

int main() {
  bool ok = true;
  // Region attention: S = L; one row, odd lengths, one past a query tile, the model's window.
  for (int64_t L : {1, 3, 64, 65, 250}) ok = ok && check<32>(2, 2, L, L, false, 0);
  ok = ok && check<16>(1, 3, 97, 97, false, 0);
  // Causal cross-attention: S = 2 L (the audio rate), with lookahead, and S < 2 L.
  for (int64_t L : {1, 5, 70, 250}) ok = ok && check<32>(1, 2, L, 2 * L, true, 0);
  ok = ok && check<32>(2, 1, 40, 80, true, 3);
  ok = ok && check<16>(1, 2, 90, 100, true, 1);
  if (!ok) return 1;
  // The plan: no split for a grid that already fills the GPU or for few keys; the paper clip
  // (B 2 x 8 heads x 1325 frames: 336 blocks) on an H200's 132 SMs gets 4; no range is left
  // empty by rounding (4096 keys: 16 ranges of 256; 1325 keys as 16 would leave two empty).
  struct Case { int64_t B, H, L, extent; int sms, want; };
  const Case cases[] = {{2, 8, 1325, 1325, 132, 4},  {2, 8, 250, 250, 132, 4},
                        {2, 8, 40, 40, 132, 1},      {64, 8, 1325, 1325, 132, 1},
                        {1, 1, 4096, 4096, 132, 16}, {2, 8, 1325, 2650, 40, 1},
                        {1, 1, 1325, 1325, 132, 14}};
  for (const Case& c : cases) {
    const int got = attention_splits(c.B, c.H, c.L, c.extent, c.sms);
    const int64_t keys = got > 1 ? split_keys(c.extent, got) : c.extent;
    if (got != c.want || (got - 1) * keys >= c.extent) {
      std::printf("FAIL attention_splits(%ld, %ld, %ld, %ld, %d) = %d, expected %d\n", long(c.B),
                  long(c.H), long(c.L), long(c.extent), c.sms, got, c.want);
      return 1;
    }
  }
  // A NaN in one split's range reaches the output, as it does without a split.
  {
    const int64_t rows = 1;
    float partial[2 * (4 + 2)];
    const float state0[] = {1.f, 2.f, 1.f, 1.f, 1.f, 1.f}, state1[] = {INFINITY, NAN, 0, 0, 0, 0};
    for (int e = 0; e < 6; ++e) {
      partial[partial_index(0, 0, e, rows, 4)] = state0[e];
      partial[partial_index(1, 0, e, rows, 4)] = state1[e];
    }
    float out[4];
    combine_row<4, float>(partial, 0, rows, 2, out);
    if (!std::isnan(out[0])) {
      std::printf("FAIL combine_row dropped a NaN split (got %g)\n", out[0]);
      return 1;
    }
  }
  std::printf("ok\n");
  return 0;
}
