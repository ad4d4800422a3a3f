"""Drawing distinct sentences from a language's sentence templates, deterministically."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence


def distinct_sentences(templates: Sequence[Callable[[random.Random], str]], count: int,
                       seed_key: str) -> list[str]:
    """`count` distinct sentences from random templates; the same `seed_key` gives the same list."""
    rng = random.Random(seed_key)
    out: list[str] = []
    seen: set[str] = set()
    while len(out) < count:
        s = rng.choice(templates)(rng)
        if s not in seen:
            seen.add(s)
            out.append(s)
    return out
