"""`Partition`: which expression dims belong to the lip, eye and global regions.

It is data, saved with every model and motion file, never hard-coded: the dims come from the
disentanglement analysis (paper Eq. 1-2, `disenttalk_fast.disentangle`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

from disenttalk_fast._atomic import atomic_output

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
        for name in ("lip", "eye", "global_"):
            object.__setattr__(self, name, tuple(int(i) for i in getattr(self, name)))
        all_dims = self.lip + self.eye + self.global_
        if sorted(all_dims) != list(range(self.num_dims)):
            dup = sorted({i for i in all_dims if all_dims.count(i) > 1})
            missing = sorted(set(range(self.num_dims)) - set(all_dims))
            raise ValueError(f"partition must cover dims 0..{self.num_dims - 1} exactly once "
                             f"(duplicated: {dup or 'none'}, missing or out of range: "
                             f"{missing or sorted(set(all_dims) - set(range(self.num_dims)))})")
        if not self.lip or not self.eye or not self.global_:
            raise ValueError("partition regions must each hold at least one dim")

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
        try:
            return cls(d["lip"], d["eye"], d["global"], int(d["num_dims"]),
                       {k: tuple(map(float, v)) for k, v in d.get("scores", {}).items()})
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
            with open(path) as f:
                d = json.load(f)
        except FileNotFoundError:
            raise FileNotFoundError(f"{path}: no such partition file") from None
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
        if not isinstance(d, dict):
            raise ValueError(f"{path}: expected a JSON object")
        return cls.from_dict(d, str(path))
