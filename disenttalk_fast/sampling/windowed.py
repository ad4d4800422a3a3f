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

from disenttalk_fast._torch import torch
from disenttalk_fast.diffusion.gaussian import randn
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
                    progress=None) -> torch.Tensor:
    """Sample (batch, num_frames, num_dims) window by window.

    eps_fn: a GuidedEps over the whole input (it is windowed here); known: optional full-length
    region-control values (B, L, N) with a dim mask. progress(done, total) is called after
    every denoising step.
    """
    check_window(window, overlap)
    starts = window_starts(num_frames, window, overlap)
    steps = plan.num_steps
    total, done = steps * len(starts), 0
    out = torch.zeros(batch, num_frames, num_dims, device=device)
    prev_end = 0
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
        step = DenoiseStep(eps_fn.window(start, end), plan, win_known)
        z = step.start(randn((batch, length, num_dims), generator, device))
        for i in range(steps):
            z = step(z, i, randn(z.shape, generator, device))
            done += 1
            if progress is not None:
                progress(done, total)
        out[:, start:end] = z
        prev_end = end
    return out
