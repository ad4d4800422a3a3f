"""`Streamer`: audio chunks in, motion frames out as soon as they are final.

    from disenttalk_fast.stream import Streamer
    s = Streamer("model.safetensors", hop_frames=4, overlap_frames=12, steps=10)
    for pcm in microphone_chunks():             # any size (10-500 ms), int16 / float, <= 8 channels
        motion = s.push(pcm)                     # Motion of the frames that became final (maybe 0)
        engine.play(motion.exp, motion.pose)
    engine.play(*s.flush())                      # end of speech: the remaining frames
    s.latency()                                  # {"algorithmic_ms", "compute_ms", ...}

It is the windowed sampler of `disenttalk_fast.sampling` run incrementally: windows of
`window = overlap_frames + hop_frames` frames start every `hop_frames` frames; each window's first
`overlap_frames` frames are held fixed to what the previous window produced, and its remaining
frames are emitted — they are final. At `flush()` the last window is moved back to end at the
last frame, exactly as offline. Noise comes from one generator seeded with `seed` and is drawn in
the same order as offline, so the stream equals
`generate(model, same_audio, window=window, overlap=overlap_frames, seed=seed, ...)` up to
floating-point rounding, frame for frame (tested), and there is no seam at chunk borders: chunk
borders never enter the computation.

What makes that exact:
- audio conditioning (mono mix, resampling, DC blocker, clipping) is the stateful
  `AudioConditioner` that `load_audio` uses, so chunking does not change the samples;
- mel row r depends on samples [320 r - 40, 320 r + 360) only, so it is computed once those
  samples have arrived (the 40 samples beyond the row are the feature's own lookahead);
- the audio encoder is causal with a receptive field of `model.audio_receptive_field` rows,
  so new rows are encoded with that many rows of carried-over context;
- the denoiser only sees one window's audio rows (as offline), so a window can be sampled as
  soon as its last audio row is final.

Latency (`latency()`), for a frame emitted in steady state, measured from the start of the
frame's audio: algorithmic = hop_frames x 40 ms (the window's new frames must all be heard) +
2.5 ms (mel window lookahead) + up to `chunk_ms` (a sample arrives at the end of its chunk);
compute = the measured wall time of one window: its new mel rows and their audio encoding, then
steps x denoiser on 2 x window frames with guidance; plus the conditioning of the chunk that
completes the window (done as each chunk is pushed). The first window waits
for `window` frames of audio instead of `hop_frames`. To keep up with real time, one window plus
the conditioning of a hop's worth of chunks must take less than hop_frames x 40 ms
(`real_time_factor` < 1). Only the `mel` feature streams (HuBERT's transformer looks at the
whole input).
"""

from __future__ import annotations

import time

import numpy as np

from disenttalk_fast._checks import is_int, is_real
from disenttalk_fast._torch import torch
from disenttalk_fast.audio import frames as fr
from disenttalk_fast.audio.load import AudioConditioner, check_rate
from disenttalk_fast.audio.mel import LEFT_CONTEXT, RIGHT_CONTEXT, MelExtractor
from disenttalk_fast.generate import as_checkpoint, model_device, pose_track, reference_pose
from disenttalk_fast.motion import Motion
from disenttalk_fast.sampling.plan import check_seed
from disenttalk_fast.sampling.windowed import WindowSampler

FRAME_MS = 1000.0 / fr.FPS


class Streamer:
    def __init__(self, model_or_checkpoint, *, hop_frames: int = 4, overlap_frames: int = 12,
                 sampler: str = "ddim", steps: int | None = 10, eta: float = 0.0,
                 guidance: float | None = None, seed: int = 0, control=None, pose=None,
                 sample_rate: int = fr.SAMPLE_RATE, chunk_ms: float = 20.0,
                 backend: str | None = None, device=None, progress=None):
        from disenttalk_fast.backends import check_name
        from disenttalk_fast.diffusion.gaussian import GaussianDiffusion
        from disenttalk_fast.diffusion.guidance import check_guidance
        from disenttalk_fast.sampling import RegionControl, make_plan

        if backend is not None:
            check_name(backend, "Streamer")
        # (a model passed in keeps its own backend: the streamer runs a view of it on `backend`)
        self.ckpt = as_checkpoint(model_or_checkpoint, backend, device)
        self.model = self.ckpt.model.eval()
        if self.ckpt.feature_type != "mel":
            raise ValueError(f"Streamer supports models on 'mel' features; this one uses "
                             f"'{self.ckpt.feature_type}' (HuBERT looks at the whole input)")
        for name, v, lo in (("hop_frames", hop_frames, 1), ("overlap_frames", overlap_frames, 0)):
            if not is_int(v) or v < lo:   # (numpy integers included)
                raise ValueError(f"Streamer: {name} must be an integer >= {lo}, got {v!r}")
        hop_frames, overlap_frames = int(hop_frames), int(overlap_frames)
        if overlap_frames + hop_frames < 2:
            raise ValueError("Streamer: window = overlap_frames + hop_frames must be >= 2")
        if not is_real(chunk_ms) or not 0 < chunk_ms <= 10_000:
            raise ValueError(f"Streamer: chunk_ms must be a number in (0, 10000], got "
                             f"{chunk_ms!r}")
        if control is not None and not isinstance(control, RegionControl):
            raise ValueError(f"Streamer: control must be a RegionControl (see build_control), "
                             f"got {type(control).__name__}")
        seed = check_seed(seed)
        sample_rate = check_rate(sample_rate, "Streamer: sample_rate")
        self.hop, self.overlap = hop_frames, overlap_frames
        self.window = hop_frames + overlap_frames
        self.chunk_ms = float(chunk_ms)
        self.guidance = check_guidance(self.ckpt.config.guidance_scale if guidance is None
                                       else guidance)
        if sampler == "ddpm" and steps == 25:   # as `sample`: DDPM runs all T steps
            steps = None
        self.device = model_device(self.model)
        self.plan = make_plan(GaussianDiffusion.from_config(self.ckpt.config), sampler, steps,
                              eta).to(self.device)
        self.settings = {"sampler": sampler, "steps": steps, "guidance": self.guidance,
                         "seed": int(seed), "window": self.window, "overlap": self.overlap}
        self.control = control
        if control is not None and control.has_known:   # its references' widths, checked now
            control.known(self.model.partition, 1, 1, self.device)
        self.progress = progress     # called with the number of windows sampled so far
        # Read, checked and resampled to 25 fps once, now, not at the first window.
        self._pose_ref = reference_pose(pose)
        self.generator = torch.Generator(device=self.device).manual_seed(int(seed))
        self.window_sampler = WindowSampler(self.plan, self.generator, self.device)
        self.conditioner = AudioConditioner(sample_rate, "stream")
        self.mel = MelExtractor(device="cpu")
        self.reset_timing()
        self._reset_state()

    # -- state -----------------------------------------------------------------------------------
    def _reset_state(self):
        # Conditioned 16 kHz samples from absolute index _sample0 on; it starts with the 40
        # zeros before the signal that the first mel row's window covers.
        self._sample0 = -LEFT_CONTEXT
        self._samples = np.zeros(LEFT_CONTEXT, np.float32)
        self._total_samples = 0
        self._feat = np.zeros((0, self.mel.dim), np.float32)   # rows [_feat0, rows_final)
        self._feat0 = 0
        self.rows_final = 0
        self._keys = self._values = None           # encoded rows [_enc0, rows_encoded)
        self._enc0 = 0
        self.rows_encoded = 0
        self._prev = None                          # (B, <=window, N) normalised frames of the
        self._prev0 = 0                            # last window, from frame _prev0
        self.next_start = 0                        # start frame of the next window
        self.frames_emitted = 0
        self.finished = False
        self._known = None
        with torch.inference_mode():
            self._null = self.model.encode_audio(None, num_frames=self.window, batch=1)

    def reset_timing(self):
        self.window_seconds: list[float] = []       # wall time per window
        self.window_cpu_seconds: list[float] = []   # process CPU time per window (all threads)
        # The audio path of push / flush (their conditioning), all chunks summed.
        self.audio_seconds = 0.0
        self.audio_cpu_seconds = 0.0
        self.audio_chunks = 0
        self.audio_samples = 0                      # conditioned (16 kHz) samples it processed

    def _timed_audio(self, work):
        """Run the audio path of one push / flush (`work()`, returning the conditioned
        samples) and add its wall and CPU time to the streamer's audio timing."""
        t0, c0 = time.perf_counter(), time.process_time()
        n = work()
        if n:  # an empty push (or one the resampler holds back entirely) is not a chunk
            self.audio_seconds += time.perf_counter() - t0
            self.audio_cpu_seconds += time.process_time() - c0
            self.audio_chunks += 1
            self.audio_samples += n

    # -- audio -> final feature rows -> encoded rows -------------------------------------------
    def _add_samples(self, x: np.ndarray):
        if x.size:
            self._samples = np.concatenate([self._samples, x])
            self._total_samples += x.size

    def _compute_rows(self, upto: int):
        """Mel rows [rows_final, upto) from the buffered samples (zeros beyond the signal)."""
        n = upto - self.rows_final
        if n <= 0:
            return
        off = fr.ROW_HOP * self.rows_final - LEFT_CONTEXT - self._sample0
        need = fr.ROW_HOP * n + LEFT_CONTEXT + RIGHT_CONTEXT
        seg = self._samples[off: off + need]
        if seg.size < need:
            seg = np.concatenate([seg, np.zeros(need - seg.size, np.float32)])
        rows = self.mel.rows_from_padded(seg, n)
        self._feat = np.concatenate([self._feat, rows])
        self.rows_final = upto
        self._encode()
        # Keep only the samples the next row needs (its 40 samples of left context on).
        drop = fr.ROW_HOP * self.rows_final - LEFT_CONTEXT - self._sample0
        if drop > 0:
            self._samples = self._samples[drop:]
            self._sample0 += drop

    def _encode(self):
        rf = self.model.audio_receptive_field
        a, b = self.rows_encoded, self.rows_final
        if b <= a:
            return
        lo = max(0, a - rf)
        feats = torch.from_numpy(self._feat[lo - self._feat0: b - self._feat0]).to(self.device)
        with torch.inference_mode():
            cache = self.model.encode_audio(feats[None])
        keys = [k[:, a - lo:] for k in cache.keys]
        values = [v[:, a - lo:] for v in cache.values]
        if self._keys is None:
            self._keys, self._values, self._enc0 = keys, values, a
        else:
            self._keys = [torch.cat([o, k], 1) for o, k in zip(self._keys, keys)]
            self._values = [torch.cat([o, v], 1) for o, v in zip(self._values, values)]
        self.rows_encoded = b
        # Feature rows older than the encoder's receptive field are never read again.
        keep_from = max(self._feat0, b - rf)
        self._feat = self._feat[keep_from - self._feat0:]
        self._feat0 = keep_from

    def _window_cache(self, start: int, end: int):
        from disenttalk_fast.model import AudioCache

        lo, hi = 2 * start - self._enc0, 2 * end - self._enc0
        cond = AudioCache([k[:, lo:hi] for k in self._keys], [v[:, lo:hi] for v in self._values],
                          (False,) * self._keys[0].shape[0])
        null = self._null.window(0, end - start)
        return cond, null

    # -- one window (the same WindowSampler as offline sampling.windowed) ----------------------
    def _run_window(self, start: int, end: int) -> Motion:
        from disenttalk_fast.diffusion.guidance import GuidedEps
        from disenttalk_fast.sampling.sampler import check_finite
        from disenttalk_fast.sampling.step import Known

        t0, c0 = time.perf_counter(), time.process_time()
        self._compute_rows(fr.ROWS_PER_FRAME * end)   # the window's audio rows (final by now)
        length, n_dims = end - start, self.ckpt.config.num_dims
        prev_end = self._prev0 + (0 if self._prev is None else self._prev.shape[1])
        held_n = max(0, prev_end - start)
        with torch.inference_mode():
            values = torch.zeros(1, length, n_dims, device=self.device)
            if held_n:
                values[:, :held_n] = self._prev[:, start - self._prev0: prev_end - self._prev0]
            known = None
            if self.control is not None and self.control.has_known:
                full = self._known_upto(end)
                known = Known(full.values[:, start:end], full.mask)
            cond, null = self._window_cache(start, end)
            z = self.window_sampler(GuidedEps(self.model, cond, null, self.guidance), values,
                                    held_n, known)
            check_finite(z, self.model, self.guidance)
            self._prev, self._prev0 = z, start
            new = z[:, held_n:]
            if self.control is not None:
                new = self.control.apply_output(new, self.model.partition)
            exp = self.ckpt.denormalize(new[0].float()).cpu().numpy()
        first = start + held_n
        pose = pose_track(self._pose_ref, end)[first:end]
        self.frames_emitted = end
        self.window_seconds.append(time.perf_counter() - t0)
        self.window_cpu_seconds.append(time.process_time() - c0)
        if self.progress is not None:
            self.progress(len(self.window_seconds))
        return Motion(exp, pose, fr.FPS, self.ckpt.partition, {"first_frame": first})

    def _known_upto(self, end: int):
        """Region-control known values covering frames [0, >= end), rebuilt with doubling
        capacity (amortised O(1) per frame) but never past the shortest replace reference."""
        have = 0 if self._known is None else self._known.values.shape[1]
        if have < end:
            cap = max(end, 2 * have)
            if self.control.replace:
                shortest = min(torch.as_tensor(r).shape[-2] for r in self.control.replace.values())
                cap = max(end, min(cap, shortest))
            self._known = self.control.known(self.model.partition, 1, cap, self.device)
        return self._known

    def _drop_old_audio_rows(self):
        """Encoded rows before the last window's start are never read again (the final window
        at flush starts after the last regular one, the next window at next_start)."""
        cut = 2 * max(0, self.next_start - self.hop) - self._enc0
        if self._keys is not None and cut > 0:
            self._keys = [k[:, cut:] for k in self._keys]
            self._values = [v[:, cut:] for v in self._values]
            self._enc0 += cut

    # -- public API ------------------------------------------------------------------------------
    def push(self, pcm) -> Motion:
        """Feed PCM samples at the streamer's sample_rate: (n,), (n, channels) or (channels, n)
        with at most 8 channels (`load_audio`'s layout rule), float in [-1, 1] or int8-int32
        PCM (int64, and float peaks above 16, are refused: see `load_audio`).
        Returns the motion frames that became final (possibly none)."""
        if self.finished:
            raise RuntimeError("Streamer: push() after flush(); call reset() to start again")
        def audio_path():
            x = self.conditioner.push(pcm)
            self._add_samples(x)
            return x.size

        self._timed_audio(audio_path)
        # Row r is final once samples up to 320 r + 360 have arrived. Rows become mel features
        # and encoded audio only when a window needs them (`_run_window`): one batch per hop
        # instead of a few rows per chunk, whose fixed cost of ~2 ms (two dozen small ops) had
        # taken 14% of real time on the dev CPU.
        avail = self._total_samples - RIGHT_CONTEXT
        ready = avail // fr.ROW_HOP if avail >= 0 else 0
        out = []
        while ready >= 2 * (self.next_start + self.window):
            start = self.next_start
            out.append(self._run_window(start, start + self.window))
            self.next_start += self.hop
            self._drop_old_audio_rows()
        return self._join(out)

    feed = push

    def flush(self) -> Motion:
        """End of input: the remaining frames (the last window ends at the last frame, padded
        with silence to a whole frame as offline: ceil(samples / 640) frames in all)."""
        if self.finished:
            return self._join([])
        def audio_path():
            x = self.conditioner.flush()
            self._add_samples(x)
            self.conditioner.check_content()
            return x.size

        self._timed_audio(audio_path)
        # The remaining rows (zeros past the signal, as offline) are computed by the windows.
        total_frames = fr.num_frames(self._total_samples)
        out = []
        # Windows of the regular grid that fit, then one last window ending at the last frame.
        while self.next_start + self.window <= total_frames:
            start = self.next_start
            out.append(self._run_window(start, start + self.window))
            self.next_start += self.hop
        if self.frames_emitted < total_frames:
            start = max(0, total_frames - self.window)
            out.append(self._run_window(start, total_frames))
        self.finished = True
        return self._join(out)

    def reset(self):
        """Start a new utterance (same settings, generator re-seeded)."""
        self.generator.manual_seed(self.settings["seed"])
        self.conditioner = AudioConditioner(self.conditioner.source_rate, "stream")
        self._reset_state()

    def _join(self, motions: list[Motion]) -> Motion:
        if not motions:
            return Motion(np.zeros((0, self.ckpt.config.num_dims), np.float32),
                          np.zeros((0, 6), np.float32), fr.FPS, self.ckpt.partition,
                          {"first_frame": self.frames_emitted})
        if len(motions) == 1:
            return motions[0]
        return Motion(np.concatenate([m.exp for m in motions]),
                      np.concatenate([m.pose for m in motions]), fr.FPS, self.ckpt.partition,
                      {"first_frame": motions[0].meta["first_frame"]})

    # -- latency ---------------------------------------------------------------------------------
    def latency(self) -> dict:
        """Latency in ms from the start of a frame's audio to its emission (module docstring).

        algorithmic_ms: hop x 40 ms + 2.5 ms mel lookahead + chunk_ms (worst-case buffering);
        first_frame_algorithmic_ms: the same with the whole first window instead of one hop;
        compute_ms / compute_max_ms: measured mean / max wall time per window so far (None
        before the first window); compute_cpu_ms: mean process CPU time per window (all threads
        summed) — on a CPU shared with other work, wall time includes waiting for a core and
        CPU time approximates what one idle core would take with one torch thread);
        audio_ms_per_chunk / audio_ms_per_hop: mean wall time of the audio path run as chunks
        arrive (conditioning; mel rows and encoding run in the window) per pushed chunk, and
        per hop of audio (audio_cpu_ms_per_hop: its CPU time);
        total_ms = algorithmic_ms + compute_ms + audio_ms_per_chunk (the chunk that completes a
        window is conditioned before the window runs);
        real_time_factor = (compute_ms + audio_ms_per_hop) / (hop x 40 ms): the share of each
        hop's duration spent working (< 1 keeps up with live audio).
        """
        lookahead = 1000.0 * RIGHT_CONTEXT / fr.SAMPLE_RATE
        algo = self.hop * FRAME_MS + lookahead + self.chunk_ms
        first = self.window * FRAME_MS + lookahead + self.chunk_ms
        times = self.window_seconds
        compute = 1000.0 * float(np.mean(times)) if times else None
        hop_ms = self.hop * FRAME_MS
        per_chunk = per_hop = cpu_per_hop = None
        if self.audio_chunks:
            per_chunk = 1000.0 * self.audio_seconds / self.audio_chunks
        if self.audio_samples:
            hops = self.audio_samples / (fr.SAMPLE_RATE * hop_ms / 1000.0)
            per_hop = 1000.0 * self.audio_seconds / hops
            cpu_per_hop = 1000.0 * self.audio_cpu_seconds / hops
        done = compute is not None and per_hop is not None
        return {"algorithmic_ms": algo, "first_frame_algorithmic_ms": first,
                "compute_ms": compute,
                "compute_max_ms": 1000.0 * max(times) if times else None,
                "compute_cpu_ms": (1000.0 * float(np.mean(self.window_cpu_seconds))
                                   if self.window_cpu_seconds else None),
                "audio_ms_per_chunk": per_chunk, "audio_ms_per_hop": per_hop,
                "audio_cpu_ms_per_hop": cpu_per_hop,
                "total_ms": algo + compute + per_chunk if done else None,
                "real_time_factor": (compute + per_hop) / hop_ms if done else None,
                "windows": len(times), "hop_frames": self.hop, "window_frames": self.window,
                "steps": self.plan.num_steps, "chunk_ms": self.chunk_ms}
