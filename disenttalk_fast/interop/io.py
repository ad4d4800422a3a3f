"""File plumbing shared by the interop formats: atomic writes and one-line read errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from disenttalk_fast._atomic import atomic_output


def atomic_write(path, write) -> None:
    """Call write(binary file) on a temp file next to `path`, then rename it into place."""
    with atomic_output(path) as tmp, open(tmp, "wb") as f:
        write(f)


def _exists(path: Path) -> None:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")


def load_mat(path) -> dict:
    from scipy.io import loadmat

    path = Path(path)
    _exists(path)
    try:
        d = loadmat(str(path))
    except NotImplementedError:
        raise ValueError(f"{path}: MATLAB v7.3 (HDF5) .mat files are not supported; "
                         "save with -v7 or scipy.io.savemat") from None
    except Exception as exc:
        raise ValueError(f"{path}: not a readable .mat file ({str(exc).splitlines()[0]})") from None
    return {k: v for k, v in d.items() if not k.startswith("__")}


def save_mat(path, d: dict) -> None:
    from scipy.io import savemat

    atomic_write(path, lambda f: savemat(f, d))


def load_npy(path) -> np.ndarray:
    path = Path(path)
    _exists(path)
    try:
        return np.load(path, allow_pickle=False)
    except Exception as exc:
        raise ValueError(f"{path}: not a readable .npy array ({str(exc).splitlines()[0]})") from None
