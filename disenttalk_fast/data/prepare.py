"""Build a clip dataset from a folder of audio files and a folder of coefficient files.

Files are matched by stem (`talk01.wav` <-> `talk01.mat`), top level of each folder only. Every
clip is checked, and every rejected clip is reported with its reason (also in rejected.jsonl):
- the coefficient file reads as motion (any `read_motion` format) with finite values;
- its frame rate is 25 fps (our .npz stores fps; other formats are taken to be at `fps`);
- its expression width equals the dataset's (`exp_dim`, default: the most common width);
- it has at least `min_frames` frames;
- the audio decodes (`load_audio`) and is not empty;
- lengths agree: |audio duration x 25 - L| <= `tolerance_frames` (default 2 frames = 80 ms —
  a video's audio track and its frame count commonly differ by a frame, more means the pair is
  not the same take or was cut differently).
Audio is referenced by absolute path, not copied; features for `feature` are computed and cached
(for exactly 2 L rows: audio past frame L is ignored, missing audio counts as silence).
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from disenttalk_fast._checks import is_int, is_real
from disenttalk_fast.audio import frames as fr
from disenttalk_fast.audio.cache import FeatureCache, audio_digest, cache_key
from disenttalk_fast.audio.features import get_extractor
from disenttalk_fast.audio.load import load_audio
from disenttalk_fast.data import manifest as mf
from disenttalk_fast.interop.formats import read_motion
from disenttalk_fast.motion import Motion

AUDIO_EXTENSIONS = {".wav", ".flac", ".ogg", ".oga", ".mp3", ".aif", ".aiff", ".au", ".caf",
                    ".w64", ".rf64", ".opus"}
COEFF_EXTENSIONS = {".npz", ".mat", ".npy", ".txt"}


@dataclass
class PrepareReport:
    folder: Path
    accepted: list[dict] = field(default_factory=list)
    rejected: list[dict] = field(default_factory=list)

    @property
    def frames(self) -> int:
        return sum(int(r["frames"]) for r in self.accepted)


def _index(folder: Path, extensions: set[str], what: str) -> tuple[dict, dict]:
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such {what} folder")
    by_stem, dup = {}, {}
    for p in sorted(folder.iterdir()):
        if p.is_file() and p.suffix.lower() in extensions and not p.name.startswith("."):
            if p.stem in by_stem:
                dup.setdefault(p.stem, [by_stem[p.stem].name]).append(p.name)
            else:
                by_stem[p.stem] = p
    return by_stem, dup




def _split_of(ids: list[str], val_fraction: float) -> dict[str, str]:
    """Deterministic split: the floor(n * val_fraction) ids with the smallest sha1 go to val."""
    n_val = int(len(ids) * val_fraction)
    ranked = sorted(ids, key=lambda i: hashlib.sha1(i.encode()).hexdigest())
    val = set(ranked[:n_val])
    return {i: ("val" if i in val else "train") for i in ids}


def prepare_dataset(audio_dir, coeff_dir, out, *, feature="mel", fps: float = 25.0,
                    tolerance_frames: float = 2.0, min_frames: int = 8, exp_dim: int | None = None,
                    val_fraction: float = 0.05, overwrite: bool = False, progress: bool = False,
                    log=None, **extractor_options) -> PrepareReport:
    audio_dir, coeff_dir, out = Path(audio_dir), Path(coeff_dir), Path(out)
    # Checked up front: a bad value would otherwise reject every clip with a misleading reason
    # (exp_dim="16", tolerance -1) or silently disable a check (tolerance NaN compares False).
    if not is_real(tolerance_frames) or not 0 <= tolerance_frames < math.inf:
        raise ValueError(f"tolerance_frames must be a finite number >= 0, got {tolerance_frames!r}")
    if not is_real(fps) or not 0 < fps < math.inf:
        raise ValueError(f"fps must be a finite number > 0, got {fps!r}")
    if not is_int(min_frames) or min_frames < 1:
        raise ValueError(f"min_frames must be an integer >= 1, got {min_frames!r}")
    if exp_dim is not None and (not is_int(exp_dim) or exp_dim < 1):
        raise ValueError(f"exp_dim must be an integer >= 1, got {exp_dim!r}")
    if not is_real(val_fraction) or not 0 <= val_fraction < 1:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction!r}")
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out}: exists and is not a folder")
    if (out / mf.MANIFEST_FILE).exists() and not overwrite:
        raise FileExistsError(f"{out}: already holds a dataset (pass overwrite / --overwrite)")
    audio, audio_dup = _index(audio_dir, AUDIO_EXTENSIONS, "audio")
    coeffs, coeff_dup = _index(coeff_dir, COEFF_EXTENSIONS, "coefficient")
    report = PrepareReport(out)

    def reject(cid, reason):
        report.rejected.append({"id": cid, "reason": reason})
        if log:
            log(f"rejected {cid}: {reason}")

    for stem, names in sorted({**audio_dup, **coeff_dup}.items()):
        reject(stem, f"ambiguous: several files with this name ({', '.join(names)})")
    ambiguous = set(audio_dup) | set(coeff_dup)
    for stem in sorted(set(audio) - set(coeffs) - ambiguous):
        reject(stem, f"audio {audio[stem].name} has no coefficient file in {coeff_dir}")
    for stem in sorted(set(coeffs) - set(audio) - ambiguous):
        reject(stem, f"coefficients {coeffs[stem].name} have no audio file in {audio_dir}")
    stems = sorted((set(audio) & set(coeffs)) - ambiguous)

    # Pass 1: read and check the motion of every pair.
    motions = {}
    for stem in stems:
        try:
            m = read_motion(coeffs[stem], fps=fps)
        except (ValueError, OSError) as exc:
            reject(stem, str(exc))
            continue
        if abs(m.fps - fr.FPS) > 1e-6:
            reject(stem, f"{coeffs[stem].name}: motion at {m.fps:g} fps, expected {fr.FPS} "
                         "(resample it first)")
        elif not np.isfinite(m.exp).all() or (m.pose is not None and not np.isfinite(m.pose).all()):
            reject(stem, f"{coeffs[stem].name}: contains NaN or infinite values")
        elif m.num_frames < min_frames:
            reject(stem, f"{coeffs[stem].name}: {m.num_frames} frames, fewer than {min_frames}")
        else:
            motions[stem] = m
    if exp_dim is None and motions:
        exp_dim = Counter(m.num_dims for m in motions.values()).most_common(1)[0][0]
    for stem in list(motions):
        if motions[stem].num_dims != exp_dim:
            reject(stem, f"{coeffs[stem].name}: {motions[stem].num_dims} expression dims, the "
                         f"dataset uses {exp_dim}")
            del motions[stem]

    # Pass 2: audio, length agreement, writing clips and features.
    extractor = get_extractor(feature, **extractor_options) if feature else None
    cache = FeatureCache(out / mf.FEATURES_DIR)
    (out / mf.CLIPS_DIR).mkdir(parents=True, exist_ok=True)
    items = sorted(motions.items())
    if progress:
        from tqdm import tqdm

        items = tqdm(items, desc="clips", unit="clip")
    for stem, m in items:
        try:
            samples = load_audio(audio[stem])
        except (ValueError, OSError) as exc:
            reject(stem, str(exc))
            continue
        audio_frames = samples.size / fr.SAMPLES_PER_FRAME
        if abs(audio_frames - m.num_frames) > tolerance_frames:
            reject(stem, f"length mismatch: audio {audio[stem].name} is {samples.size / 16000:.3f} s "
                         f"= {audio_frames:.2f} frames, coefficients have {m.num_frames} frames "
                         f"(tolerance {tolerance_frames:g})")
            continue
        rel = f"{mf.CLIPS_DIR}/{stem}.npz"
        Motion(m.exp, m.pose, fr.FPS).save(out / rel)
        digest = audio_digest(samples)
        if extractor is not None:
            rows = fr.num_rows(m.num_frames)
            key = cache_key(digest, extractor.config(), rows)
            if cache.get(key, extractor.name, rows, extractor.dim) is None:
                cache.put(key, extractor.name, extractor(samples, rows))
        report.accepted.append({"id": stem, "motion": rel, "audio": str(audio[stem].resolve()),
                                "audio_sha256": digest, "frames": m.num_frames,
                                "duration": round(samples.size / fr.SAMPLE_RATE, 4),
                                "has_pose": m.pose is not None})
    if not report.accepted:
        mf.write_jsonl(out / mf.REJECTED_FILE, report.rejected)
        raise ValueError(f"{out}: no usable clips ({len(report.rejected)} rejected, see "
                         f"{out / mf.REJECTED_FILE})")

    split = _split_of([r["id"] for r in report.accepted], val_fraction)
    for r in report.accepted:
        r["split"] = split[r["id"]]
    train = [motions[r["id"]].exp for r in report.accepted if r["split"] == "train"]
    stacked = np.concatenate(train).astype(np.float64)
    meta = {"format_version": mf.FORMAT_VERSION, "fps": fr.FPS, "exp_dim": int(exp_dim),
            "exp_mean": stacked.mean(0).astype(np.float32).tolist(),
            "exp_std": stacked.std(0).astype(np.float32).tolist(),
            "stats_split": "train", "num_clips": len(report.accepted),
            "feature": getattr(extractor, "name", None)}
    mf.write_json(out / mf.DATASET_FILE, meta)
    mf.write_jsonl(out / mf.REJECTED_FILE, report.rejected)
    mf.write_jsonl(out / mf.MANIFEST_FILE, report.accepted)   # last: its presence means "done"
    return report
