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

from disenttalk_fast._torch import torch
from disenttalk_fast.diffusion.gaussian import randn
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
    if isinstance(window, bool) or not isinstance(window, int) or window < 2:
        raise ValueError(f"window must be an integer >= 2 frames, got {window!r}")
    if isinstance(overlap, bool) or not isinstance(overlap, int) or not 0 <= overlap < window:
        raise ValueError(f"overlap must be an integer in [0, window={window}), got {overlap!r}")


def sample_windowed(eps_fn, plan, *, batch: int, num_frames: int, num_dims: int, window: int,
                    overlap: int, generator, device, known: Known | None = None,
                    progress=None, cuda_graph: bool | None = None) -> torch.Tensor:
    """Sample (batch, num_frames, num_dims) window by window.

    eps_fn: a GuidedEps over the whole input (it is windowed here); known: optional full-length
    region-control values (B, L, N) with a dim mask. progress(done, total) is called after
    every denoising step. cuda_graph: replay one captured step per window shape (None = on
    CUDA devices; on the CPU, True runs the same static-buffer path without a graph).
    """
    check_window(window, overlap)
    starts = window_starts(num_frames, window, overlap)
    steps = plan.num_steps
    total, done = steps * len(starts), 0
    out = torch.zeros(batch, num_frames, num_dims, device=device)
    prev_end = 0
    use_graph = device.type == "cuda" if cuda_graph is None else bool(cuda_graph)
    graphed = None
    for start in starts:
        end = min(start + window, num_frames)
        length = end - start
        # Frames [start, prev_end) were produced by the previous window: hold them fixed.
        held = torch.zeros(1, length, 1, dtype=torch.bool, device=device)
        held[:, : max(0, prev_end - start)] = True
        values = out[:, start:end]
        mask = held
        if known is not None:
            values = torch.where(held, values, known.values[:, start:end])
            mask = held | known.mask
        win_known = Known(values, mask) if (prev_end > start or known is not None) else None
        win_eps = eps_fn.window(start, end)
        shape = (batch, length, num_dims)
        if use_graph and (graphed is None or graphed.shape != shape):
            graphed = _graphed_step(eps_fn, plan, shape, device, required=bool(cuda_graph))
            use_graph = graphed is not None
        if use_graph:
            graphed.load_window(win_eps, win_known)
            step = graphed
        else:
            step = DenoiseStep(win_eps, plan, win_known)
        z = step.start(randn((batch, length, num_dims), generator, device))
        for i in range(steps):
            z = step(z, i, randn(z.shape, generator, device))
            done += 1
            if progress is not None:
                progress(done, total)
        out[:, start:end] = z
        prev_end = end
    return out


def _graphed_step(eps_fn, plan, shape, device, required: bool):
    """A GraphedStep for windows of `shape`; when graphs were only the default (not asked for)
    and capture fails, warn once and return None so sampling continues eagerly."""
    try:
        return GraphedStep(eps_fn, plan, shape, device, use_graph=device.type == "cuda")
    except RuntimeError as exc:
        if required:
            raise
        warnings.warn(f"CUDA graph capture failed ({str(exc).splitlines()[0]}); "
                      "sampling without CUDA graphs", RuntimeWarning, stacklevel=3)
        return None
