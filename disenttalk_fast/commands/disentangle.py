"""`disenttalk disentangle`: choose the lip / eye / global expression dims (paper Eq. 1-2).

    disenttalk disentangle --original A --closed-lips B --closed-eyes C -o partition.json

A, B, C are expression files of the same clips, original and edited to closed lips / closed
eyes, or three folders of per-clip files with matching names. Readable files:
- `.npy`: an (L, N) array of expressions (or (L, 257) Deep3DFaceRecon coefficients);
- `.npz` / `.mat`: key `exp` (L, N); else `coeff` / `full_3dmm` (L, 257), exp = columns 80:144;
  else `coeff_3dmm` (L, 70 or 73, the PIRenderer / SadTalker descriptor), exp = columns 0:64.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from disenttalk_fast.cli import UserError, check_output_file

SUFFIXES = (".npy", ".npz", ".mat")
DEEP3D_DIMS, DEEP3D_EXP = 257, slice(80, 144)
DESCRIPTOR_DIMS, DESCRIPTOR_EXP = (70, 73), slice(0, 64)


def add_parser(sub, name: str) -> None:
    p = sub.add_parser(name, help="choose the lip / eye / global expression dims from "
                                  "original, closed-lips and closed-eyes expressions")
    p.add_argument("--original", required=True, help="expressions of the original clips "
                   "(.npy/.npz/.mat file, or a folder of per-clip files)")
    p.add_argument("--closed-lips", required=True, help="the same clips edited to closed lips")
    p.add_argument("--closed-eyes", required=True, help="the same clips edited to closed eyes")
    p.add_argument("-o", "--output", required=True, help="partition JSON to write")
    p.add_argument("--k-lip", type=int, default=13, help="dims in the lip region (default 13)")
    p.add_argument("--k-eye", type=int, default=8, help="dims in the eye region (default 8)")
    p.set_defaults(run=run)


def run(args) -> int:
    from disenttalk_fast.disentangle import disentangle

    inputs = {"original": args.original, "closed lips": args.closed_lips,
              "closed eyes": args.closed_eyes}
    names = _clip_names(inputs)
    clips = {role: [load_expressions(Path(path) / n) for n in names] if names
             else [load_expressions(path)] for role, path in inputs.items()}
    try:
        partition = disentangle(clips["original"], clips["closed lips"], clips["closed eyes"],
                                k_lip=args.k_lip, k_eye=args.k_eye)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    out = check_output_file(args.output, ".json")
    partition.save(out)
    print(f"{out}: lip {list(partition.lip)}  eye {list(partition.eye)}  "
          f"global {len(partition.global_)} dims  ({len(names) or 1} clip(s))")
    return 0


def _clip_names(inputs: dict[str, str]) -> list[str]:
    """[] when the three inputs are files; else the clip file names common to the folders."""
    kinds = {role: Path(p).is_dir() for role, p in inputs.items()}
    for role, path in inputs.items():
        if not Path(path).exists():
            raise UserError(f"{path}: no such file or folder ({role})")
    if not any(kinds.values()):
        return []
    if not all(kinds.values()):
        raise UserError("--original, --closed-lips and --closed-eyes must be all files or all "
                        "folders")
    listing = {role: sorted(f.name for f in Path(p).iterdir() if f.suffix.lower() in SUFFIXES)
               for role, p in inputs.items()}
    names = listing["original"]
    if not names:
        raise UserError(f"{inputs['original']}: no {'/'.join(SUFFIXES)} files in this folder")
    for role in ("closed lips", "closed eyes"):
        missing = sorted(set(names) - set(listing[role]))
        if missing:
            raise UserError(f"{inputs[role]}: missing {len(missing)} clip(s) of the original "
                            f"folder, e.g. {missing[0]}")
    return names


def load_expressions(path: str | Path) -> np.ndarray:
    """Read an (L, N) float32 expression array from .npy / .npz / .mat (see module docs)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            arrays = {"": np.load(path, allow_pickle=False)}
        elif suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        elif suffix == ".mat":
            from scipy.io import loadmat

            arrays = {k: v for k, v in loadmat(str(path)).items() if not k.startswith("__")}
        else:
            raise UserError(f"{path}: unsupported file type {suffix or '(none)'} "
                            f"(use {', '.join(SUFFIXES)})")
    except UserError:
        raise
    except Exception as exc:  # numpy / scipy raise many types for corrupt files
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"{path}: cannot read {suffix} file ({reason})") from None
    exp = _pick_expressions(path, arrays)
    if exp.dtype.kind not in "fiu":
        raise UserError(f"{path}: expressions must be numeric, got dtype {exp.dtype}")
    return exp.astype(np.float32)


def _pick_expressions(path: Path, arrays: dict) -> np.ndarray:
    if "" in arrays:                                    # .npy: the array itself
        a = np.asarray(arrays[""])
        a = _as_2d(path, "array", a)
        return a[:, DEEP3D_EXP] if a.shape[1] == DEEP3D_DIMS else a
    if "exp" in arrays:
        return _as_2d(path, "exp", np.asarray(arrays["exp"]))
    for key in ("coeff", "full_3dmm"):
        if key in arrays:
            a = _as_2d(path, key, np.asarray(arrays[key]))
            if a.shape[1] != DEEP3D_DIMS:
                raise UserError(f"{path}: '{key}' must have {DEEP3D_DIMS} columns "
                                f"(Deep3DFaceRecon), got {a.shape[1]}")
            return a[:, DEEP3D_EXP]
    if "coeff_3dmm" in arrays:
        a = _as_2d(path, "coeff_3dmm", np.asarray(arrays["coeff_3dmm"]))
        if a.shape[1] not in DESCRIPTOR_DIMS:
            raise UserError(f"{path}: 'coeff_3dmm' must have 70 or 73 columns, got {a.shape[1]}")
        return a[:, DESCRIPTOR_EXP]
    keys = ", ".join(sorted(arrays)) or "none"
    raise UserError(f"{path}: no 'exp', 'coeff', 'full_3dmm' or 'coeff_3dmm' array "
                    f"(found: {keys})")


def _as_2d(path: Path, key: str, a: np.ndarray) -> np.ndarray:
    if a.ndim == 3 and a.shape[1] == 1:                 # (L, 1, N) per-frame stacks
        a = a[:, 0]
    if a.ndim != 2 or a.shape[0] < 1:
        raise UserError(f"{path}: '{key}' must be a (frames, dims) array, got shape {a.shape}")
    return a
