"""`read_motion` / `write_motion`: one entry point for every motion file format.

| format         | extension(s)        | content                                                  |
|----------------|---------------------|----------------------------------------------------------|
| `npz`          | .npz                | ours: exp, pose, fps, partition (`Motion.save`)          |
| `deep3d-mat`   | .mat                | `coeff` (L, 257) [+ `transform_params` (L, 5)]           |
| `deep3d-keys`  | .mat                | per-key id / exp / tex / angle / gamma / trans           |
| `deep3d-npy`   | .npy                | (L, 257) array                                           |
| `descriptor73` | .txt, .npy, .mat    | (L, 73) exp + angle + trans + crop (`coeff_3dmm` in .mat) |

Reading detects the format from the extension and the content (a .mat's keys, an array's width);
writing picks it from the extension (.npz -> npz, .mat -> deep3d-mat, .npy -> deep3d-npy,
.txt -> descriptor73) unless `format=` says otherwise.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from disenttalk_fast.interop import deep3d, descriptor73
from disenttalk_fast.interop.io import load_mat, load_npy

FORMATS = ("npz", "deep3d-mat", "deep3d-keys", "deep3d-npy", "descriptor73")
DEFAULT_WRITE = {".npz": "npz", ".mat": "deep3d-mat", ".npy": "deep3d-npy",
                 ".txt": "descriptor73"}
EXTENSIONS = {"npz": (".npz",), "deep3d-mat": (".mat",), "deep3d-keys": (".mat",),
              "deep3d-npy": (".npy",), "descriptor73": (".txt", ".npy", ".mat")}


def detect_format(path) -> str:
    """The format of an existing file (by extension, then content)."""
    path = Path(path)
    ext = path.suffix.lower()
    if ext == ".npz":
        return "npz"
    if ext == ".txt":
        return "descriptor73"
    if ext == ".npy":
        width = load_npy(path).shape[-1:] or (0,)
        if width[0] == deep3d.COEFF_DIMS:
            return "deep3d-npy"
        if width[0] == descriptor73.DIMS:
            return "descriptor73"
        raise ValueError(f"{path}: a .npy motion must be (frames, 257) Deep3DFaceRecon "
                         f"coefficients or (frames, 73) descriptors, got width {width[0]}")
    if ext == ".mat":
        d = load_mat(path)
        if "coeff" in d or "full_3dmm" in d:
            return "deep3d-mat"
        if descriptor73.MAT_KEY in d:
            width = np.asarray(d[descriptor73.MAT_KEY]).shape[-1]
            return "deep3d-mat" if width == deep3d.COEFF_DIMS else "descriptor73"
        if all(k in d for k in deep3d.KEYS):
            return "deep3d-keys"
        raise ValueError(f"{path}: .mat has none of the known motion keys (coeff, full_3dmm, "
                         f"coeff_3dmm, or {'/'.join(deep3d.KEYS)}); has "
                         f"{', '.join(sorted(d)) or 'nothing'}")
    raise ValueError(f"{path}: unknown motion file extension '{ext}' "
                     f"(use .npz, .mat, .npy or .txt)")


def _check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise ValueError(f"unknown motion format '{fmt}' (choose from {', '.join(FORMATS)})")
    return fmt


def read_motion(path, format: str | None = None, fps: float = 25.0):
    """A `Motion` from any supported file. `fps` applies to formats that do not store it."""
    from disenttalk_fast.motion import Motion

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such motion file")
    fmt = _check_format(format) if format else detect_format(path)
    if fmt == "npz":
        return Motion.load(path)
    if fmt == "descriptor73":
        return descriptor73.from_descriptor(descriptor73.read_descriptor(path), fps)
    return deep3d.read_deep3d(path).to_motion(fps)


def read_template(path) -> "deep3d.Deep3DCoeffs | np.ndarray":
    """Identity / texture / lighting / crop to write with: Deep3DCoeffs or a (L, 73) descriptor."""
    fmt = detect_format(path)
    if fmt == "descriptor73":
        return descriptor73.read_descriptor(path)
    if fmt == "npz":
        raise ValueError(f"{path}: an .npz motion has no identity or crop to use as a template")
    return deep3d.read_deep3d(path)


def write_motion(motion, path, format: str | None = None, template=None) -> str:
    """Write `motion` to `path` (atomically) and return the format used.

    `template`: a path or the result of `read_template` supplying what motion does not hold —
    identity / texture / lighting / transform_params for Deep3DFaceRecon files, crop for the
    descriptor. Without one, those are zeros and `descriptor73.DEFAULT_CROP`.
    """
    path = Path(path)
    ext = path.suffix.lower()
    if format:
        fmt = _check_format(format)
        if ext not in EXTENSIONS[fmt]:
            raise ValueError(f"{path}: format '{fmt}' is written as "
                             f"{' / '.join(EXTENSIONS[fmt])}, not '{ext}'")
    elif ext in DEFAULT_WRITE:
        fmt = DEFAULT_WRITE[ext]
    else:
        raise ValueError(f"{path}: cannot tell the motion format from '{ext}' "
                         f"(use .npz, .mat, .npy or .txt, or pass a format)")
    if isinstance(template, (str, Path)):
        template = read_template(template)
    if fmt == "npz":
        motion.save(path)
    elif fmt == "descriptor73":
        crop = None
        if isinstance(template, deep3d.Deep3DCoeffs) and template.transform_params is not None:
            crop = template.transform_params[:, 2:5]
        elif isinstance(template, np.ndarray):
            crop = template[:, descriptor73.CROP]
        descriptor73.write_descriptor(descriptor73.to_descriptor(motion, crop), path)
    else:
        tpl = template if isinstance(template, deep3d.Deep3DCoeffs) else None
        coeffs = deep3d.Deep3DCoeffs.from_motion(motion, tpl)
        if fmt == "deep3d-npy":
            deep3d.write_deep3d_npy(coeffs, path)
        else:
            deep3d.write_deep3d_mat(coeffs, path, per_key=(fmt == "deep3d-keys"))
    return fmt
