"""Model checkpoints: safetensors weights + JSON metadata. Never pickle.

One `.safetensors` file holds
- tensors `model.<state_dict key>`: the denoiser's weights;
- tensors `ema.<state_dict key>` (optional): the EMA of those weights, same keys and shapes;
- tensors `extra.<name>` (optional): anything else a caller keeps (e.g. a trainer's state);
- string metadata: `format` = "disenttalk_fast.checkpoint", `format_version`, and JSON for
  `config`, `partition` (with its scores), `stats` ({"exp_mean": [N floats], "exp_std": [...]},
  the per-dim normalisation of the expressions), `feature_type`, `schedule`, `dtype` and
  `extra` (a caller's JSON-serialisable dict).

Writes are atomic (temp file in the same folder, then os.replace): a killed run leaves either
the previous file or the new one, never a truncated file. Loading validates everything and
reports problems as one line naming the file.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from disenttalk_fast._atomic import atomic_output
from disenttalk_fast._torch import torch
from disenttalk_fast.config import DisentTalkConfig
from disenttalk_fast.model import DisentTalkDenoiser
from disenttalk_fast.partition import Partition

FORMAT = "disenttalk_fast.checkpoint"
FORMAT_VERSION = 1
MODEL_PREFIX, EMA_PREFIX, EXTRA_PREFIX = "model.", "ema.", "extra."
_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16,
           "float64": torch.float64}


class CheckpointError(ValueError):
    """A checkpoint file is missing, foreign, truncated or inconsistent (one-line message)."""


@dataclass
class Checkpoint:
    config: DisentTalkConfig
    partition: Partition
    model: DisentTalkDenoiser                 # weights loaded (EMA ones when asked and present)
    exp_mean: torch.Tensor                    # (N,) float32
    exp_std: torch.Tensor                     # (N,) float32
    meta: dict = field(default_factory=dict)  # the caller's extra_meta
    extra_tensors: dict[str, torch.Tensor] = field(default_factory=dict)
    ema_state: dict[str, torch.Tensor] | None = None   # EMA weights when the file has them
    feature_type: str = "mel"
    path: str = ""

    def normalize(self, exp: torch.Tensor) -> torch.Tensor:
        """Raw expressions (..., N) -> the normalised space the model works in."""
        return (exp - self.exp_mean.to(exp)) / self.exp_std.to(exp)

    def denormalize(self, z: torch.Tensor) -> torch.Tensor:
        return z * self.exp_std.to(z) + self.exp_mean.to(z)


# -- saving -------------------------------------------------------------------------------------

def save_checkpoint(path: str | os.PathLike, model: DisentTalkDenoiser, *, partition: Partition,
                    exp_mean, exp_std, extra_tensors: dict | None = None,
                    extra_meta: dict | None = None, ema_state: dict | None = None) -> None:
    """Write `model` (+ optional EMA weights, extra tensors and metadata) atomically to `path`.

    exp_mean / exp_std: (N,) per-dim normalisation stats (tensors or array-likes).
    ema_state: a state_dict with the model's keys (e.g. the trainer's EMA copy).
    """
    from safetensors.torch import save_file

    config = model.config
    if partition != model.partition:
        raise ValueError(f"{path}: the partition given differs from the model's partition")
    mean = _stats_tensor(exp_mean, "exp_mean", config)
    std = _stats_tensor(exp_std, "exp_std", config)
    if not torch.all(std > 0):
        raise ValueError(f"{path}: exp_std must be > 0 in every dim")

    tensors = {}
    state = model.state_dict()
    for key, value in state.items():
        tensors[MODEL_PREFIX + key] = _checked(path, MODEL_PREFIX + key, value, value)
    if ema_state is not None:
        if not isinstance(ema_state, dict):
            raise ValueError(f"{path}: ema_state must be a state_dict, not a "
                             f"{type(ema_state).__name__}")
        if set(ema_state) != set(state):
            diff = sorted(set(ema_state) ^ set(state))[:3]
            raise ValueError(f"{path}: ema_state keys differ from the model's (e.g. {diff})")
        for key, value in ema_state.items():
            tensors[EMA_PREFIX + key] = _checked(path, EMA_PREFIX + key, value, state[key])
    for key, value in (extra_tensors or {}).items():
        if not isinstance(value, torch.Tensor):
            raise ValueError(f"{path}: extra tensor {key!r} is a {type(value).__name__}, "
                             f"not a tensor")
        tensors[EXTRA_PREFIX + key] = _cpu(value)

    try:
        extra_json = json.dumps(extra_meta or {})
    except TypeError as exc:
        raise ValueError(f"{path}: extra_meta is not JSON-serialisable ({exc})") from None
    dtype = next(iter(state.values())).dtype if state else torch.float32
    metadata = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "config": config.to_json(),
        "partition": partition.to_json(),
        # float32 -> Python float -> JSON repr -> float32 is exact, so the stats round-trip.
        "stats": json.dumps({"exp_mean": mean.tolist(), "exp_std": std.tolist()}),
        "feature_type": config.feature_type,
        "schedule": config.schedule,
        "dtype": str(dtype).replace("torch.", ""),
        "extra": extra_json,
    }

    with atomic_output(path) as tmp:
        save_file(tensors, tmp, metadata=metadata)


def _checked(path, name: str, value, like: torch.Tensor) -> torch.Tensor:
    """`value` for the file, refused here when load_checkpoint would refuse it (`like`: the model
    tensor it must match), so a saved file always loads."""
    if not isinstance(value, torch.Tensor):
        raise ValueError(f"{path}: tensor {name!r} is a {type(value).__name__}, not a tensor")
    if tuple(value.shape) != tuple(like.shape) or value.dtype != like.dtype:
        raise ValueError(f"{path}: tensor {name!r} is {value.dtype} {tuple(value.shape)}, the "
                         f"model's is {like.dtype} {tuple(like.shape)}")
    if value.is_floating_point() and not torch.isfinite(value).all():
        raise ValueError(f"{path}: tensor {name!r} holds NaN or inf (a diverged training run?)")
    return _cpu(value)


def _cpu(t: torch.Tensor) -> torch.Tensor:
    # safetensors needs contiguous, unshared storage; clone so views of one buffer don't clash.
    return t.detach().to("cpu").contiguous().clone()


def _stats_tensor(value, name: str, config: DisentTalkConfig) -> torch.Tensor:
    try:
        t = torch.as_tensor(value, dtype=torch.float32).detach().cpu().reshape(-1)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ValueError(f"{name} must be {config.num_dims} numbers ({exc})") from None
    if t.numel() != config.num_dims:
        raise ValueError(f"{name} must have {config.num_dims} values, got {t.numel()}")
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} must be finite")
    return t


# -- loading ------------------------------------------------------------------------------------

def load_checkpoint(path: str | os.PathLike, map_location="cpu", *, use_ema: bool = False,
                    backend: str = "reference") -> Checkpoint:
    """Read and validate a checkpoint; returns the config, partition, a model with its weights
    loaded (the EMA weights when `use_ema` and the file has them), the stats and the extras.

    The model is a `DisentTalkDenoiser` for backend "reference" and a `FastDenoiser` (same
    weights, fused blocks) for any other backend."""
    path = Path(path)
    metadata = _read(path, lambda f: f.metadata() or {})
    _check_format(path, metadata)
    tensors = _read(path, lambda f: {key: f.get_tensor(key) for key in f.keys()})
    config = _parse(path, metadata, "config",
                    lambda d: DisentTalkConfig.from_dict(d, "config"))
    partition = _parse(path, metadata, "partition", lambda d: Partition.from_dict(d, "partition"))
    stats = _parse(path, metadata, "stats", lambda d: d)
    extra_meta = _parse(path, metadata, "extra", lambda d: d) if "extra" in metadata else {}
    try:
        exp_mean = _stats_tensor(stats["exp_mean"], "exp_mean", config)
        exp_std = _stats_tensor(stats["exp_std"], "exp_std", config)
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: bad normalisation stats ({exc})") from None
    if not torch.all(exp_std > 0):
        raise CheckpointError(f"{path}: bad normalisation stats (exp_std must be > 0)")
    # Written from the config (save_checkpoint): a file where the two disagree was edited.
    feature_type = metadata.get("feature_type", config.feature_type)
    if feature_type != config.feature_type:
        raise CheckpointError(f"{path}: metadata feature_type {feature_type!r} disagrees with "
                              f"the config's {config.feature_type!r}")
    dtype = _DTYPES.get(metadata.get("dtype", "float32"))
    if dtype is None:
        raise CheckpointError(f"{path}: unsupported weight dtype {metadata.get('dtype')!r}")

    _check_size(path, config, tensors)
    model = _build(path, config, partition, backend).to(dtype)
    expected = model.state_dict()
    weights = _take(path, tensors, MODEL_PREFIX, expected, required=True)
    ema = _take(path, tensors, EMA_PREFIX, expected, required=False)
    extra = {k[len(EXTRA_PREFIX):]: v for k, v in tensors.items() if k.startswith(EXTRA_PREFIX)}
    unknown = [k for k in tensors if not k.startswith((MODEL_PREFIX, EMA_PREFIX, EXTRA_PREFIX))]
    if unknown:
        raise CheckpointError(f"{path}: unexpected tensor {unknown[0]!r}")

    model.load_state_dict(ema if (use_ema and ema is not None) else weights, strict=True)
    model = model.to(map_location)
    return Checkpoint(config=config, partition=partition, model=model, exp_mean=exp_mean,
                      exp_std=exp_std, meta=extra_meta, extra_tensors=extra, ema_state=ema,
                      feature_type=feature_type,
                      path=str(path))


def read_config(path: str | os.PathLike) -> DisentTalkConfig:
    """The config of the checkpoint at `path`, from its header alone (no weights are read): for
    checking arguments against a model (its T, its features) before loading it. The same
    one-line CheckpointErrors as `load_checkpoint` for a file that is missing, unreadable,
    foreign, of another format version, or whose config is invalid."""
    path = Path(path)
    metadata = _read(path, lambda f: f.metadata() or {})
    _check_format(path, metadata)
    return _parse(path, metadata, "config", lambda d: DisentTalkConfig.from_dict(d, "config"))


def _read(path: Path, what):
    """what(f) of the safetensors file at `path` opened with safe_open, or a one-line
    CheckpointError for a missing, non-file or unreadable (garbage, truncated) one."""
    from safetensors import SafetensorError, safe_open

    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint file")
    if not path.is_file():
        raise CheckpointError(f"{path}: not a file")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            return what(f)
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(f"{path}: not a readable safetensors file ({reason})") from None


def _check_format(path: Path, metadata: dict) -> None:
    if metadata.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a disenttalk_fast checkpoint (metadata 'format' is "
                              f"{metadata.get('format')!r})")
    version = metadata.get("format_version", "?")
    if version != str(FORMAT_VERSION):
        raise CheckpointError(f"{path}: checkpoint format version {version} is not supported "
                              f"(this library reads version {FORMAT_VERSION})")


def _check_size(path: Path, config: DisentTalkConfig, tensors: dict) -> None:
    """Refuse a config whose model could not fit in the file's weights before building it: a
    small file whose config claims a huge model would otherwise allocate and initialise that
    model's gigabytes first. The bound is a floor of the model's weights — each block's W_f
    (d x d) and the audio projection (audio_dim x d) — so it never refuses a matching file, and
    a config that passes builds at most ~15x the file's weights.
    (Building on the meta device would check every shape at no memory cost, but PyTorch's
    meta kernels for the initialisers import torch._dynamo: seconds on every load.)"""
    held = sum(t.numel() for k, t in tensors.items() if k.startswith(MODEL_PREFIX))
    d = config.d_model
    least = config.n_layers * d * d + config.audio_dim * d
    if least > held:
        raise CheckpointError(f"{path}: its config describes a model of at least {least:,} "
                              f"weights, the file holds {held:,} (config and weights disagree)")


def _build(path: Path, config, partition, backend: str):
    """The checkpoint's model class for `backend`."""
    try:
        if backend == "reference":
            return DisentTalkDenoiser(config, partition, backend=backend)
        from disenttalk_fast.model.fast import FastDenoiser

        return FastDenoiser(config, partition, backend=backend)
    except (ValueError, TypeError) as exc:
        raise CheckpointError(f"{path}: {exc}") from None


def _parse(path: Path, metadata: dict, key: str, build):
    if key not in metadata:
        raise CheckpointError(f"{path}: metadata has no {key!r} entry")
    try:
        return build(json.loads(metadata[key]))
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}: metadata {key!r} is not valid JSON ({exc.msg})") from None
    except (ValueError, TypeError, KeyError) as exc:
        raise CheckpointError(f"{path}: invalid {key}: {exc}") from None


def _take(path: Path, tensors: dict, prefix: str, expected: dict, required: bool):
    """The tensors under `prefix` as a state_dict, checked against the model's keys/shapes."""
    found = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
    if not found and not required:
        return None
    for key, want in expected.items():
        if key not in found:
            raise CheckpointError(f"{path}: missing tensor {prefix + key!r}")
        got = found[key]
        if tuple(got.shape) != tuple(want.shape):
            raise CheckpointError(f"{path}: tensor {prefix + key!r} has shape "
                                  f"{tuple(got.shape)}, expected {tuple(want.shape)}")
        if got.dtype != want.dtype:
            raise CheckpointError(f"{path}: tensor {prefix + key!r} has dtype {got.dtype}, "
                                  f"expected {want.dtype}")
        if got.is_floating_point() and not torch.isfinite(got).all():
            raise CheckpointError(f"{path}: tensor {prefix + key!r} holds NaN or inf "
                                  f"(a diverged training run?)")
    surplus = sorted(set(found) - set(expected))
    if surplus:
        raise CheckpointError(f"{path}: unexpected tensor {prefix + surplus[0]!r} for this config")
    return found
