"""`disenttalk train-sync`: train the lip-sync expert (paper Eq. 10) that `disenttalk train
--sync-expert` uses for L_sync and evaluation uses for the sync scores.

    disenttalk train-sync DATA --out expert.safetensors --steps 5000 [--partition partition.json]
"""

from __future__ import annotations

import math

from disenttalk_fast.cli import UserError, check_device_arg, check_output_file
from disenttalk_fast.commands.train import check_steps, extractor_options


def add_parser(sub, name: str) -> None:
    p = sub.add_parser(name, help="train the lip-sync expert on aligned vs shifted windows")
    p.add_argument("data", help="prepared dataset folder or .npz of clips")
    p.add_argument("--out", required=True, help="expert file to write (.safetensors)")
    p.add_argument("--steps", type=int, default=5000)
    p.add_argument("--partition", help="partition JSON (its lip dims); default: the first "
                                       "--k-lip dims")
    p.add_argument("--k-lip", type=int, default=13, help="lip dims without --partition")
    p.add_argument("--feature", default="mel", choices=("mel", "hubert"))
    p.add_argument("--hubert", help="local HuBERT directory (feature hubert)")
    p.add_argument("--hubert-layer", type=int)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.set_defaults(run=run)


def run(args) -> int:
    from disenttalk_fast.partition import Partition
    from disenttalk_fast.sync.metrics import sync_scores
    from disenttalk_fast.sync.train import train_sync_expert
    from disenttalk_fast.training.data_source import load_training_data

    check_steps(args.steps)
    if args.batch_size < 1:
        raise UserError(f"--batch-size must be >= 1, got {args.batch_size}")
    if not (math.isfinite(args.lr) and args.lr > 0):
        raise UserError(f"--lr must be a finite number > 0, got {args.lr}")
    out = check_output_file(args.out, ".safetensors")
    check_device_arg(args.device)
    data = load_training_data(args.data, args.feature, **extractor_options(args))
    if args.partition:
        lip = Partition.load(args.partition).lip
    else:
        if not 1 <= args.k_lip < data.num_dims:
            raise UserError(f"--k-lip must be in [1, {data.num_dims}), got {args.k_lip}")
        lip = tuple(range(args.k_lip))
    from tqdm import tqdm
    bar = tqdm(total=args.steps, desc="train-sync", unit="step")

    def progress(step, loss):
        bar.update(1)
        bar.set_postfix(loss=f"{loss:.4f}")

    try:
        expert = train_sync_expert(data.clips, lip, steps=args.steps, batch_size=args.batch_size,
                                   lr=args.lr, seed=args.seed, device=args.device,
                                   progress=progress)
    finally:
        bar.close()
    expert.save(out)
    scores = []
    for clip in data.clips[:20]:
        try:
            scores.append(sync_scores(expert, clip["exp"], clip["audio"]))
        except ValueError:
            continue  # too short for the offset sweep
    msg = f"{out}: sync expert over lip dims {list(lip)}"
    if scores:
        conf = sum(s.confidence for s in scores) / len(scores)
        hit = sum(s.offset == 0 for s in scores)
        msg += f"; on {len(scores)} training clips: confidence {conf:.3f}, offset 0 in {hit}"
    print(msg)
    return 0
