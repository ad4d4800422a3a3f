"""The `disenttalk` command line. Each subcommand lives in its own module under
`disenttalk_fast.commands` and registers itself here; errors a user can fix are printed as one
line (no traceback) with exit status 2."""

from __future__ import annotations

import argparse
import importlib
import sys

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
    except (UserError, ValueError, FileNotFoundError, RuntimeError) as exc:
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
