"""`Partition`: which expression dims belong to the lip, eye and global regions.

It is data, saved with every model and motion file, never hard-coded: the dims come from the
disentanglement analysis (paper Eq. 1-2, `disenttalk_fast.disentangle`).
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from dataclasses import dataclass, field

from disenttalk_fast._atomic import atomic_output
from disenttalk_fast._checks import is_int, is_real
from disenttalk_fast.config import SIZE_LIMITS

REGIONS = ("lip", "eye", "global")


@dataclass(frozen=True)
class Partition:
    """Disjoint index lists over `num_dims` expression dims; together they cover every dim.

    `scores` optionally keeps the per-dim sensitivity scores the partition was chosen from
    (region -> list of num_dims floats), for inspection.
    """

    lip: tuple[int, ...]
    eye: tuple[int, ...]
    global_: tuple[int, ...]
    num_dims: int
    scores: dict[str, tuple[float, ...]] = field(default_factory=dict, compare=False)

    def __post_init__(self):
        # Checked before anything is built from it: a crafted file's num_dims = 10**9 would
        # otherwise allocate lists of that length.
        n = self.num_dims
        if not is_int(n) or not 1 <= n <= SIZE_LIMITS["num_dims"]:
            raise ValueError(f"num_dims must be an integer in 1..{SIZE_LIMITS['num_dims']}, "
                             f"got {n!r}")
        object.__setattr__(self, "num_dims", int(n))
        for name in ("lip", "eye", "global_"):
            dims = getattr(self, name)
            # No int() coercion: "01" or 1.7 would silently become other dims.
            if (isinstance(dims, (str, bytes)) or not hasattr(dims, "__iter__")
                    or not all(is_int(i) for i in dims)):
                raise ValueError(f"{name.rstrip('_')} must be a list of integer dims, "
                                 f"got {dims!r}"[:200])
            object.__setattr__(self, name, tuple(int(i) for i in dims))
        object.__setattr__(self, "scores", self._checked_scores(self.scores))
        all_dims = self.lip + self.eye + self.global_
        if sorted(all_dims) != list(range(self.num_dims)):
            # Counter, not list.count: a crafted file may hold a very long index list.
            dup = sorted(i for i, k in Counter(all_dims).items() if k > 1)
            missing = sorted(set(range(self.num_dims)) - set(all_dims))
            raise ValueError(f"partition must cover dims 0..{self.num_dims - 1} exactly once "
                             f"(duplicated: {dup or 'none'}, missing or out of range: "
                             f"{missing or sorted(set(all_dims) - set(range(self.num_dims)))})")
        if not self.lip or not self.eye or not self.global_:
            raise ValueError("partition regions must each hold at least one dim")

    def _checked_scores(self, scores) -> dict[str, tuple[float, ...]]:
        if not isinstance(scores, dict):
            raise ValueError(f"scores must be a mapping of region to values, got "
                             f"{type(scores).__name__}")
        out = {}
        for region, values in scores.items():
            if region not in ("lip", "eye"):
                raise ValueError(f"scores: unknown region {region!r} (expected lip, eye)")
            if (isinstance(values, (str, bytes, dict)) or not hasattr(values, "__len__")
                    or len(values) != self.num_dims
                    or not all(is_real(v)
                               and math.isfinite(v) for v in values)):
                raise ValueError(f"scores[{region!r}] must be {self.num_dims} finite numbers")
            out[region] = tuple(float(v) for v in values)
        return out

    # -- access ------------------------------------------------------------------------------
    def region(self, name: str) -> tuple[int, ...]:
        if name not in REGIONS:
            raise ValueError(f"unknown region '{name}' (choose from {', '.join(REGIONS)})")
        return self.global_ if name == "global" else getattr(self, name)

    @property
    def regions(self) -> dict[str, tuple[int, ...]]:
        return {name: self.region(name) for name in REGIONS}

    @property
    def order(self) -> tuple[int, ...]:
        """Dims in region order (lip, eye, global): x[..., order] groups the regions."""
        return self.lip + self.eye + self.global_

    @property
    def sizes(self) -> tuple[int, int, int]:
        return len(self.lip), len(self.eye), len(self.global_)

    # -- construction ------------------------------------------------------------------------
    @classmethod
    def contiguous(cls, num_dims: int = 64, k_lip: int = 13, k_eye: int = 8) -> "Partition":
        """lip = the first k_lip dims, eye = the next k_eye, global = the rest (for tests and
        models trained without a disentanglement analysis)."""
        if k_lip + k_eye >= num_dims:
            raise ValueError(f"k_lip + k_eye = {k_lip + k_eye} leaves no global dims of {num_dims}")
        return cls(tuple(range(k_lip)), tuple(range(k_lip, k_lip + k_eye)),
                   tuple(range(k_lip + k_eye, num_dims)), num_dims)

    # -- serialisation -----------------------------------------------------------------------
    def to_dict(self) -> dict:
        d = {"num_dims": self.num_dims, "lip": list(self.lip), "eye": list(self.eye),
             "global": list(self.global_)}
        if self.scores:
            d["scores"] = {k: list(v) for k, v in self.scores.items()}
        return d

    @classmethod
    def from_dict(cls, d: dict, source: str = "partition") -> "Partition":
        if not isinstance(d, dict):
            raise ValueError(f"{source}: expected a JSON object, got {type(d).__name__}")
        # A typo ("lips") must not pass unnoticed, as in DisentTalkConfig.from_dict.
        unknown = sorted(map(str, set(d) - {"num_dims", "lip", "eye", "global", "scores"}))
        if unknown:
            raise ValueError(f"{source}: unknown partition key(s) {', '.join(map(repr, unknown))}")
        for key in ("lip", "eye", "global"):
            if key in d and not isinstance(d[key], list):
                raise ValueError(f"{source}: {key} must be a list of dims, got "
                                 f"{type(d[key]).__name__}")
        try:
            return cls(d["lip"], d["eye"], d["global"], d["num_dims"], d.get("scores", {}))
        except KeyError as exc:
            raise ValueError(f"{source}: missing key {exc.args[0]!r}") from None
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{source}: {exc}") from None

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    def save(self, path: str | os.PathLike) -> None:
        with atomic_output(path) as tmp, open(tmp, "w") as f:
            json.dump(self.to_dict(), f, indent=1)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Partition":
        try:
            with open(path, encoding="utf-8") as f:
                d = json.load(f)
        except FileNotFoundError:
            raise FileNotFoundError(f"{path}: no such partition file") from None
        except IsADirectoryError:
            raise ValueError(f"{path}: is a directory, not a partition file") from None
        except UnicodeDecodeError:
            raise ValueError(f"{path}: not a partition file (not UTF-8 text)") from None
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
        if not isinstance(d, dict):
            raise ValueError(f"{path}: expected a JSON object")
        return cls.from_dict(d, str(path))

