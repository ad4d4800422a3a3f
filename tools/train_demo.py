#!/usr/bin/env python
"""Train the shipped demo model on the synthetic corpus, end to end, on a CPU.

    python tools/train_demo.py --work /tmp/demo --minutes 20

Steps (each skipped when its output already exists in --work, so a rerun resumes):
1. `disenttalk synth-corpus` (espeak-ng EN + ZH, --per-language clips each);
2. `disentangle` on the corpus's closed-lips / closed-eyes edits of the TRAIN clips -> partition;
3. log-mel features for every clip (cached in the dataset folders);
4. the sync expert (paper Eq. 10) on the train clips' lip dims;
5. a small denoiser with L_noise + 0.01 L_sync, for --minutes of wall-clock time (the step count
   is whatever fits; it is recorded): d_model 112 = lip 2 / eye 2 / global 3 heads of 16
   channels (every region needs at least as many channels as it has dims, or it cannot even
   pass its noise through and sampling diverges; with one eye head the model's blinks were
   shallow dips that rarely closed the eyes), 3 blocks, linear schedule (with cosine, alpha_bar_T ~
   1e-8 and the first DDIM step multiplies any eps error by ~800), and 3 frames of audio
   lookahead (the corpus's lips lead the sound by 1-2 frames, as real lips do);
6. the shipped files: the EMA weights without optimiser state (--out, default
   disenttalk_fast/assets/demo_model.safetensors), the sync expert
   (assets/sync_expert.safetensors) and one short English and one Mandarin test clip as 16 kHz
   WAVs (assets/sample_en.wav, sample_zh.wav).

Flags: --english-only trains on DIR/train_en (the cross-lingual run of `disenttalk eval`),
--no-disentangle / --no-sync-loss / --no-temporal-conv train the paper's ablations.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ASSETS = REPO / "disenttalk_fast" / "assets"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def demo_config(audio_dim: int, *, disentangle: bool = True, temporal_conv: bool = True,
                region_heads: tuple[int, int, int] = (2, 2, 3)):
    from disenttalk_fast.config import DisentTalkConfig

    return DisentTalkConfig(d_model=16 * sum(region_heads), head_dim=16,
                            region_heads=region_heads, n_layers=3,
                            lookahead=3, audio_dim=audio_dim, feature_type="mel",
                            timesteps=400, schedule="linear", batch_size=16, window=64,
                            lr=1e-3, ema_decay=0.995, disentangle=disentangle,
                            temporal_conv=temporal_conv)


def region_heads(text: str) -> tuple[int, int, int]:
    """--region-heads "lip,eye,global" -> three positive ints (argparse turns the error into one
    line)."""
    try:
        heads = tuple(int(h) for h in text.split(","))
    except ValueError:
        heads = ()
    if len(heads) != 3 or min(heads) < 1:
        raise argparse.ArgumentTypeError(f"expected three positive integers like 2,2,3, got "
                                         f"{text!r}")
    return heads


def load_clips(folder: Path, split: str):
    from disenttalk_fast.data.dataset import ClipDataset

    ds = ClipDataset(folder, feature="mel", split=split)
    ds.precompute_features()
    return ds, [{"exp": item["exp"], "audio": item["audio"], "name": item["id"]} for item in ds]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--work", required=True, help="working folder (corpus, intermediate files)")
    p.add_argument("--per-language", type=int, default=300)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--minutes", type=float, default=20.0, help="denoiser training time budget")
    p.add_argument("--sync-steps", type=int, default=1500)
    p.add_argument("--out", default=str(ASSETS / "demo_model.safetensors"))
    p.add_argument("--english-only", action="store_true")
    p.add_argument("--no-disentangle", action="store_true")
    p.add_argument("--no-sync-loss", action="store_true")
    p.add_argument("--no-temporal-conv", action="store_true")
    p.add_argument("--steps", type=int, default=0,
                   help="stop after this many denoiser steps (0: only the time budget)")
    p.add_argument("--snapshot-steps", type=int, default=0,
                   help="also keep the EMA weights at this step (equal-budget comparisons)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run checkpoint in --work (<out stem>.train.safetensors) "
                        "for another --minutes")
    p.add_argument("--region-heads", type=region_heads, default=(2, 2, 3),
                   help="lip,eye,global heads of 16 channels (default 2,2,3: d_model 112)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (default 1: on a small shared CPU more threads "
                        "oversubscribe and run several times slower; 0 = torch's default)")
    p.add_argument("--no-assets", action="store_true",
                   help="do not write the sync expert and sample WAVs into the package")
    args = p.parse_args(argv)

    from disenttalk_fast._torch import torch
    from disenttalk_fast.corpus.build import build_corpus, load_records
    from disenttalk_fast.disentangle import disentangle
    from disenttalk_fast.model import DisentTalkDenoiser
    from disenttalk_fast.partition import Partition
    from disenttalk_fast.sync.expert import SyncExpert
    from disenttalk_fast.sync.train import train_sync_expert
    from disenttalk_fast.training import Trainer
    import numpy as np

    if args.threads:
        torch.set_num_threads(args.threads)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    corpus = work / "corpus"
    t0 = time.time()
    if not (corpus / "corpus.json").is_file():
        log(f"synthesising the corpus ({args.per_language} clips per language) into {corpus}")
        build_corpus(corpus, args.per_language, args.seed, overwrite=True)
    records = load_records(corpus)

    partition_path = work / "partition.json"
    if not partition_path.is_file():
        train_ids = [r["id"] for r in records if r["split"] == "train"]
        edits = {k: [np.load(corpus / "edits" / k / f"{i}.npy") for i in train_ids]
                 for k in ("original", "closed_lips", "closed_eyes")}
        disentangle(edits["original"], edits["closed_lips"], edits["closed_eyes"]).save(
            partition_path)
    partition = Partition.load(partition_path)
    log(f"partition: lip {list(partition.lip)} eye {list(partition.eye)}")

    dataset = corpus / ("train_en" if args.english_only else "train")
    ds, clips = load_clips(dataset, "train")
    log(f"{len(clips)} training clips from {dataset} ({sum(len(c['exp']) for c in clips)} frames)")

    expert_path = work / "sync_expert.safetensors"
    if args.english_only:
        expert_path = work / "sync_expert_en.safetensors"
    if not expert_path.is_file():
        log(f"training the sync expert ({args.sync_steps} steps)")
        expert = train_sync_expert(clips, partition.lip, steps=args.sync_steps, batch_size=64,
                                   seed=args.seed)
        expert.save(expert_path)
    expert = SyncExpert.load(expert_path)
    log(f"sync expert ready ({time.time() - t0:.0f} s so far)")

    config = demo_config(ds.feature_dim, disentangle=not args.no_disentangle,
                         temporal_conv=not args.no_temporal_conv, region_heads=args.region_heads)
    run_ckpt = work / (Path(args.out).stem + ".train.safetensors")
    sync = None if args.no_sync_loss else expert
    if args.resume and run_ckpt.is_file():
        # continue the run saved in run_ckpt exactly (weights, EMA, Adam state, RNG, step)
        trainer = Trainer.resume(run_ckpt, clips, sync_expert=sync)
        model = trainer.model
        log(f"resumed {run_ckpt} at step {trainer.step}")
    else:
        torch.manual_seed(args.seed)
        model = DisentTalkDenoiser(config, partition)
        trainer = Trainer(model, clips, exp_mean=ds.exp_mean, exp_std=ds.exp_std,
                          sync_expert=sync, seed=args.seed)
    n_params = sum(p.numel() for p in model.parameters())
    budget = args.minutes * 60.0
    start = time.time()
    chunk = 50
    history = []
    snapshot = None
    while time.time() - start < budget and not (args.steps and trainer.step >= args.steps):
        stats = trainer.fit(trainer.step + chunk, progress=False)
        if args.snapshot_steps and trainer.step == args.snapshot_steps:
            snapshot = {k: v.clone() for k, v in trainer.ema.model.state_dict().items()}
        history.append({"step": trainer.step, "elapsed_s": round(time.time() - start, 1),
                        **{k: round(v, 5) for k, v in stats.items()}})
        if trainer.step % 500 == 0:
            log(f"step {trainer.step}: {stats}")
            trainer.save(run_ckpt)
    trainer.save(run_ckpt)
    elapsed = time.time() - start
    log(f"trained {trainer.step} steps in {elapsed / 60:.1f} min ({n_params} parameters)")

    # The shipped file: EMA weights as the model weights, no optimiser / RNG state.
    from disenttalk_fast.checkpoint import save_checkpoint

    shipped = DisentTalkDenoiser(config, partition)
    shipped.load_state_dict(trainer.ema.model.state_dict() if trainer.ema else model.state_dict())
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if snapshot is not None:
        snap = DisentTalkDenoiser(config, partition)
        snap.load_state_dict(snapshot)
        save_checkpoint(work / f"{out.stem}.step{args.snapshot_steps}.safetensors", snap,
                        partition=partition, exp_mean=ds.exp_mean, exp_std=ds.exp_std,
                        extra_meta={"demo": {"steps": args.snapshot_steps}})
    info = {"trained_on": str(dataset.name), "steps": trainer.step,
            "train_minutes": round(elapsed / 60, 1), "parameters": n_params,
            "corpus": json.loads((corpus / "corpus.json").read_text()),
            "sync_loss": not args.no_sync_loss, "resumed": bool(args.resume),
            "machine": f"{os.cpu_count()} CPU cores",
            "torch_threads": torch.get_num_threads(),
            "note": "demo weights trained on synthetic espeak-ng speech (tools/train_demo.py)"}
    save_checkpoint(out, shipped, partition=partition, exp_mean=ds.exp_mean, exp_std=ds.exp_std,
                    extra_meta={"demo": info})
    (work / (out.stem + ".history.json")).write_text(json.dumps(history))
    log(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB)")

    if not args.no_assets:
        ASSETS.mkdir(exist_ok=True)
        shutil.copy(expert_path, ASSETS / "sync_expert.safetensors")
        for lang in ("en", "zh"):
            # the shortest test clip of at least 3 s: short enough to ship, long enough to show
            cands = [r for r in records if r["language"] == lang and r["split"] == "test"
                     and r["frames"] >= 75]
            pick = min(cands, key=lambda r: r["frames"])
            shutil.copy(corpus / "audio" / f"{pick['id']}.wav", ASSETS / f"sample_{lang}.wav")
            log(f"sample_{lang}.wav <- {pick['id']}: {pick['text']}")
    log(f"done in {(time.time() - t0) / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
