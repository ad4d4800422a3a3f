"""Write a synthetic corpus folder (`disenttalk synth-corpus`).

Layout of DIR:

    corpus.json             seed, clip counts, languages, noise, layout version
    clips.jsonl             per clip: id, language, split, text, voice, style, frames, phonemes
    audio/<id>.wav          16 kHz mono PCM-16, exactly frames * 640 samples
    weights/<id>.npy        (L, 19) ground-truth semantic blendshape weights (float32)
    train/                  clip dataset (data.manifest format): train + val clips, both languages
    test/                   clip dataset: the held-out test clips (split "test"), train's stats
    train_en/               clip dataset: the English train + val clips only (cross-lingual runs)
    edits/original/<id>.npy     (L, 64) expression of every clip (same as its dataset motion)
    edits/closed_lips/<id>.npy  the same clip with lips closed   } inputs of
    edits/closed_eyes/<id>.npy  the same clip with eyes closed   } `disenttalk disentangle`

Splits are per language: of every language's clips, the last ~10% are test, the ~10% before
them val, the rest train. The corpus is written to DIR.partial and renamed into place at the end,
so an interrupted run never leaves a folder that looks complete.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import numpy as np
import soundfile as sf

from disenttalk_fast.corpus import motion_synth, projection
from disenttalk_fast.corpus.clip import LANGUAGES, SAMPLE_RATE, clip_seed, make_clip

LAYOUT_VERSION = 1
DATASETS = ("train", "test", "train_en")


def split_of(index: int, count: int) -> str:
    """Per-language split: last ~10% test, the ~10% before them val (each >= 1 when count >= 3)."""
    n_hold = max(1, round(0.1 * count)) if count >= 3 else 0
    if index >= count - n_hold:
        return "test"
    if index >= count - 2 * n_hold:
        return "val"
    return "train"


def _edits_rng(seed: int, language: str, index: int) -> np.random.Generator:
    return np.random.default_rng(clip_seed(seed, language, index) ^ 0x5EED)


def _write_dataset(folder: Path, rows: list[dict], exp_mean: np.ndarray, exp_std: np.ndarray,
                   exp_dim: int) -> None:
    from disenttalk_fast.data import manifest as mf

    folder.mkdir(parents=True, exist_ok=True)
    mf.write_jsonl(folder / mf.MANIFEST_FILE, rows)
    mf.write_json(folder / mf.DATASET_FILE, {
        "format_version": mf.FORMAT_VERSION, "fps": float(motion_synth.FPS), "exp_dim": exp_dim,
        "exp_mean": [float(v) for v in exp_mean], "exp_std": [float(v) for v in exp_std],
        "stats_split": "train", "num_clips": len(rows), "feature": "mel",
        "source": "disenttalk synth-corpus"})


def build_corpus(out: str | os.PathLike, per_language: int, seed: int = 0,
                 languages: tuple[str, ...] = LANGUAGES, overwrite: bool = False,
                 noise_std: float = projection.NOISE_STD,
                 log: Callable[[str], None] | None = None) -> dict:
    """Synthesise `per_language` clips per language into folder `out`; returns corpus.json."""
    from disenttalk_fast.audio.cache import audio_digest
    from disenttalk_fast.audio.load import load_audio
    from disenttalk_fast.motion import Motion

    out = Path(out)
    if per_language < 1:
        raise ValueError(f"--per-language must be >= 1, got {per_language}")
    unknown = [lang for lang in languages if lang not in LANGUAGES]
    if unknown:
        raise ValueError(f"unknown language(s) {', '.join(unknown)} (choose from "
                         f"{', '.join(LANGUAGES)})")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(f"{out}: already exists and is not empty (use --overwrite)")
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    for sub in ("audio", "weights", "edits/original", "edits/closed_lips", "edits/closed_eyes",
                "train/clips", "test/clips"):
        (tmp / sub).mkdir(parents=True)

    records: list[dict] = []
    for language in languages:
        for index in range(per_language):
            clip = make_clip(seed, language, index)
            split = split_of(index, per_language)
            rng = _edits_rng(seed, language, index)
            noise = projection.tracking_noise(clip.num_frames, rng, noise_std)
            exp = projection.weights_to_exp(clip.weights) + noise
            lips = projection.weights_to_exp(motion_synth.closed_lips(clip.weights)) + noise
            eyes = projection.weights_to_exp(motion_synth.closed_eyes(clip.weights)) + noise

            wav = tmp / "audio" / f"{clip.clip_id}.wav"
            sf.write(wav, clip.audio, SAMPLE_RATE, subtype="PCM_16")
            # the digest is of the samples as they will be decoded (PCM-16 rounding included)
            decoded = load_audio(wav)
            np.save(tmp / "weights" / f"{clip.clip_id}.npy", clip.weights)
            for name, arr in (("original", exp), ("closed_lips", lips), ("closed_eyes", eyes)):
                np.save(tmp / "edits" / name / f"{clip.clip_id}.npy", arr.astype(np.float32))
            dataset = "test" if split == "test" else "train"
            Motion(exp, clip.pose).save(tmp / dataset / "clips" / f"{clip.clip_id}.npz")
            records.append({
                "id": clip.clip_id, "language": language, "split": split, "text": clip.text,
                "voice": asdict(clip.voice), "style": asdict(clip.style),
                "frames": clip.num_frames, "audio_sha256": audio_digest(decoded),
                "phonemes": [[p.name, round(p.start, 4)] for p in clip.phonemes]})
            if log and (index + 1) % 50 == 0:
                log(f"{language}: {index + 1}/{per_language} clips")

    # Dataset folders (data.manifest format). Audio paths are absolute, as the format asks; they
    # point into the final folder name.
    final_audio = out.resolve() / "audio"
    train_exp = np.concatenate([np.load(tmp / "edits" / "original" / f"{r['id']}.npy")
                                for r in records if r["split"] == "train"])
    mean, std = train_exp.mean(axis=0), train_exp.std(axis=0)
    exp_dim = int(train_exp.shape[1])

    def row(r: dict, motion_path: str) -> dict:
        return {"id": r["id"], "motion": motion_path, "audio": str(final_audio / f"{r['id']}.wav"),
                "audio_sha256": r["audio_sha256"], "frames": r["frames"],
                "duration": r["frames"] / motion_synth.FPS, "split": r["split"],
                "has_pose": True, "language": r["language"]}

    train_rows = [row(r, f"clips/{r['id']}.npz") for r in records if r["split"] != "test"]
    _write_dataset(tmp / "train", train_rows, mean, std, exp_dim)
    _write_dataset(tmp / "test", [row(r, f"clips/{r['id']}.npz") for r in records
                                  if r["split"] == "test"], mean, std, exp_dim)
    en = [r for r in records if r["language"] == "en" and r["split"] != "test"]
    if en:
        en_exp = np.concatenate([np.load(tmp / "edits" / "original" / f"{r['id']}.npy")
                                 for r in en if r["split"] == "train"] or [train_exp])
        _write_dataset(tmp / "train_en", [row(r, f"../train/clips/{r['id']}.npz") for r in en],
                       en_exp.mean(axis=0), en_exp.std(axis=0), exp_dim)

    with open(tmp / "clips.jsonl", "w") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    summary = {"layout_version": LAYOUT_VERSION, "seed": seed, "per_language": per_language,
               "languages": list(languages), "noise_std": noise_std, "exp_dim": exp_dim,
               "clips": len(records),
               "splits": {s: sum(r["split"] == s for r in records) for s in ("train", "val", "test")},
               "frames": int(sum(r["frames"] for r in records))}
    (tmp / "corpus.json").write_text(json.dumps(summary, indent=1) + "\n")
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
    return summary


def load_records(corpus: str | os.PathLike) -> list[dict]:
    """The rows of DIR/clips.jsonl (one-line error when DIR is not a corpus)."""
    path = Path(corpus) / "clips.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{corpus}: not a synthetic corpus (no clips.jsonl; build one "
                                "with `disenttalk synth-corpus`)")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
