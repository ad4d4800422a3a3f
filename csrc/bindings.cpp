// The one place where the compiled core meets Python. Each op contributes one register_* block;
// tensors arrive as raw addresses (tensor.data_ptr()) and shapes, already validated by
// disenttalk_fast/_bridge.py.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "blas.h"
#include "causal_cross_attention.h"
#include "cuda_info.h"
#include "denoiser_cpu.h"
#include "dwconv.h"
#include "film.h"
#include "parallel.h"
#include "rasterize.h"
#include "region_attention.h"

namespace py = pybind11;
using addr = std::uintptr_t;

namespace {

void register_info(py::module_& m) {
  m.def("cuda_compiled", &dt::cuda_compiled);
  m.def("cuda_architectures", &dt::cuda_architectures);
  m.def("cuda_device_count", &dt::cuda_device_count);
  m.def("cuda_runtime_version", &dt::cuda_runtime_version);
  m.def("use_openmp_runtime", &dt::use_openmp_runtime, py::arg("library_path"));
  m.def("using_openmp_runtime", &dt::using_openmp_runtime);
  m.def("use_blas_library", &dt::use_blas_library, py::arg("library_path"));
  m.def("blas_available", &dt::blas_available);
}

void register_film(py::module_& m) {
  m.def(
      "film_forward_cpu",
      [](addr x, addr g, addr b, addr res, addr out, int64_t B, int64_t L, int64_t C, int threads) {
        py::gil_scoped_release nogil;
        dt::film_forward_cpu(dt::ptr<const float>(x), dt::ptr<const float>(g),
                             dt::ptr<const float>(b), dt::ptr<const float>(res),
                             dt::ptr<float>(out), B, L, C, threads);
      });
  m.def("film_norm_forward_cpu",
        [](addr x, addr g, addr b, addr res, addr nw, addr nb, float eps,
           std::vector<int64_t> groups, addr out, addr normed, int64_t B, int64_t L, int64_t C,
           int threads) {
          py::gil_scoped_release nogil;
          dt::film_norm_forward_cpu(dt::ptr<const float>(x), dt::ptr<const float>(g),
                                    dt::ptr<const float>(b), dt::ptr<const float>(res),
                                    dt::ptr<const float>(nw), dt::ptr<const float>(nb), eps,
                                    groups.data(), static_cast<int>(groups.size()),
                                    dt::ptr<float>(out), dt::ptr<float>(normed), B, L, C,
                                    threads);
        });
#ifdef DT_WITH_CUDA
  m.def("film_norm_forward_cuda",
        [](addr x, addr g, addr b, addr res, addr nw, addr nb, float eps,
           std::vector<int64_t> groups, addr out, addr normed, int64_t B, int64_t L, int64_t C,
           int dtype, addr stream) {
          dt::film_norm_forward_cuda(x, g, b, res, nw, nb, eps, groups.data(),
                                     static_cast<int>(groups.size()), out, normed, B, L, C,
                                     static_cast<dt::DType>(dtype), stream);
        });
  m.def("film_forward_cuda", [](addr x, addr g, addr b, addr res, addr out, int64_t B, int64_t L,
                                int64_t C, int dtype, addr stream) {
    dt::film_forward_cuda(x, g, b, res, out, B, L, C, static_cast<dt::DType>(dtype), stream);
  });
#endif
}

void register_dwconv(py::module_& m) {
  m.def("multi_dilation_dwconv_forward_cpu",
        [](addr x, addr dw_w, addr dw_b, addr pw_w, addr pw_b, addr out, int64_t B, int64_t L,
           int64_t C, int64_t Cout, std::vector<int64_t> dilations, int threads) {
          py::gil_scoped_release nogil;
          dt::multi_dilation_dwconv_forward_cpu(
              dt::ptr<const float>(x), dt::ptr<const float>(dw_w), dt::ptr<const float>(dw_b),
              dt::ptr<const float>(pw_w), dt::ptr<const float>(pw_b), dt::ptr<float>(out), B, L,
              C, Cout, dilations.data(), static_cast<int>(dilations.size()), threads);
        });
  m.def("local_dwconv_forward_cpu", [](addr x, addr w, addr b, addr out, int64_t B, int64_t L,
                                       int64_t C, int64_t K, int threads) {
    py::gil_scoped_release nogil;
    dt::local_dwconv_forward_cpu(dt::ptr<const float>(x), dt::ptr<const float>(w),
                                 dt::ptr<const float>(b), dt::ptr<float>(out), B, L, C, K, threads);
  });
#ifdef DT_WITH_CUDA
  m.def("multi_dilation_dwconv_forward_cuda",
        [](addr x, addr dw_w, addr dw_b, addr pw_w, addr pw_b, addr out, int64_t B, int64_t L,
           int64_t C, int64_t Cout, std::vector<int64_t> dilations, int dtype, addr stream) {
          dt::multi_dilation_dwconv_forward_cuda(x, dw_w, dw_b, pw_w, pw_b, out, B, L, C, Cout,
                                                 dilations.data(),
                                                 static_cast<int>(dilations.size()),
                                                 static_cast<dt::DType>(dtype), stream);
        });
  m.def("local_dwconv_forward_cuda", [](addr x, addr w, addr b, addr out, int64_t B, int64_t L,
                                        int64_t C, int64_t K, int dtype, addr stream) {
    dt::local_dwconv_forward_cuda(x, w, b, out, B, L, C, K, static_cast<dt::DType>(dtype), stream);
  });
#endif
}

void register_rasterize(py::module_& m) {
  m.def("rasterize_cpu", [](addr verts, addr tris, addr attrs, addr out, addr tri_id, int64_t F,
                            int64_t V, int64_t T, int64_t C, int64_t H, int64_t W,
                            bool attrs_shared, float near_z, int threads) {
    py::gil_scoped_release nogil;
    dt::rasterize_cpu(dt::ptr<const float>(verts), dt::ptr<const int32_t>(tris),
                      dt::ptr<const float>(attrs), dt::ptr<float>(out), dt::ptr<int32_t>(tri_id),
                      F, V, T, C, H, W, attrs_shared, near_z, threads);
  });
  m.def("render_vertices_cpu",
        [](addr verts, addr tris, addr albedo, bool albedo_shared, addr rot, addr trans,
           addr gamma, addr screen, addr attrs, int64_t F, int64_t V, int64_t T, float focal,
           float center, float cam_dist, bool shade, int threads) {
          py::gil_scoped_release nogil;
          dt::render_vertices_cpu(dt::ptr<const float>(verts), dt::ptr<const int32_t>(tris),
                                  dt::ptr<const float>(albedo), albedo_shared,
                                  dt::ptr<const float>(rot), dt::ptr<const float>(trans),
                                  dt::ptr<const float>(gamma), dt::ptr<float>(screen),
                                  dt::ptr<float>(attrs), F, V, T, focal, center, cam_dist, shade,
                                  threads);
        });
#ifdef DT_WITH_CUDA
  m.def("rasterize_cuda", [](addr verts, addr tris, addr attrs, addr out, addr tri_id,
                             addr depth_scratch, int64_t F, int64_t V, int64_t T, int64_t C,
                             int64_t H, int64_t W, bool attrs_shared, float near_z, addr stream) {
    dt::rasterize_cuda(verts, tris, attrs, out, tri_id, depth_scratch, F, V, T, C, H, W,
                       attrs_shared, near_z, stream);
  });
#endif
}

// Region weights arrive as lists of addresses, one per region, with the regions' widths.
void register_region_attention(py::module_& m) {
  m.def("region_attention_forward_cpu",
        [](addr x, std::vector<addr> weights, std::vector<addr> biases,
           std::vector<int64_t> widths, addr out, int64_t B, int64_t L, int64_t head_dim,
           float rope_base, int threads) {
          std::vector<const float*> w, b;
          for (addr a : weights) w.push_back(dt::ptr<const float>(a));
          for (addr a : biases) b.push_back(dt::ptr<const float>(a));
          py::gil_scoped_release nogil;
          dt::region_attention_forward_cpu(dt::ptr<const float>(x), w, b, widths,
                                           dt::ptr<float>(out), B, L, head_dim, rope_base,
                                           threads);
        });
#ifdef DT_WITH_CUDA
  m.def("region_attention_forward_cuda",
        [](addr x, std::vector<addr> weights, std::vector<addr> biases,
           std::vector<int64_t> widths, addr workspace, int splits, addr partial, addr out,
           int64_t B, int64_t L, int64_t head_dim, float rope_base, int dtype, addr stream) {
          dt::region_attention_forward_cuda(x, weights, biases, widths, workspace, splits,
                                            partial, out, B, L, head_dim, rope_base,
                                            static_cast<dt::DType>(dtype), stream);
        });
#endif
}

void register_causal_cross_attention(py::module_& m) {
  m.def("causal_cross_attention_forward_cpu",
        [](addr q, addr k, addr v, addr out, int64_t B, int64_t L, int64_t S, int64_t H,
           int64_t D, int64_t lookahead, int threads) {
          py::gil_scoped_release nogil;
          dt::causal_cross_attention_forward_cpu(
              dt::ptr<const float>(q), dt::ptr<const float>(k), dt::ptr<const float>(v),
              dt::ptr<float>(out), B, L, S, H, D, lookahead, threads);
        });
#ifdef DT_WITH_CUDA
  m.def("causal_cross_attention_forward_cuda",
        [](addr q, addr k, addr v, addr out, int64_t B, int64_t L, int64_t S, int64_t H,
           int64_t D, int64_t lookahead, int splits, addr partial, int dtype, addr stream) {
          dt::causal_cross_attention_forward_cuda(q, k, v, out, B, L, S, H, D, lookahead, splits,
                                                  partial, static_cast<dt::DType>(dtype), stream);
        });
  m.def("attention_splits_cuda", &dt::attention_splits_cuda);
  m.def("attention_partial_floats", &dt::attention_partial_floats);
#endif
}

// The whole block stack. `params` holds the first pre-norm's [weight, bias] and then one list
// of addresses per block, in this order (R regions): R qkv weights, R qkv biases, W_f, b_f,
// dw weight, dw bias, pw weight, pw bias, local weight, local bias, W_q, b_q, W_o, b_o, FiLM
// weight, FiLM bias, the following norm's weight and bias, audio keys, audio values. norm_eps
// and norm_groups: the first pre-norm's, then each block's following norm's (cpu_step.py builds
// all of it).
void register_denoiser(py::module_& m) {
  m.def("denoiser_blocks_forward_cpu",
        [](int64_t dim, int64_t head_dim, float rope_base, std::vector<int64_t> widths,
           std::vector<int64_t> dilations, int64_t local_kernel, int64_t lookahead,
           const std::vector<std::vector<addr>>& params, const std::vector<float>& norm_eps,
           const std::vector<std::vector<int64_t>>& norm_groups, addr h, addr temb, addr out,
           int64_t batch, int64_t L, int64_t S, int64_t n_audio, bool halves, int threads) {
          const size_t R = widths.size(), n = params.size();
          DT_CHECK(n >= 2 && params[0].size() == 2 && norm_eps.size() == n &&
                       norm_groups.size() == n,
                   "denoiser_blocks_forward_cpu: need the first norm, then one address list, "
                   "norm eps and group list per block");
          auto f = [](addr a) { return dt::ptr<const float>(a); };
          dt::DenoiserShape shape{dim,          head_dim,  rope_base, std::move(widths),
                                  std::move(dilations), local_kernel, lookahead};
          dt::NormParams norm0{f(params[0][0]), f(params[0][1]), norm_eps[0], norm_groups[0]};
          std::vector<dt::DenoiserBlockParams> blocks(n - 1);
          for (size_t i = 1; i < n; ++i) {
            const auto& a = params[i];
            DT_CHECK(a.size() == 2 * R + 18,
                     "denoiser_blocks_forward_cpu: wrong number of block addresses");
            auto& p = blocks[i - 1];
            for (size_t r = 0; r < R; ++r) {
              p.qkv_weight.push_back(f(a[r]));
              p.qkv_bias.push_back(f(a[R + r]));
            }
            size_t j = 2 * R;
            p.fuse_weight = f(a[j++]), p.fuse_bias = f(a[j++]);
            p.dw_weight = f(a[j++]), p.dw_bias = f(a[j++]);
            p.pw_weight = f(a[j++]), p.pw_bias = f(a[j++]);
            p.local_weight = f(a[j++]), p.local_bias = f(a[j++]);
            p.q_weight = f(a[j++]), p.q_bias = f(a[j++]);
            p.out_weight = f(a[j++]), p.out_bias = f(a[j++]);
            p.film_weight = f(a[j++]), p.film_bias = f(a[j++]);
            p.norm.weight = f(a[j++]), p.norm.bias = f(a[j++]);
            p.audio_k = f(a[j++]), p.audio_v = f(a[j++]);
            p.norm.eps = norm_eps[i];
            p.norm.groups = norm_groups[i];
          }
          py::gil_scoped_release nogil;
          dt::denoiser_blocks_forward_cpu(shape, norm0, blocks, dt::ptr<const float>(h),
                                          dt::ptr<const float>(temb), dt::ptr<float>(out), batch,
                                          L, S, n_audio, halves, threads);
        });
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "disenttalk_fast compiled kernels (C++ CPU, CUDA)";
  register_info(m);
  register_film(m);
  register_rasterize(m);
  register_dwconv(m);
  register_region_attention(m);
  register_causal_cross_attention(m);
  register_denoiser(m);
}
