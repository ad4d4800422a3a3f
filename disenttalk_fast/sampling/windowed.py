"""Windowed sampling: long sequences in bounded memory, with no seam between windows.

The sequence is covered by windows of exactly `window` frames; consecutive windows share at
least `overlap` frames (the last window is moved back to end at the last frame, so it may share
more). Each window is sampled with its first shared frames held fixed to what the previous
window produced (inpainting: imposed on every step's clean-motion estimate, see
`sampling.step`), so the new frames continue the old motion instead of starting afresh. The denoiser only ever sees one window
(batch 2B with guidance), and the audio cache, computed once for the whole input, is only sliced
(`AudioCache.window`), so memory per step does not grow with the input length; the output itself
is (B, L, N) floats (10 minutes at 25 fps and N = 64 is 3.8 MB).

Every window has the same shape, which is what a CUDA-graph sampler needs to replay one
captured step for the whole input.
"""

from __future__ import annotations

import warnings

from disenttalk_fast._checks import is_int
from disenttalk_fast._torch import torch
from disenttalk_fast.diffusion.gaussian import randn
from disenttalk_fast.diffusion.guidance import GuidedEps
from disenttalk_fast.sampling.cuda_graph import GraphedStep
from disenttalk_fast.sampling.step import DenoiseStep, Known


def window_starts(num_frames: int, window: int, overlap: int) -> list[int]:
    """Start frames of the windows covering [0, num_frames)."""
    if window >= num_frames:
        return [0]
    hop = window - overlap
    starts = list(range(0, num_frames - window + 1, hop))
    if starts[-1] + window < num_frames:
        starts.append(num_frames - window)
    return starts


def check_window(window, overlap) -> None:
    if not is_int(window) or window < 2:   # (numpy integers included)
        raise ValueError(f"window must be an integer >= 2 frames, got {window!r}")
    if not is_int(overlap) or not 0 <= overlap < window:
        raise ValueError(f"overlap must be an integer in [0, window={window}), got {overlap!r}")


class WindowSampler:
    """Samples one window at a time — the loop shared by offline windowed sampling and the
    streaming API, so both produce the same numbers for the same seed.

    The first `held_n` frames of a window are held to the previous window's output (and region
    control may fix more); noise comes from `generator`. With `cuda_graph` (default: on CUDA
    devices) one captured step is replayed per window shape; on the CPU, True runs the same
    static-buffer path without a graph.
    """

    def __init__(self, plan, generator, device, cuda_graph: bool | None = None):
        self.plan, self.generator, self.device = plan, generator, torch.device(device)
        self.use_graph = self.device.type == "cuda" if cuda_graph is None else bool(cuda_graph)
        self.graph_required = bool(cuda_graph)
        self.graphed: GraphedStep | None = None

    def __call__(self, eps_window, held_values: torch.Tensor, held_n: int,
                 known: Known | None = None, on_step=None) -> torch.Tensor:
        """eps_window: the guided eps of this window (a GuidedEps over its frames);
        held_values: (B, length, N) whose first held_n frames are fixed; known: region-control
        values and mask for this window's frames, or None. Returns z (B, length, N)."""
        shape = tuple(held_values.shape)
        win_known = _window_known(held_values, held_n, known)
        step = self._step(eps_window, shape, win_known)
        z = step.start(randn(shape, self.generator, self.device))
        for i in range(self.plan.num_steps):
            z = step(z, i, randn(shape, self.generator, self.device))
            if on_step is not None:
                on_step()
        return z.clone() if step is self.graphed else z

    def _step(self, eps_window, shape, win_known):
        if self.use_graph and (self.graphed is None or not self.graphed.fits(eps_window, shape)):
            self.graphed = self._capture(eps_window, shape)
            self.use_graph = self.graphed is not None
        if not self.use_graph:
            dense = GuidedEps.build(eps_window.model, None, None, eps_window.scale,
                                    eps_window.mode, eps_window.cache.contiguous())
            return DenoiseStep(dense, self.plan, win_known)
        self.graphed.load_window(eps_window, win_known)
        return self.graphed

    def _capture(self, eps_window, shape) -> GraphedStep | None:
        """A GraphedStep for windows of `shape`; when graphs were only the default (not asked
        for) and capture fails, warn and return None so sampling continues eagerly."""
        try:
            return GraphedStep(eps_window, self.plan, shape, self.device,
                               use_graph=self.device.type == "cuda")
        except RuntimeError as exc:
            if self.graph_required:
                raise
            warnings.warn(f"CUDA graph capture failed ({str(exc).splitlines()[0]}); "
                          "sampling without CUDA graphs", RuntimeWarning, stacklevel=4)
            return None


def _window_known(held_values: torch.Tensor, held_n: int, known: Known | None) -> Known | None:
    """The values a window holds fixed: its first held_n frames, plus region control."""
    if held_n == 0 and known is None:
        return None
    held = torch.zeros(1, held_values.shape[1], 1, dtype=torch.bool, device=held_values.device)
    held[:, :held_n] = True
    if known is None:
        return Known(held_values, held)
    return Known(torch.where(held, held_values, known.values), held | known.mask)


def sample_windowed(eps_fn, plan, *, batch: int, num_frames: int, num_dims: int, window: int,
                    overlap: int, generator, device, known: Known | None = None,
                    progress=None, cuda_graph: bool | None = None,
                    sampler: WindowSampler | None = None) -> torch.Tensor:
    """Sample (batch, num_frames, num_dims) window by window.

    eps_fn: a GuidedEps over the whole input (it is windowed here); known: optional full-length
    region-control values (B, L, N) with a dim mask. progress(done, total) is called after
    every denoising step. cuda_graph: see WindowSampler. sampler: a WindowSampler of `plan` on
    `device` to reuse (with its captured step), drawing from `generator` from now on; None
    makes a fresh one.
    """
    check_window(window, overlap)
    starts = window_starts(num_frames, window, overlap)
    total, done = plan.num_steps * len(starts), 0
    out = torch.zeros(batch, num_frames, num_dims, device=device)
    if sampler is None:
        sampler = WindowSampler(plan, generator, device, cuda_graph)
    else:
        sampler.generator = generator

    def on_step():
        nonlocal done
        done += 1
        progress(done, total)

    prev_end = 0
    for start in starts:
        end = min(start + window, num_frames)
        win_known = None if known is None else Known(known.values[:, start:end], known.mask)
        # Frames [start, prev_end) were produced by the previous window: hold them fixed.
        out[:, start:end] = sampler(eps_fn.window(start, end), out[:, start:end],
                                    max(0, prev_end - start), win_known,
                                    on_step if progress is not None else None)
        prev_end = end
    return out
