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
.txt -> descriptor73) unless `format=` says otherwise. Only npz stores the frame rate: the others
read back at `read_motion`'s `fps` (25 unless told), so writing them at another rate warns.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from disenttalk_fast.interop import deep3d, descriptor73
from disenttalk_fast.interop.io import load_mat, load_npy

FORMATS = ("npz", "deep3d-mat", "deep3d-keys", "deep3d-npy", "descriptor73")
DEFAULT_WRITE = {".npz": "npz", ".mat": "deep3d-mat", ".npy": "deep3d-npy",
                 ".txt": "descriptor73"}
# The frame rate of every format but npz, which alone stores one (the model's 25 fps).
DEFAULT_FPS = 25.0
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


def read_motion(path, format: str | None = None, fps: float = DEFAULT_FPS):
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

    `motion` must be a `Motion`; a bare (frames, dims) expression array is refused rather than
    guessed at (its pose and frame rate are unknown): wrap it as `Motion(exp)`.

    `template`: a path or the result of `read_template` (a `Deep3DCoeffs`, or a (frames, 73)
    descriptor array) supplying what motion does not hold — identity / texture / lighting /
    transform_params for Deep3DFaceRecon files, crop for the descriptor. Without one, those are
    zeros and `descriptor73.DEFAULT_CROP`. A template that can supply nothing to the format (any
    template for npz, a descriptor for a Deep3DFaceRecon file, Deep3DFaceRecon coefficients
    without transform_params for the descriptor) is an error, not ignored.

    Only npz stores the frame rate: writing a motion whose fps is not 25 in any other format
    warns, since it reads back at `read_motion`'s `fps` (25 unless told otherwise).
    """
    from disenttalk_fast.motion import Motion

    if not isinstance(motion, Motion):
        raise TypeError(f"write_motion: motion must be a Motion, got {type(motion).__name__} "
                        f"(wrap a (frames, dims) expression array as Motion(exp))")
    path = Path(path)
    fmt = output_format(path, format)
    template = check_template(template, fmt, path)
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
        coeffs = deep3d.Deep3DCoeffs.from_motion(motion, template)
        if fmt == "deep3d-npy":
            deep3d.write_deep3d_npy(coeffs, path)
        else:
            deep3d.write_deep3d_mat(coeffs, path, per_key=(fmt == "deep3d-keys"))
    if fmt != "npz" and motion.fps != DEFAULT_FPS:
        warnings.warn(f"{path}: the {fmt} format stores no frame rate; this {motion.fps:g} fps "
                      f"motion reads back as {DEFAULT_FPS:g} fps unless read_motion is given "
                      f"fps={motion.fps:g}", stacklevel=2)
    return fmt


def output_format(path, format: str | None = None) -> str:
    """The format `write_motion` writes `path` in: `format`, checked against the extension, or
    the extension's default."""
    path = Path(path)
    ext = path.suffix.lower()
    if format:
        fmt = _check_format(format)
        if ext not in EXTENSIONS[fmt]:
            raise ValueError(f"{path}: format '{fmt}' is written as "
                             f"{' / '.join(EXTENSIONS[fmt])}, not '{ext}'")
        return fmt
    if ext in DEFAULT_WRITE:
        return DEFAULT_WRITE[ext]
    raise ValueError(f"{path}: cannot tell the motion format from '{ext}' "
                     f"(use .npz, .mat, .npy or .txt, or pass a format)")


def check_template(template, fmt: str, path: Path):
    """`template` as a Deep3DCoeffs, a checked (frames, 73) descriptor or None, for writing
    `path` in `fmt` (see `write_motion`); callers that generate first check it up front."""
    if isinstance(template, (str, os.PathLike)):
        template = read_template(template)
    elif isinstance(template, np.ndarray):
        template = descriptor73.check("template", template)
    elif template is not None and not isinstance(template, deep3d.Deep3DCoeffs):
        raise TypeError(f"write_motion: template must be a path, a Deep3DCoeffs or a (frames, 73) "
                        f"descriptor array, got {type(template).__name__}")
    if template is None:
        return None
    if fmt == "npz":
        raise ValueError(f"{path}: an npz motion holds no identity or crop, so it takes no "
                         f"template")
    if len(template.coeff if isinstance(template, deep3d.Deep3DCoeffs) else template) == 0:
        # A template of another length than the motion gives its first frame; it needs one.
        raise ValueError(f"{path}: the template has no frames")
    if (fmt == "descriptor73" and isinstance(template, deep3d.Deep3DCoeffs)
            and template.transform_params is None):
        raise ValueError(f"{path}: the template has no transform_params to give the descriptor "
                         f"its crop")
    if isinstance(template, np.ndarray) and fmt.startswith("deep3d"):
        raise ValueError(f"{path}: a 73-d descriptor template has no identity, texture or "
                         f"lighting to give a Deep3DFaceRecon file (use a Deep3DFaceRecon "
                         f".mat/.npy template, or none)")
    return template
