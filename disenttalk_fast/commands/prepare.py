"""`disenttalk prepare AUDIO_DIR COEFF_DIR -o DATASET`: build a clip dataset (see
disenttalk_fast.data.prepare for the checks), printing every rejected clip with its reason."""

from __future__ import annotations

import argparse
import sys


def add_parser(sub, name: str) -> None:
    p = sub.add_parser(name, help="build a clip dataset from audio files + coefficient files",
                       description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("audio_dir", help="folder of audio files (wav/flac/ogg/...)")
    p.add_argument("coeff_dir", help="folder of coefficient files (.npz/.mat/.npy/.txt), "
                                     "matched to the audio by file stem")
    p.add_argument("-o", "--output", required=True, help="dataset folder to write")
    p.add_argument("--feature", default="mel", choices=("mel", "hubert", "none"),
                   help="audio features to compute and cache now (default mel)")
    p.add_argument("--hubert", metavar="DIR", help="local HuBERT model directory (--feature hubert)")
    p.add_argument("--layer", type=int, default=None, help="HuBERT hidden-state layer (default last)")
    p.add_argument("--fps", type=float, default=25.0,
                   help="frame rate of coefficient files that do not store one (default 25)")
    p.add_argument("--tolerance-frames", type=float, default=2.0,
                   help="max |audio duration x 25 - frames| accepted (default 2)")
    p.add_argument("--min-frames", type=int, default=8, help="shortest clip kept (default 8)")
    p.add_argument("--exp-dim", type=int, default=None,
                   help="expression width to keep (default: the most common one)")
    p.add_argument("--val-fraction", type=float, default=0.05,
                   help="fraction of clips held out as the val split (default 0.05)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing dataset")
    p.set_defaults(run=run)


def run(args) -> int:
    from disenttalk_fast.cli import UserError
    from disenttalk_fast.data.prepare import prepare_dataset

    if args.min_frames < 1:
        raise UserError(f"--min-frames must be >= 1, got {args.min_frames}")
    if args.feature == "hubert" and not args.hubert:
        raise UserError("--feature hubert needs --hubert DIR (a local HuBERT model folder)")
    try:
        report = prepare_dataset(
            args.audio_dir, args.coeff_dir, args.output,
            feature=None if args.feature == "none" else args.feature,
            fps=args.fps, tolerance_frames=args.tolerance_frames, min_frames=args.min_frames,
            exp_dim=args.exp_dim, val_fraction=args.val_fraction, overwrite=args.overwrite,
            progress=sys.stderr.isatty(), log=lambda s: print(s, file=sys.stderr),
            hubert_dir=args.hubert, layer=args.layer)
    except FileExistsError as exc:
        raise UserError(str(exc)) from None
    n_val = sum(r["split"] == "val" for r in report.accepted)
    print(f"prepared {report.folder}: {len(report.accepted)} clips ({n_val} val), "
          f"{report.frames} frames ({report.frames / 25:.1f} s); "
          f"{len(report.rejected)} rejected")
    return 0
