"""The on-disk layout of a clip dataset (one folder):

    dataset.json        {"format_version", "fps", "exp_dim", "exp_mean", "exp_std",
                         "stats_split", "num_clips", "feature": name used at prepare time}
    manifest.jsonl      one JSON object per clip: {"id", "motion": "clips/<id>.npz",
                         "audio": absolute path, "audio_sha256": digest of the decoded 16 kHz
                         samples, "frames": L, "duration": seconds, "split": "train" | "val",
                         "has_pose": bool}
    clips/<id>.npz      the clip's motion in our .npz format (`Motion.save`): exp (L, N) float32
                        at 25 fps in the original coefficient space, optional pose (L, 6)
    features/<name>/    cached audio features (`FeatureCache`), keyed by audio content +
                        extractor config + row count, computed once
    rejected.jsonl      what `disenttalk prepare` refused, with the reason
"""

from __future__ import annotations

import json
from pathlib import Path

from disenttalk_fast.interop.io import atomic_write

FORMAT_VERSION = 1
DATASET_FILE = "dataset.json"
MANIFEST_FILE = "manifest.jsonl"
REJECTED_FILE = "rejected.jsonl"
CLIPS_DIR = "clips"
FEATURES_DIR = "features"
SPLITS = ("train", "val", "all")


def write_jsonl(path, rows) -> None:
    text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows)
    atomic_write(path, lambda f: f.write(text.encode()))


def write_json(path, obj) -> None:
    text = json.dumps(obj, indent=1, sort_keys=True) + "\n"
    atomic_write(path, lambda f: f.write(text.encode()))


def read_dataset(folder) -> tuple[dict, list[dict]]:
    """(dataset.json contents, manifest rows); one-line errors for a missing / broken folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such dataset folder")
    meta_path, man_path = folder / DATASET_FILE, folder / MANIFEST_FILE
    for p in (meta_path, man_path):
        if not p.is_file():
            raise FileNotFoundError(f"{folder}: not a clip dataset (no {p.name}; build one with "
                                    "`disenttalk prepare`)")
    try:
        meta = json.loads(_read_text(meta_path))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{meta_path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(meta, dict):
        raise ValueError(f"{meta_path}: expected a JSON object, got {type(meta).__name__}")
    version = meta.get("format_version", 0)
    if not _is_int(version):
        raise ValueError(f"{meta_path}: format_version must be an integer, got {version!r}")
    if version > FORMAT_VERSION:
        raise ValueError(f"{meta_path}: dataset format {version} is newer than "
                         f"this library reads ({FORMAT_VERSION})")
    rows = []
    for i, line in enumerate(_read_text(man_path).splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{man_path}: line {i} is not valid JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise ValueError(f"{man_path}: line {i} is not a JSON object")
        missing = [k for k in ("id", "motion", "audio", "frames") if k not in row]
        if missing:
            raise ValueError(f"{man_path}: line {i} lacks {', '.join(missing)}")
        wrong = [k for k in ("id", "motion", "audio") if not isinstance(row[k], str)]
        if wrong:
            raise ValueError(f"{man_path}: line {i}: {', '.join(wrong)} must be text")
        if not _is_int(row["frames"]) or row["frames"] < 1:
            raise ValueError(f"{man_path}: line {i}: frames must be an integer >= 1, got "
                             f"{row['frames']!r}")
        rows.append(row)
    return meta, rows


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a dataset file (not UTF-8 text)") from None


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
