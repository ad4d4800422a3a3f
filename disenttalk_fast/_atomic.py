"""Atomic file output: write to a temporary file beside the target, then rename it into place.

A crash or an exception midway leaves the previous file (or no file) — never a partial output
that looks complete. The temporary file gets the permissions a plain open() would have given
(mkstemp's are 0600).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, suffix: str = ".tmp"):
    """Yields a temporary path to write; on success it replaces `path`, on error it is removed.

    `suffix` lets writers that pick a format from the extension (PyAV: ".tmp.mp4") see it.
    """
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise FileNotFoundError(f"{path}: folder {parent} does not exist")
    fd, tmp = tempfile.mkstemp(dir=parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    try:
        yield tmp
        # After the writer: some (safetensors' save_file) replace the file they are given with
        # one of their own, which would bring back mkstemp's 0600.
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
