"""Replay one captured CUDA graph per denoising step instead of launching every kernel.

A denoising step (both guidance branches as one batch, the sampler update and the re-imposed
known frames) is a fixed sequence of some hundred small kernels; at the sequence lengths users
run, launching them costs as much as running them. `GraphedStep` captures the step once per
window shape and replays it for every step of every window:

- everything the step reads lives in static buffers: the state z (updated in place by the
  graph), the current step's plan coefficients (timestep, alpha-bars, update coefficients), the
  fresh noise, the window's slice of the audio cache and the window's known values and mask;
- per window, the window's inputs are copied into those buffers (a few MB); per step only the
  noise and the step's coefficients are written (device-to-device copies, no host sync), then
  the graph is replayed.

Noise is drawn outside the graph from the sampler's own generator, so a graphed run gives the
same numbers as an eager one for the same seed. On the CPU the same class runs the step eagerly
through the same buffers, which is how the buffer logic is tested without a GPU.
"""

from __future__ import annotations

import os
from dataclasses import fields

from disenttalk_fast import backends
from disenttalk_fast._torch import torch
from disenttalk_fast.diffusion.guidance import GuidedEps
from disenttalk_fast.model.audio_cache import AudioCache
from disenttalk_fast.sampling.plan import SamplingPlan
from disenttalk_fast.sampling.step import DenoiseStep, Known


_FLOAT_FIELDS = tuple(f.name for f in fields(SamplingPlan)
                      if f.name not in ("name", "timesteps"))


class _CurrentStep:
    """Stands in for one coefficient table of the plan inside the captured step: indexing it
    returns the static scalar that holds the current step's value."""

    def __init__(self, value: torch.Tensor):
        self.value = value

    def __getitem__(self, _index) -> torch.Tensor:
        return self.value


class _CurrentPlan:
    """The plan as the captured step sees it: every table reads the current step's buffers."""

    def __init__(self, plan: SamplingPlan, device: torch.device):
        self.plan = plan.to(device)
        self.floats = torch.stack([getattr(self.plan, n).float() for n in _FLOAT_FIELDS])
        self.float_now = torch.zeros(len(_FLOAT_FIELDS), device=device)
        self.t_now = torch.zeros((), dtype=torch.long, device=device)
        self.timesteps = _CurrentStep(self.t_now)
        for k, name in enumerate(_FLOAT_FIELDS):
            setattr(self, name, _CurrentStep(self.float_now[k]))

    def load(self, i: int) -> None:
        self.t_now.copy_(self.plan.timesteps[i])
        self.float_now.copy_(self.floats[:, i])


class GraphedStep:
    """Drop-in for `DenoiseStep` over windows of one shape: load_window(), start(), step()."""

    def __init__(self, eps_fn: GuidedEps, plan: SamplingPlan, shape: tuple[int, int, int],
                 device: torch.device, use_graph: bool | None = None, warmup: int = 2):
        B, L, N = shape
        self.shape = tuple(shape)
        self.device = torch.device(device)
        self.use_graph = self.device.type == "cuda" if use_graph is None else use_graph
        if self.use_graph and self.device.type != "cuda":
            raise ValueError("GraphedStep: CUDA graphs need a CUDA device")
        sample_window = eps_fn.window(0, L)  # any window: only its shapes are used
        self.cache = AudioCache(tuple(k.clone() for k in sample_window.cache.keys),
                                tuple(v.clone() for v in sample_window.cache.values),
                                sample_window.cache.null_rows)
        self.eps_fn = GuidedEps.build(eps_fn.model, None, None, eps_fn.scale, eps_fn.mode,
                                      self.cache)
        self.z = torch.zeros(shape, device=self.device)
        self.noise = torch.zeros(shape, device=self.device)
        self.plan = _CurrentPlan(plan, self.device)
        self.known = Known(torch.zeros(shape, device=self.device),
                           torch.zeros(shape, dtype=torch.bool, device=self.device))
        self.step = DenoiseStep(self.eps_fn, self.plan, self.known)
        self.layout = _cache_layout(self.cache)
        self.addresses = weight_addresses(eps_fn.model)
        self.kernels = kernel_choice(eps_fn.model)
        self.graph = self._capture(warmup) if self.use_graph else None

    def fits(self, eps_window: GuidedEps, shape: tuple[int, int, int]) -> bool:
        """Whether this captured step is `eps_window`'s step for windows of `shape`: the same
        model with its weights still at the addresses the graph reads (moving or re-casting the
        model reallocates them), the same kernels, guidance and audio-cache layout."""
        return (tuple(shape) == self.shape and eps_window.model is self.eps_fn.model
                and eps_window.scale == self.eps_fn.scale and eps_window.mode == self.eps_fn.mode
                and _cache_layout(eps_window.cache) == self.layout
                and kernel_choice(eps_window.model) == self.kernels
                and weight_addresses(eps_window.model) == self.addresses)

    # -- per window ------------------------------------------------------------------------------
    def load_window(self, eps_window: GuidedEps, known: Known | None) -> None:
        """Copy one window's audio cache slice and known frames into the static buffers."""
        for dst, src in zip(self.cache.keys + self.cache.values,
                            eps_window.cache.keys + eps_window.cache.values):
            if dst.shape != src.shape:
                raise ValueError(f"GraphedStep: window cache {tuple(src.shape)} does not match "
                                 f"the captured {tuple(dst.shape)}")
            dst.copy_(src)
        if known is None:
            self.known.mask.fill_(False)
        else:
            self.known.values.copy_(known.values.expand_as(self.known.values))
            self.known.mask.copy_(known.mask.expand_as(self.known.mask))

    def start(self, noise: torch.Tensor) -> torch.Tensor:
        self.plan.load(0)
        self.z.copy_(self.step.start(noise))
        return self.z

    def __call__(self, z: torch.Tensor, i: int, noise: torch.Tensor) -> torch.Tensor:
        """One step from z (normally the buffer returned by the previous call) with `noise`."""
        if z is not self.z:
            self.z.copy_(z)
        self.noise.copy_(noise)
        self.plan.load(i)
        if self.graph is not None:
            self.graph.replay()
        else:
            self._body()
        return self.z

    # -- capture ---------------------------------------------------------------------------------
    def _body(self) -> None:
        self.z.copy_(self.step(self.z, 0, self.noise))

    def _capture(self, warmup: int):
        # Warm up on a side stream first (compiles Triton kernels, lets allocators settle), as
        # CUDA graph capture requires; the buffers hold zeros, so warm-up values are harmless.
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):
            for _ in range(warmup):
                self._body()
        torch.cuda.current_stream(self.device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            self._body()
        self.z.zero_()
        return graph


def weight_addresses(model) -> tuple:
    """Where the model's parameters and buffers live: a captured graph reads those addresses."""
    return tuple((t.data_ptr(), t.dtype, tuple(t.shape))
                 for t in (*model.parameters(), *model.buffers()))


def kernel_choice(model) -> tuple:
    """What picked the kernels a captured step launches: the model's backend, the environment
    override and PyTorch's TF32 switch (read by the fp32 Triton kernels)."""
    return (getattr(model, "backend", None), os.environ.get(backends.ENV_VAR),
            backends.tf32_allowed())


def _cache_layout(cache: AudioCache) -> tuple:
    return (tuple((tuple(t.shape), t.dtype, str(t.device)) for t in cache.keys + cache.values),
            cache.null_rows)
