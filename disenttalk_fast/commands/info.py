"""`disenttalk info`: print build_info() — what was compiled in and what can run here.

It is the diagnostic command, so a bad environment variable (DISENTTALK_BACKEND,
DISENTTALK_THREAD_POOL) does not stop it: the whole report is printed, the field `*_env_error`
says what is wrong, the same line goes to stderr, and the exit status is 1 (0 when nothing is
wrong)."""

from __future__ import annotations

import json
import sys

# The fields of build_info() that name a problem with the environment.
ENV_ERRORS = ("backend_env_error", "thread_pool_env_error")


def add_parser(sub, name: str) -> None:
    p = sub.add_parser(name, help="show compiled backends, devices and versions",
                       description="Show compiled backends, devices and versions. Exit status 1 "
                                   "when an environment variable it reports is invalid.")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(run=run)


def run(args) -> int:
    from disenttalk_fast import build_info

    info = build_info()
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        width = max(map(len, info))
        for key, value in info.items():
            if isinstance(value, list):
                value = ", ".join(value) or "-"
            print(f"{key:<{width}}  {value if value is not None else '-'}")
    problems = [info[key] for key in ENV_ERRORS if info.get(key)]
    sys.stdout.flush()
    for problem in problems:
        print(f"disenttalk {args.command}: error: {problem}", file=sys.stderr)
    return 1 if problems else 0
