"""Region control at sampling time — the point of the disentangled lip / eye / global split.

    RegionControl(lip_scale=1.3,                       # exaggerate the lips
                  freeze={"global": ref_frame},        # hold the global dims at one frame
                  replace={"eye": ref_sequence})       # take the eyes from a reference clip

All values are in the model's normalised expression space (what `sample` returns). A reference
may hold all N dims (the region's dims are taken from it) or only the region's K_r dims, in the
region's own dim order (partition.region(name)).

How each is applied, and why:
- freeze / replace are inpainting: the region's dims are known values, imposed on the clean
  motion estimate of every denoising step (`sampling.step`), so the other regions are generated
  consistently with them, and they hold exactly at the end (the output equals the reference on
  those dims).
- scale multiplies the region's dims of the final output (about 0, i.e. about the training mean
  expression). It is applied after sampling, never inside the diffusion state, so windowed
  generation chains windows on the unscaled motion and a scale of s gives exactly s times the
  unscaled result of the same seed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from disenttalk_fast._checks import is_real
from disenttalk_fast._torch import torch
from disenttalk_fast.partition import REGIONS
from disenttalk_fast.sampling.step import Known


def _check_region(name: str, what: str) -> str:
    if name not in REGIONS:
        raise ValueError(f"{what}: unknown region {name!r} (choose from {', '.join(REGIONS)})")
    return name


class _ReadOnlyDict(dict):
    """A dict that cannot change once made: a RegionControl's checks ran on its contents. It
    still pickles, copies and compares as a dict (process pools, dataclasses.asdict)."""

    def _refuse(self, *args, **kwargs):
        raise TypeError("a RegionControl cannot change after it is made (its checks ran then); "
                        "make a new one, e.g. dataclasses.replace(control, ...)")

    __setitem__ = __delitem__ = __ior__ = clear = pop = popitem = setdefault = update = _refuse

    def __reduce__(self):
        return type(self), (dict(self),)


def _same_references(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        a[k].shape == b[k].shape and torch.equal(a[k].cpu(), b[k].cpu()) for k in a)


# Dims of a reference: freeze takes one frame, replace a sequence; each with an optional batch.
_REF_DIMS = {"freeze": (1, 2), "replace": (2, 3)}


def _as_reference(kind: str, region: str, ref) -> torch.Tensor:
    """A freeze / replace reference as a float32 tensor, or a one-line error for one that is no
    array of numbers of the right rank. (Its width and length are checked against the model
    when sampling: they need the partition and the number of frames.)"""
    what = f"RegionControl {kind}[{region!r}]"
    try:
        # (a copy: a caller's array changed later must not bypass the checks below)
        t = torch.as_tensor(ref, dtype=torch.float32).detach().clone()
    except (TypeError, ValueError, RuntimeError):
        raise ValueError(f"{what}: expected an array of numbers, got "
                         f"{type(ref).__name__}") from None
    if t.dim() not in _REF_DIMS[kind]:
        shape = ("one frame (dims,) or (batch, dims)" if kind == "freeze"
                 else "a sequence (frames, dims) or (batch, frames, dims)")
        raise ValueError(f"{what}: expected {shape}, got shape {tuple(t.shape)}")
    if t.numel() == 0:
        raise ValueError(f"{what}: reference is empty")
    if not torch.isfinite(t).all():
        raise ValueError(f"{what}: reference holds NaN or inf")
    return t


@dataclass(frozen=True, eq=False)
class RegionControl:
    lip_scale: float | None = None
    eye_scale: float | None = None
    global_scale: float | None = None
    scale: dict = field(default_factory=dict)     # region -> factor (alternative spelling)
    freeze: dict = field(default_factory=dict)    # region -> one frame: (N,) / (K_r,) / (B, .)
    replace: dict = field(default_factory=dict)   # region -> sequence: (L', N|K_r) / (B, L', .)

    # Frozen, its dicts read-only copies: a control is checked once, here, so changing
    # it afterwards (c.lip_scale = 2, c.scale["lip"] = 2) is an error rather than silently
    # ignored or unchecked.
    def __post_init__(self):
        scales = {k: v for k, v in (("lip", self.lip_scale), ("eye", self.eye_scale),
                                    ("global", self.global_scale)) if v is not None}
        for what in ("scale", "freeze", "replace"):
            if not isinstance(getattr(self, what), Mapping):
                raise ValueError(f"RegionControl: {what} must be a dict region -> value, got "
                                 f"{type(getattr(self, what)).__name__}")
        for k, v in dict(self.scale).items():
            _check_region(k, "RegionControl scale")
            if k in scales and scales[k] != v:
                raise ValueError(f"RegionControl: region {k!r} given two different scales")
            scales[k] = v
        for k, v in scales.items():
            if not is_real(v) or not math.isfinite(v):
                raise ValueError(f"RegionControl: scale of {k!r} must be a finite number, got {v!r}")
        refs = {}
        for kind in ("freeze", "replace"):
            refs[kind] = {_check_region(k, f"RegionControl {kind}"): _as_reference(kind, k, v)
                          for k, v in getattr(self, kind).items()}
        for k in refs["replace"]:
            if k in refs["freeze"]:
                raise ValueError(f"RegionControl: region {k!r} is both frozen and replaced")
        object.__setattr__(self, "scales", _ReadOnlyDict({k: float(v) for k, v in scales.items()}))
        object.__setattr__(self, "scale", _ReadOnlyDict(self.scale))
        for kind, checked in refs.items():
            object.__setattr__(self, kind, _ReadOnlyDict(checked))
        for k in self.scales:
            if k in self.freeze or k in self.replace:
                raise ValueError(f"RegionControl: region {k!r} is both scaled and fixed to a "
                                 "reference; scale the reference instead")

    def __eq__(self, other) -> bool:
        """The same control: the same resolved scales and equal references."""
        if not isinstance(other, RegionControl):
            return NotImplemented
        return (self.scales == other.scales
                and _same_references(self.freeze, other.freeze)
                and _same_references(self.replace, other.replace))

    @property
    def has_known(self) -> bool:
        return bool(self.freeze or self.replace)

    # -- known values for inpainting ---------------------------------------------------------
    def known(self, partition, batch: int, num_frames: int, device,
              dtype=torch.float32) -> Known | None:
        """Full-length known values (B, L, N) and a dim mask (1, 1, N) for frozen / replaced
        regions; None when nothing is fixed."""
        if not self.has_known:
            return None
        n = partition.num_dims
        values = torch.zeros(batch, num_frames, n, device=device, dtype=dtype)
        mask = torch.zeros(1, 1, n, dtype=torch.bool, device=device)
        for kind, refs in (("freeze", self.freeze), ("replace", self.replace)):
            for region, ref in refs.items():
                dims = torch.tensor(partition.region(region), device=device)
                v = self._region_values(kind, region, ref, len(dims), n, batch, num_frames)
                v = v.to(device=device, dtype=dtype)
                values[:, :, dims] = v[..., dims] if v.shape[-1] == n else v
                mask[..., dims] = True
        return Known(values, mask)

    @staticmethod
    def _region_values(kind, region, ref, k, n, batch, num_frames) -> torch.Tensor:
        what = f"RegionControl {kind}[{region!r}]"   # (ref: a checked float32 tensor)
        if ref.shape[-1] not in (n, k):
            raise ValueError(f"{what}: last dim must be N={n} (all dims) or K={k} (the region's "
                             f"dims), got shape {tuple(ref.shape)}")
        if kind == "freeze":  # one frame, held for every frame
            if ref.dim() == 1:
                ref = ref[None]
            if ref.dim() != 2 or ref.shape[0] not in (1, batch):
                raise ValueError(f"{what}: expected one frame (dims,) or (batch, dims), got "
                                 f"shape {tuple(ref.shape)}")
            return ref[:, None, :].expand(batch, num_frames, ref.shape[-1])
        if ref.dim() == 2:
            ref = ref[None]
        if ref.dim() != 3 or ref.shape[0] not in (1, batch):
            raise ValueError(f"{what}: expected a sequence (frames, dims) or (batch, frames, "
                             f"dims), got shape {tuple(ref.shape)}")
        if ref.shape[1] < num_frames:
            raise ValueError(f"{what}: reference has {ref.shape[1]} frames, fewer than the "
                             f"{num_frames} to generate (loop or pad it first)")
        return ref[:, :num_frames].expand(batch, num_frames, ref.shape[-1])

    # -- output transform --------------------------------------------------------------------
    def apply_output(self, x: torch.Tensor, partition) -> torch.Tensor:
        """Scale the scaled regions of the final (B, L, N) output."""
        if not self.scales:
            return x
        x = x.clone()
        for region, s in self.scales.items():
            dims = torch.tensor(partition.region(region), device=x.device)
            x[..., dims] = x[..., dims] * s
        return x
