"""`disenttalk train`: train a DisentTalk denoiser on a clip dataset.

    disenttalk train DATA --out ckpt.safetensors --steps 100000 [--config cfg.json]
                     [--partition partition.json] [--sync-expert expert.safetensors] [--resume]
    torchrun --nproc_per_node 4 -m disenttalk_fast.cli train DATA --out ckpt.safetensors ...

DATA is a folder made by `disenttalk prepare` or an .npz of clips (see
`disenttalk_fast.training.data_source`). --config is a JSON file (or inline JSON object) of
DisentTalkConfig fields; num_dims, audio_dim and feature_type default to the data's.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from disenttalk_fast.cli import UserError, check_device_arg, check_output_file


def add_parser(sub, name: str) -> None:
    p = sub.add_parser(name, help="train the denoiser on a clip dataset (resumable; torchrun "
                                  "for several GPUs / nodes)")
    p.add_argument("data", help="prepared dataset folder or .npz of clips")
    p.add_argument("--out", required=True, help="checkpoint to write (.safetensors)")
    p.add_argument("--steps", type=int, required=True, help="total optimiser steps")
    p.add_argument("--config", help="DisentTalkConfig as a JSON file or inline JSON object")
    p.add_argument("--partition", help="partition JSON from `disenttalk disentangle` "
                                       "(default: contiguous lip / eye / global dims)")
    p.add_argument("--sync-expert", help="frozen sync expert (from `disenttalk train-sync`) for "
                                         "L_sync; without it lambda_sync is unused")
    p.add_argument("--resume", action="store_true", help="continue the run saved in --out")
    p.add_argument("--overwrite", action="store_true", help="start afresh even if --out exists")
    p.add_argument("--checkpoint-every", type=int, default=1000, help="steps between "
                   "checkpoints (default 1000; 0 = only at the end)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    p.add_argument("--lr", type=float, help="override the config's learning rate")
    p.add_argument("--batch-size", type=int, help="override the config's (global) batch size")
    p.add_argument("--window", type=int, help="override the config's training window (frames)")
    p.add_argument("--hubert", help="local HuBERT directory (feature_type hubert)")
    p.add_argument("--hubert-layer", type=int, help="HuBERT layer to read")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


def parse_config_arg(text: str | None) -> dict:
    if not text:
        return {}
    if text.lstrip().startswith("{"):
        source, body = "--config", text
    else:
        path = Path(text)
        if not path.is_file():
            raise UserError(f"{path}: no such config file")
        source, body = str(path), path.read_text()
    try:
        d = json.loads(body)
    except json.JSONDecodeError as exc:
        raise UserError(f"{source}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(d, dict):
        raise UserError(f"{source}: expected a JSON object of config fields")
    return d


def extractor_options(args) -> dict:
    return {k: v for k, v in (("hubert_dir", args.hubert), ("layer", args.hubert_layer))
            if v is not None}


def check_steps(steps: int) -> None:
    if steps < 1:
        raise UserError(f"--steps must be >= 1, got {steps}")


def run(args) -> int:
    from disenttalk_fast._torch import torch
    from disenttalk_fast.config import DisentTalkConfig
    from disenttalk_fast.model import DisentTalkDenoiser
    from disenttalk_fast.partition import Partition
    from disenttalk_fast.sync.expert import SyncExpert
    from disenttalk_fast.training import distributed
    from disenttalk_fast.training.data_source import load_training_data
    from disenttalk_fast.training.trainer import Trainer

    check_steps(args.steps)
    out = check_output_file(args.out, ".safetensors")
    check_device_arg(args.device)
    if args.resume and not out.is_file():
        raise UserError(f"{out}: nothing to resume (no such checkpoint)")
    if out.exists() and not (args.resume or args.overwrite):
        raise UserError(f"{out} exists: pass --resume to continue it or --overwrite to start again")
    if args.checkpoint_every < 0:
        raise UserError(f"--checkpoint-every must be >= 0, got {args.checkpoint_every}")
    # The overriding flags are checked here, so that an error names the flag, not --config.
    if args.lr is not None and not (math.isfinite(args.lr) and args.lr > 0):
        raise UserError(f"--lr must be a finite number > 0, got {args.lr}")
    if args.batch_size is not None and args.batch_size < 1:
        raise UserError(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.window is not None and args.window < 1:
        raise UserError(f"--window must be >= 1 frame, got {args.window}")
    cfg_fields = parse_config_arg(args.config)
    overrides = {k: v for k, v in (("lr", args.lr), ("batch_size", args.batch_size),
                                   ("window", args.window)) if v is not None}
    expert = SyncExpert.load(args.sync_expert) if args.sync_expert else None

    info = distributed.init_from_env(device=args.device)
    try:
        if args.resume:
            from disenttalk_fast.checkpoint import load_checkpoint
            feature = load_checkpoint(out).config.feature_type
            data = load_training_data(args.data, feature, **extractor_options(args))
            trainer = Trainer.resume(out, data.clips, sync_expert=expert, device=args.device
                                     if info is None else None, dist_info=info, **overrides)
        else:
            feature = cfg_fields.get("feature_type", "mel")
            data = load_training_data(args.data, feature, **extractor_options(args))
            cfg_fields.setdefault("num_dims", data.num_dims)
            cfg_fields.setdefault("audio_dim", data.audio_dim)
            cfg_fields.setdefault("feature_type", data.feature_type or feature)
            config = DisentTalkConfig.from_dict({**cfg_fields, **overrides}, "--config")
            partition = Partition.load(args.partition) if args.partition else None
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(args.seed)   # the same initial weights on every rank
                model = DisentTalkDenoiser(config, partition)
            device = info.device if info is not None else (
                args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
            trainer = Trainer(model, data.clips, exp_mean=data.exp_mean, exp_std=data.exp_std,
                              sync_expert=expert, seed=args.seed, device=device,
                              precision=args.precision, dist_info=info)
        main = info is None or info.is_main
        if main:
            world = f", {info.world_size} processes" if info else ""
            print(f"training on {data.description}{world}: step {trainer.step} -> {args.steps}, "
                  f"batch {trainer.batch_size}, window {trainer.window}, lr {trainer.lr}")
        if args.steps < trainer.step:
            raise UserError(f"{out} is already at step {trainer.step} > --steps {args.steps}")
        stats = trainer.fit(args.steps, out=out, checkpoint_every=args.checkpoint_every,
                            progress=not args.no_progress)
        if main:
            last = ", ".join(f"{k} {v:.4g}" for k, v in stats.items())
            print(f"{out}: step {trainer.step}" + (f" ({last})" if last else ""))
    finally:
        distributed.shutdown(info)
    return 0
