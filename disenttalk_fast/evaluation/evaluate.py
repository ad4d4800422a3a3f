"""Motion-quality evaluation of a checkpoint on held-out clips (`disenttalk eval`).

For every test clip (ClipDataset folder, e.g. the synthetic corpus's DIR/test):
- ground truth, generated motion (DDIM, seed 0), and two controls: motion generated for ANOTHER
  clip's audio (same language, tiled / cut to length) and the training set's mean motion;
- sync confidence / distance of each against the clip's own audio, from the frozen sync expert
  with an offset sweep of +-15 frames (sync.metrics: LSE-C / LSE-D style, parameter space);
- on the built-in face: mouth-opening correlation with ground truth, lip vertex distance
  (LMD-style, mouth-region vertices), blink rate per second (eyelid closure >= 0.5), temporal
  jitter (mean |second difference| of the expression coefficients);
- diversity across seeds, and DDPM (all T steps) against DDIM on a subset of clips.

All expression sequences are scored in the SAME normalised space: the test dataset's stats
(for the synthetic corpus, the training split's), which is also what the sync expert was
trained on.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from disenttalk_fast._torch import torch
from disenttalk_fast.evaluation import metrics
from disenttalk_fast.evaluation.face_measures import FaceMeasurer


@dataclass
class ClipData:
    id: str
    exp: np.ndarray       # (L, N) raw ground truth
    audio: np.ndarray     # (2L, D) features
    samples: np.ndarray | None = None   # 16 kHz waveform (for the energy plot)


@dataclass
class MotionScores:
    """Per-clip lists of one motion source's scores (means are taken in `summary`)."""

    lse_c: list = field(default_factory=list)
    lse_d: list = field(default_factory=list)
    offset: list = field(default_factory=list)
    mouth_corr: list = field(default_factory=list)
    lmd: list = field(default_factory=list)
    blinks: int = 0
    seconds: float = 0.0
    jitter: list = field(default_factory=list)

    def summary(self) -> dict:
        mean = lambda xs: float(np.mean(xs)) if len(xs) else float("nan")  # noqa: E731
        return {"lse_c": mean(self.lse_c), "lse_d": mean(self.lse_d),
                "abs_offset": mean(np.abs(self.offset)) if self.offset else float("nan"),
                "mouth_corr": mean(self.mouth_corr), "lmd": mean(self.lmd),
                "blink_rate": self.blinks / self.seconds if self.seconds else float("nan"),
                "jitter": mean(self.jitter), "clips": len(self.lse_c)}


class Evaluator:
    def __init__(self, expert, exp_mean, exp_std, face_model=None, max_offset: int = 15):
        self.expert = expert
        self.mean = np.asarray(exp_mean, np.float32)
        self.std = np.asarray(exp_std, np.float32)
        self.faces = FaceMeasurer(face_model)
        self.max_offset = max_offset
        self._gt_cache: dict[str, object] = {}

    def normalise(self, exp: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(((exp - self.mean) / self.std).astype(np.float32))

    def gt_measures(self, clip: ClipData):
        if clip.id not in self._gt_cache:
            self._gt_cache[clip.id] = self.faces(clip.exp)
        return self._gt_cache[clip.id]

    def score(self, scores: MotionScores, exp: np.ndarray, clip: ClipData,
              compare_to_gt: bool = True):
        from disenttalk_fast.sync.metrics import sync_scores

        L = min(len(exp), len(clip.exp))
        exp = exp[:L]
        s = sync_scores(self.expert, self.normalise(exp), torch.from_numpy(clip.audio[:2 * L]),
                        self.max_offset)
        scores.lse_c.append(s.confidence)
        scores.lse_d.append(s.distance)
        scores.offset.append(s.offset)
        m = self.faces(exp)
        scores.blinks += metrics.detect_blinks(m.eye_closure)
        scores.seconds += L / 25.0
        scores.jitter.append(metrics.jitter(exp))
        if compare_to_gt:
            g = self.gt_measures(clip)
            scores.mouth_corr.append(metrics.pearson(m.mouth_opening, g.mouth_opening[:L]))
            scores.lmd.append(metrics.landmark_distance(m.mouth_vertices, g.mouth_vertices[:L]))
        return m


def load_test_clips(folder, max_clips: int = 0, language: str | None = None,
                    with_samples: bool = False) -> tuple[list[ClipData], object]:
    """(clips, dataset) from a clip dataset folder (every split); language filters on the
    manifest's "language" field (the synthetic corpus writes it) or the id prefix."""
    from disenttalk_fast.audio.load import load_audio
    from disenttalk_fast.data.dataset import ClipDataset

    ds = ClipDataset(folder, feature="mel", split="all", normalise=False)
    clips = []
    for i, row in enumerate(ds.rows):
        lang = row.get("language", row["id"].split("_")[0])
        if language and lang != language:
            continue
        if int(row["frames"]) < 5 + 2 * 15 + 1:   # too short for the +-15 frame sync sweep
            continue
        item = ds[i]
        clips.append(ClipData(row["id"], item["exp"].numpy(), item["audio"].numpy(),
                              load_audio(row["audio"]) if with_samples else None))
        if max_clips and len(clips) >= max_clips:
            break
    if not clips:
        raise ValueError(f"{folder}: no test clip of at least 36 frames"
                         + (f" in language '{language}'" if language else ""))
    return clips, ds


def _other_audio(clips: list[ClipData], i: int) -> np.ndarray:
    """Audio of the next clip of the same language (by id prefix), tiled / cut to clip i's
    length; with a single clip, its own audio reversed in time."""
    lang = clips[i].id.split("_")[0]
    pool = [j for j in range(len(clips)) if j != i and clips[j].id.split("_")[0] == lang] \
        or [j for j in range(len(clips)) if j != i]
    rows = clips[i].audio.shape[0]
    if not pool:
        return np.ascontiguousarray(clips[i].audio[::-1])
    a = clips[min(pool, key=lambda j: (j - i) % len(clips))].audio
    reps = -(-rows // a.shape[0])
    return np.concatenate([a] * reps)[:rows]


def generate_exp(ckpt, audio_rows: np.ndarray, *, sampler="ddim", steps=25, seed=0) -> np.ndarray:
    from disenttalk_fast.generate import generate

    m = generate(ckpt, audio_rows, sampler=sampler, steps=steps, seed=seed, progress=False)
    return m.exp


def merge(a: MotionScores, b: MotionScores) -> MotionScores:
    return MotionScores(a.lse_c + b.lse_c, a.lse_d + b.lse_d, a.offset + b.offset,
                        a.mouth_corr + b.mouth_corr, a.lmd + b.lmd, a.blinks + b.blinks,
                        a.seconds + b.seconds, a.jitter + b.jitter)


def evaluate_model(ckpt, clips: list[ClipData], ev: Evaluator, *, steps: int = 25,
                   controls: bool = True, log=None) -> tuple[dict, dict]:
    """{source: MotionScores} for the generated motion and (with controls) ground truth, the
    mismatched-audio and the mean-motion controls; and {clip id: generated raw exp}."""
    rows = {"generated": MotionScores()}
    if controls:
        rows = {"ground_truth": MotionScores(), "generated": rows["generated"],
                "mismatched_audio": MotionScores(), "mean_motion": MotionScores()}
    generated = {}
    t0 = time.perf_counter()
    for i, clip in enumerate(clips):
        exp = generate_exp(ckpt, clip.audio, steps=steps)
        generated[clip.id] = exp
        ev.score(rows["generated"], exp, clip)
        if controls:
            ev.score(rows["ground_truth"], clip.exp, clip)
            ev.score(rows["mismatched_audio"], generate_exp(ckpt, _other_audio(clips, i),
                                                            steps=steps), clip)
            mean = np.repeat(ev.mean[None], len(clip.exp), axis=0)
            ev.score(rows["mean_motion"], mean, clip)
        if log and (i + 1) % 10 == 0:
            log(f"  {i + 1}/{len(clips)} clips ({time.perf_counter() - t0:.0f} s)")
    return rows, generated


def diversity(ckpt, clips: list[ClipData], partition, seeds: int = 3, steps: int = 25) -> dict:
    """Mean pairwise distance between seeds, per region (in raw coefficient units)."""
    out = {"lip": [], "eye": [], "global": []}
    for clip in clips:
        runs = [generate_exp(ckpt, clip.audio, steps=steps, seed=s) for s in range(seeds)]
        for region in out:
            dims = list(partition.region(region))
            out[region].append(metrics.diversity([r[:, dims] for r in runs]))
    return {k: float(np.mean(v)) for k, v in out.items()}


def ddpm_vs_ddim(ckpt, clips: list[ClipData], ev: Evaluator, steps: int = 25) -> dict:
    """Sync confidence of DDIM-`steps` and of ancestral DDPM (all T steps) on the same clips."""
    ddim, ddpm = MotionScores(), MotionScores()
    for clip in clips:
        ev.score(ddim, generate_exp(ckpt, clip.audio, steps=steps), clip, compare_to_gt=False)
        ev.score(ddpm, generate_exp(ckpt, clip.audio, sampler="ddpm", steps=None), clip,
                 compare_to_gt=False)
    return {"ddim": ddim.summary(), "ddpm": ddpm.summary(),
            "timesteps": int(ckpt.config.timesteps)}
