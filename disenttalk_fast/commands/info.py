"""`disenttalk info`: print build_info() — what was compiled in and what can run here."""

from __future__ import annotations

import json


def add_parser(sub, name: str) -> None:
    p = sub.add_parser(name, help="show compiled backends, devices and versions")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(run=run)


def run(args) -> int:
    from disenttalk_fast import build_info

    info = build_info()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    width = max(map(len, info))
    for key, value in info.items():
        if isinstance(value, list):
            value = ", ".join(value) or "-"
        print(f"{key:<{width}}  {value if value is not None else '-'}")
    return 0
