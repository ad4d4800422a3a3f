"""`disenttalk info`: print build_info() — what was compiled in and what can run here.

It is the diagnostic command, so a bad environment variable (DISENTTALK_BACKEND,
DISENTTALK_THREAD_POOL) does not stop it: the whole report is printed, the field `*_env_error`
says what is wrong and the same line goes to stderr. The exit status is 1 for a variable that
is wrong everywhere (an unknown pool or backend, or a backend no device here can run), 0
otherwise: DISENTTALK_BACKEND=cuda on a GPU machine only breaks "auto" for CPU tensors, which is
reported as a warning."""

from __future__ import annotations

import json
import sys

# The fields of build_info() that name a problem with the environment.
ENV_ERRORS = ("backend_env_error", "thread_pool_env_error")


def add_parser(sub, name: str) -> None:
    p = sub.add_parser(name, help="show compiled backends, devices and versions",
                       description="Show compiled backends, devices and versions. Exit status 1 "
                                   "when an environment variable it reports is invalid "
                                   "everywhere here.")
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
    sys.stdout.flush()
    # A backend that still resolves on some device here is a warning, not an error.
    usable = info.get("auto_backend_cpu") or info.get("auto_backend_cuda")
    status = 0
    for key in ENV_ERRORS:
        if info.get(key):
            fatal = key != "backend_env_error" or not usable
            status = max(status, int(fatal))
            print(f"disenttalk {args.command}: {'error' if fatal else 'warning'}: {info[key]}",
                  file=sys.stderr)
    return status
