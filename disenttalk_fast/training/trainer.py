"""`Trainer`: trains a DisentTalkDenoiser on random windows of clips.

    from disenttalk_fast.training import Trainer
    trainer = Trainer(model, clips, exp_mean=mean, exp_std=std, sync_expert=expert, seed=0)
    trainer.fit(10_000, out="ckpt.safetensors", checkpoint_every=1000)
    trainer = Trainer.resume("ckpt.safetensors", clips)          # continues exactly
    trainer.fit(20_000, out="ckpt.safetensors", checkpoint_every=1000)

One step: draw a batch of windows and (t, noise, audio-drop mask) from the trainer's generator,
L = L_noise + lambda * L_sync (Eq. 8, Eq. 10 with the frozen expert), Adam, gradient clipping,
EMA update. Settings default to the model's DisentTalkConfig (lr, batch_size, window, ema_decay,
grad_clip, lambda_sync). Under torchrun the model is wrapped in DistributedDataParallel, the
batch is split over the ranks (batch_size is the global batch) and only rank 0 writes.

Checkpoints (`disenttalk_fast.checkpoint`) hold the raw weights, the EMA weights (what sampling
should use: `load_checkpoint(path, use_ema=True)`) and the full training state as extra tensors
(see `training.state`); they are written to a temporary file and renamed, so a killed run leaves
the previous checkpoint intact.
"""

from __future__ import annotations

import contextlib
import math
import os
from pathlib import Path

from disenttalk_fast._checks import is_int, is_real
from disenttalk_fast._torch import torch
from disenttalk_fast.diffusion.gaussian import GaussianDiffusion
from disenttalk_fast.sync.expert import SyncExpert, SyncLoss
from disenttalk_fast.training import distributed, state
from disenttalk_fast.training.ema import EMA
from disenttalk_fast.training.windows import RandomWindows

PRECISIONS = ("fp32", "bf16")
MAX_LR = 1e3   # far above any useful Adam lr; larger ones overflow Adam's float32 update


def _integer(name: str, value, low: int) -> int:
    # a float would be truncated silently (batch_size=2.7 -> 2)
    if not is_int(value) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def _number(name: str, value, ok, rule: str) -> float:
    if not is_real(value) or not ok(float(value)):
        raise ValueError(f"{name} must be {rule}, got {value!r}")
    return float(value)


def check_settings(s: dict) -> dict:
    """The training settings in `s` (any subset), validated: one-line ValueError naming the bad
    one. NaN fails every comparison, so each rule is written to be False for it."""
    rules = {
        "lr": lambda v: _number("lr", v, lambda x: 0 < x <= MAX_LR, f"a number in (0, {MAX_LR:g}]"),
        "batch_size": lambda v: _integer("batch_size", v, 1),
        "window": lambda v: _integer("window", v, 1),
        "ema_decay": lambda v: _number("ema_decay", v, lambda x: 0 <= x < 1, "in [0, 1)"),
        "grad_clip": lambda v: _number("grad_clip", v, lambda x: 0 <= x < math.inf,
                                       "a finite number >= 0 (0: no clipping)"),
        "lambda_sync": lambda v: _number("lambda_sync", v, lambda x: 0 <= x < math.inf,
                                         "a finite number >= 0"),
        "seed": lambda v: _integer("seed", v, 0),
    }
    out = {k: rules[k](v) if k in rules else v for k, v in s.items()}
    if "precision" in out and out["precision"] not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, "
                         f"got {out['precision']!r}")
    return out


class Trainer:
    def __init__(self, model, clips, *, exp_mean=None, exp_std=None,
                 sync_expert: SyncExpert | None = None, lr: float | None = None,
                 batch_size: int | None = None, window: int | None = None,
                 ema_decay: float | None = None, grad_clip: float | None = None,
                 lambda_sync: float | None = None, seed: int = 0, device=None,
                 precision: str = "fp32", dist_info: distributed.DistInfo | None = None):
        from disenttalk_fast.checkpoint import _stats_tensor
        from disenttalk_fast.sync.expert import FRAMES

        cfg = model.config
        given = {"lr": lr, "batch_size": batch_size, "window": window, "ema_decay": ema_decay,
                 "grad_clip": grad_clip, "lambda_sync": lambda_sync}
        s = check_settings({**{k: getattr(cfg, k) if v is None else v for k, v in given.items()},
                            "seed": seed, "precision": precision})
        self.lr, self.batch_size, self.window = s["lr"], s["batch_size"], s["window"]
        self.ema_decay, self.grad_clip, self.lambda_sync = (s["ema_decay"], s["grad_clip"],
                                                            s["lambda_sync"])
        self.seed, self.precision = s["seed"], precision
        if sync_expert is not None and self.window < FRAMES:
            raise ValueError(f"window must be >= {FRAMES} frames with a sync expert (its windows "
                             f"are {FRAMES} frames), got {self.window}")

        self.dist = dist_info if dist_info is not None else distributed.current()
        world = self.dist.world_size if self.dist else 1
        rank = self.dist.rank if self.dist else 0
        if self.batch_size % world:
            raise ValueError(f"batch_size {self.batch_size} does not split over {world} processes")
        self.device = torch.device(device) if device is not None else (
            self.dist.device if self.dist else next(model.parameters()).device)

        self.model = model.to(self.device).train()
        self.partition = model.partition
        n = cfg.num_dims
        # checked now, not at the first save after hours of training
        self.exp_mean = _stats_tensor(torch.zeros(n) if exp_mean is None else exp_mean,
                                      "exp_mean", cfg)
        self.exp_std = _stats_tensor(torch.ones(n) if exp_std is None else exp_std, "exp_std", cfg)
        if not torch.all(self.exp_std > 0):
            raise ValueError("exp_std must be > 0 in every dim")
        self.data = RandomWindows(clips, self.window, self.batch_size // world, num_dims=n,
                                  audio_dim=cfg.audio_dim)
        if sync_expert is not None and sync_expert.audio_dim != self.data.audio_dim:
            raise ValueError(f"the sync expert takes audio features of dim {sync_expert.audio_dim}"
                             f", the clips have {self.data.audio_dim}")
        self.diffusion = GaussianDiffusion.from_config(cfg)
        self.sync_expert = sync_expert.to(self.device).freeze() if sync_expert is not None else None
        self.sync_loss = SyncLoss(self.sync_expert) if self.sync_expert is not None else None
        if self.sync_expert is not None and tuple(self.sync_expert.lip_dims) != self.partition.lip:
            raise ValueError(f"sync expert lip dims {self.sync_expert.lip_dims} differ from the "
                             f"model's partition lip dims {self.partition.lip}")
        # Each rank draws its own windows and noise; rank 0 of seed s draws what a 1-process run
        # of seed s draws.
        self.generator = torch.Generator().manual_seed(self.seed + 1_000_003 * rank)
        self.ddp = distributed.wrap(self.model, self.dist) if self.dist else None
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=self.lr)
        self.ema = EMA(self.model, self.ema_decay) if self.ema_decay > 0 else None
        self.step = 0

    # -- one step ------------------------------------------------------------------------------
    def _autocast(self):
        if self.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    def train_step(self) -> dict[str, float]:
        exp, audio = self.data.draw(self.generator)
        exp, audio = exp.to(self.device), audio.to(self.device)
        net = self.ddp if self.ddp is not None else self.model
        with self._autocast():
            out = self.diffusion.training_losses(
                net, exp, audio, generator=self.generator, sync_loss=self.sync_loss,
                lambda_sync=self.lambda_sync)
        self.optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        grad_norm = None
        if self.grad_clip > 0:
            grad_norm = float(torch.nn.utils.clip_grad_norm_(self.model.parameters(),
                                                             self.grad_clip))
        self.optimizer.step()
        self.step += 1
        if self.ema is not None:
            self.ema.update(self.model, self.step)
        stats = {"loss": float(out.loss.detach()), "noise_loss": float(out.noise_loss.detach())}
        if out.sync_loss is not None:
            stats["sync_loss"] = float(out.sync_loss.detach())
        if grad_norm is not None:
            stats["grad_norm"] = grad_norm
        return stats

    def fit(self, steps: int, *, out: str | os.PathLike | None = None, checkpoint_every: int = 0,
            progress=True, log=None) -> dict[str, float]:
        """Train until `steps` total steps (counting steps done before a resume). progress: True
        for a tqdm bar with the loss (rank 0), or a callable(step, stats). Returns the last
        step's stats."""
        steps = _integer("steps", steps, 0)
        checkpoint_every = _integer("checkpoint_every", checkpoint_every, 0)
        if steps < self.step:
            raise ValueError(f"steps={steps} is below the {self.step} steps already trained")
        main = self.dist is None or self.dist.is_main
        if out is not None and main and not Path(out).parent.is_dir():
            # before training, not after it
            raise ValueError(f"out: folder {Path(out).parent} does not exist")
        bar = None
        if progress is True and main:
            from tqdm import tqdm
            bar = tqdm(total=steps, initial=self.step, desc="train", unit="step")
        stats: dict[str, float] = {}
        try:
            while self.step < steps:
                stats = self.train_step()
                if not math.isfinite(stats["loss"]):
                    raise RuntimeError(f"training diverged at step {self.step} (loss "
                                       f"{stats['loss']}); lower lr or raise grad_clip")
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{stats['loss']:.4f}")
                elif callable(progress):
                    progress(self.step, stats)
                if out is not None and checkpoint_every and self.step % checkpoint_every == 0 \
                        and self.step < steps:
                    self._save_unless_diverged(out)
        finally:
            if bar is not None:
                bar.close()
        if out is not None:
            self._save_unless_diverged(out)
        return stats

    def _save_unless_diverged(self, out) -> None:
        # The loss is computed before the optimizer step, so a finite loss can still leave NaN
        # weights; the checkpoint would then be refused by save_checkpoint with a less clear
        # message. Every rank holds the same weights, so every rank raises.
        ema = list(self.ema.model.parameters()) if self.ema is not None else []
        if not all(torch.isfinite(p).all() for p in [*self.model.parameters(), *ema]):
            raise RuntimeError(f"training diverged: the weights hold NaN or inf after step "
                               f"{self.step}; {out} was not written (lower lr or set grad_clip)")
        self.save(out)

    # -- checkpoints ---------------------------------------------------------------------------
    def training_state(self) -> tuple[dict, dict]:
        """(extra tensors, extra metadata) describing the full training state."""
        named = list(self.model.named_parameters())
        tensors = state.optimizer_tensors(self.optimizer, named)
        rng = distributed.gather_tensors(state.rng_tensor(self.generator), self.dist)
        for r, g in enumerate(rng):
            tensors[f"{state.PREFIX}rng.rank{r}"] = g
        tensors[f"{state.PREFIX}torch_rng"] = torch.random.get_rng_state()
        meta = {"training": {
            "step": self.step, "world_size": len(rng), "seed": self.seed, "lr": self.lr,
            "batch_size": self.batch_size, "window": self.window, "ema_decay": self.ema_decay,
            "grad_clip": self.grad_clip, "lambda_sync": self.lambda_sync,
            "precision": self.precision, "sync_expert": self.sync_expert is not None}}
        return tensors, meta

    def save(self, path: str | os.PathLike) -> None:
        """Write a checkpoint atomically (rank 0 only; every rank must call it)."""
        from disenttalk_fast.checkpoint import save_checkpoint

        tensors, meta = self.training_state()   # collective under DDP: every rank takes part
        if self.dist is None or self.dist.is_main:
            ema = self.ema.model.state_dict() if self.ema is not None else None
            save_checkpoint(path, self.model, partition=self.partition, exp_mean=self.exp_mean,
                            exp_std=self.exp_std, extra_tensors=tensors, extra_meta=meta,
                            ema_state=ema)  # atomic: temp file + os.replace
        distributed.barrier(self.dist)

    @classmethod
    def resume(cls, path: str | os.PathLike, clips, *, sync_expert: SyncExpert | None = None,
               device=None, dist_info: distributed.DistInfo | None = None, **overrides) -> "Trainer":
        """Continue the run saved in `path` exactly: weights, EMA, Adam state, step and every
        rank's generator. Settings are the saved ones unless overridden."""
        from disenttalk_fast.checkpoint import load_checkpoint

        ckpt = load_checkpoint(path, map_location="cpu")
        meta = (ckpt.meta or {}).get("training")
        if not isinstance(meta, dict):
            raise ValueError(f"{path}: no training state to resume from (not written by the "
                             "trainer)")
        saved = {k: meta[k] for k in ("lr", "batch_size", "window", "ema_decay", "grad_clip",
                                      "lambda_sync", "seed", "precision")
                 if k in meta and k not in overrides}
        step = meta.get("step")
        try:
            check_settings(saved)   # bad saved values are the file's fault: name it
            _integer("step", step, 0)
        except ValueError as exc:
            raise ValueError(f"{path}: bad training state ({exc})") from None
        settings = {**saved, **overrides}
        if meta.get("sync_expert") and sync_expert is None:
            raise ValueError(f"{path}: the run used a sync expert; pass the same one to resume")
        trainer = cls(ckpt.model, clips, exp_mean=ckpt.exp_mean, exp_std=ckpt.exp_std,
                      sync_expert=sync_expert, device=device, dist_info=dist_info, **settings)
        named = list(trainer.model.named_parameters())
        state.load_optimizer_tensors(trainer.optimizer, named, ckpt.extra_tensors, str(path))
        if trainer.ema is not None:
            if ckpt.ema_state is None:
                raise ValueError(f"{path}: has no EMA weights to resume (pass ema_decay=0)")
            trainer.ema.model.load_state_dict(ckpt.ema_state)
        rank = trainer.dist.rank if trainer.dist else 0
        key = f"{state.PREFIX}rng.rank{rank}"
        world = trainer.dist.world_size if trainer.dist else 1
        if meta.get("world_size") == world and key in ckpt.extra_tensors:
            trainer.generator.set_state(ckpt.extra_tensors[key].to(torch.uint8))
        else:  # a different process count cannot replay the same draws: continue freshly seeded
            trainer.generator.manual_seed(trainer.seed + 1_000_003 * rank + step)
        rng = ckpt.extra_tensors.get(f"{state.PREFIX}torch_rng")
        if rng is not None:
            torch.random.set_rng_state(rng.to(torch.uint8))
        trainer.step = int(step)
        return trainer
