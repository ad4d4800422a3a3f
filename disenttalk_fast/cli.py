"""The `disenttalk` command line. Each subcommand lives in its own module under
`disenttalk_fast.commands` and registers itself here; errors a user can fix are printed as one
line (no traceback) with exit status 2."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import tempfile
from pathlib import Path

# name -> module in disenttalk_fast.commands; each module has add_parser(subparsers) and run(args).
COMMANDS = {
    "info": "info",
    "disentangle": "disentangle",
    "synth-corpus": "synth_corpus",
    "demo": "demo",
    "eval": "eval",
    "prepare": "prepare",
    "generate": "generate",
    "bench": "bench",
    "render": "render",
    "train": "train",
    "train-sync": "train_sync",
}


class UserError(Exception):
    """An error caused by input the user can fix; printed as one line."""


# The longest output file name: the atomic writers add a dot prefix and a ~16-byte temporary
# suffix to it, and most file systems allow 255 bytes.
MAX_NAME_BYTES = 230


def check_output_file(path, suffix: str | None = None) -> Path:
    """`path` as a Path, or a one-line UserError now, before any work, for an output file that
    could not be written at the end: a missing or read-only folder, a directory in its place,
    a name too long, or (given `suffix`) another extension than the content it will hold."""
    out = Path(path)
    if suffix is not None and out.suffix.lower() != suffix:
        raise UserError(f"{out}: the output is a {suffix} file; name it so")
    folder = out.parent
    if len(out.name.encode()) > MAX_NAME_BYTES:   # (first: stat() itself fails on such a name)
        raise UserError(f"{out.name[:40]}...: file name too long ({len(out.name.encode())} "
                        f"bytes, at most {MAX_NAME_BYTES})")
    if not folder.is_dir():
        raise UserError(f"{out}: folder {folder} does not exist")
    if out.is_dir():
        raise UserError(f"{out}: is a directory (give a file name)")
    _check_folder_takes_files(out)
    return out


def _check_folder_takes_files(out: Path) -> None:
    """Create and remove a temporary file beside `out`, as the atomic writers will: a one-line
    UserError now, before the work, if the folder takes no new file. (os.access says yes to
    root everywhere, even in /proc, where the writer then failed after all the work, naming
    its temporary file.)"""
    try:
        fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name[:100]}.", suffix=".tmp")
    except OSError as exc:
        raise UserError(f"{out}: folder {out.parent} is not writable "
                        f"({exc.strerror or exc})") from None
    os.close(fd)
    os.unlink(tmp)


def check_device_arg(device, flag: str = "--device"):
    """--device checked up front (None passes through): a one-line UserError for a device this
    machine lacks, instead of torch's assertion when the model is moved."""
    if device is None:
        return None
    from disenttalk_fast.generate import check_device

    try:
        return str(check_device(device))
    except ValueError as exc:
        # ("device: 'cuda' asked for, ..." from the library reads "--device: 'cuda' ...")
        raise UserError(f"{flag}: {str(exc).removeprefix('device: ')}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="disenttalk", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module in COMMANDS.items():
        mod = importlib.import_module(f"disenttalk_fast.commands.{module}")
        mod.add_parser(sub, name)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    # OSError: the file system's own refusals (a full disk, a permission lost mid-run) still
    # name the path in one line.
    except (UserError, ValueError, OSError, RuntimeError) as exc:
        print(f"disenttalk {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"disenttalk {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    # Run the copy imported as disenttalk_fast.cli, not this __main__ one: command modules raise
    # that module's UserError, which must be the class caught in main().
    from disenttalk_fast.cli import main as _main

    sys.exit(_main())
