"""`disenttalk synth-corpus -o DIR --per-language N --seed S`: synthesise the bilingual
(English + Mandarin) corpus — espeak-ng speech, phoneme-driven lips, independent blinks, slow
global drift, in the built-in face's 64-dim expression basis — as clip datasets (DIR/train,
DIR/test, DIR/train_en) plus closed-lips / closed-eyes edits for `disenttalk disentangle`."""

from __future__ import annotations

import sys


def add_parser(sub, name: str) -> None:
    p = sub.add_parser(name, help="synthesise the bilingual demo corpus (needs espeak-ng)",
                       description=__doc__)
    p.add_argument("-o", "--output", required=True, help="corpus folder to write")
    p.add_argument("--per-language", type=int, default=300,
                   help="clips per language (default 300; ~10%% val, ~10%% test)")
    p.add_argument("--seed", type=int, default=0, help="corpus seed (default 0)")
    p.add_argument("--languages", default="en,zh", help="comma-separated subset of en,zh")
    p.add_argument("--overwrite", action="store_true", help="replace an existing corpus folder")
    p.set_defaults(run=run)


def run(args) -> int:
    from disenttalk_fast.cli import UserError
    from disenttalk_fast.corpus.build import build_corpus

    languages = tuple(s.strip() for s in args.languages.split(",") if s.strip())
    try:
        summary = build_corpus(args.output, args.per_language, args.seed, languages,
                               overwrite=args.overwrite,
                               log=lambda s: print(s, file=sys.stderr))
    except FileExistsError as exc:
        raise UserError(str(exc)) from None
    s = summary["splits"]
    print(f"wrote {args.output}: {summary['clips']} clips ({s['train']} train, {s['val']} val, "
          f"{s['test']} test), {summary['frames'] / 25 / 60:.1f} min of speech; "
          f"datasets {args.output}/train, {args.output}/test, {args.output}/train_en")
    return 0
