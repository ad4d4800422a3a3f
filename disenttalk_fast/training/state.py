"""Training state <-> flat tensors, so a checkpoint can resume a run exactly with no pickle.

Everything lives in the checkpoint's safetensors file next to the raw and EMA weights (which
`disenttalk_fast.checkpoint` stores itself), as extra tensors:
    train.optim.<param>.<key>          Adam's per-parameter state (exp_avg, exp_avg_sq, step)
    train.rng.rank<r>                  each rank's data/noise generator state (uint8)
    train.torch_rng                    the global CPU RNG state (dropout, if a model has any)
and the scalar state (step, settings) goes into the JSON metadata.
"""

from __future__ import annotations

from disenttalk_fast._torch import torch

PREFIX = "train."


def optimizer_tensors(optimizer, named_params) -> dict[str, torch.Tensor]:
    out = {}
    for name, p in named_params:
        for key, value in optimizer.state.get(p, {}).items():
            t = value if isinstance(value, torch.Tensor) else torch.tensor(value)
            out[f"{PREFIX}optim.{name}.{key}"] = t.detach().cpu().contiguous()
    return out


def load_optimizer_tensors(optimizer, named_params, tensors: dict, source: str) -> None:
    """Restore per-parameter state in place (hyper-parameters come from the trainer)."""
    for name, p in named_params:
        prefix = f"{PREFIX}optim.{name}."
        state = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        if not state:
            continue  # the parameter never had a step (e.g. resumed at step 0)
        optimizer.state[p] = {k: v.to(p.device) if k != "step" else v.clone()
                              for k, v in state.items()}


def rng_tensor(generator: torch.Generator) -> torch.Tensor:
    return generator.get_state().clone()
