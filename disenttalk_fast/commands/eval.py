"""`disenttalk eval --corpus DIR [-o eval_out]`: motion-quality evaluation on held-out clips.

Scores the model (default: the bundled demo model) on DIR/test of a synthetic corpus (or any
clip dataset given with --test): sync confidence / distance from the frozen sync expert with a
+-15 frame offset sweep for ground truth, generated motion and two controls (another clip's
audio, the mean motion); mouth-opening correlation, lip vertex distance, blink rate and jitter
on the built-in face; diversity across seeds; DDPM against DDIM; optional cross-lingual and
ablation checkpoints. Writes OUT/eval.md (tables + acceptance checks), OUT/eval.json and PNG
plots (eye openness over time, mouth opening against audio energy)."""

from __future__ import annotations

import json
import math
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

from disenttalk_fast._atomic import atomic_output
from disenttalk_fast.commands.demo import ASSETS, DEMO_MODEL

SYNC_EXPERT = ASSETS / "sync_expert.safetensors"
OUTPUTS = ("eval.md", "eval.json", "eye_openness.png", "mouth_vs_energy.png")
BASELINE_ROW = "full model (same budget)"   # the --ablation-baseline row of the ablations


def add_parser(sub, name: str) -> None:
    p = sub.add_parser(name, help="evaluate motion quality on held-out clips (table + plots)",
                       description=__doc__.split("\n")[0].strip("`"))
    p.add_argument("--corpus", help="synthetic corpus folder (uses DIR/test)")
    p.add_argument("--test", help="clip dataset folder to evaluate on (instead of --corpus)")
    p.add_argument("-o", "--output", default="eval_out", help="output folder (default eval_out)")
    p.add_argument("--model", default=None, help="checkpoint (default: the bundled demo model)")
    p.add_argument("--expert", default=None,
                   help="frozen sync expert (default: the bundled one)")
    p.add_argument("--steps", type=int, default=25, help="DDIM steps (default 25)")
    p.add_argument("--max-clips", type=int, default=0,
                   help="at most this many test clips per language (0 = all)")
    p.add_argument("--seeds", type=int, default=3, help="seeds for the diversity row (default 3)")
    p.add_argument("--diversity-clips", type=int, default=6)
    p.add_argument("--ddpm-clips", type=int, default=4,
                   help="clips for the DDPM (all T steps) vs DDIM row; 0 skips it (default 4)")
    p.add_argument("--cross-lingual", metavar="CKPT",
                   help="a model trained on English only, scored on the Mandarin test clips")
    p.add_argument("--ablation", action="append", default=[], metavar="NAME=CKPT",
                   help="an ablation checkpoint to score (repeatable)")
    p.add_argument("--ablation-baseline", metavar="CKPT",
                   help="the full model at the ablations' training budget (for a fair row)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    p.set_defaults(run=run)


def _log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _check_output_folder(path) -> Path:
    """The -o folder as a Path, or a one-line UserError now, not after the evaluation: a file in
    its place (or in place of a folder above it), a folder that cannot be written, or one of the
    files it will hold being a directory. Nothing is created here."""
    from disenttalk_fast.cli import UserError, check_output_file

    out = Path(path)
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: exists and is not a folder")
    existing = out
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"{out}: {existing} is a file, not a folder")
    if existing == out:
        for name in OUTPUTS:
            check_output_file(out / name)   # (each probes the folder with a temporary file)
        return out
    # A folder to be made: probe its nearest existing parent by making (and removing) one, as
    # os.access says yes to root everywhere, even in /proc.
    try:
        os.rmdir(tempfile.mkdtemp(dir=existing, prefix=".eval-probe-"))
    except OSError as exc:
        raise UserError(f"{out}: folder {existing} is not writable "
                        f"({exc.strerror or exc})") from None
    return out


def _checkpoint_timesteps(label: str, path) -> int:
    """T (diffusion steps) of the checkpoint at `path`, read from its header alone (no weights),
    so that a missing or foreign file, or a --steps above T, is refused before any model work:
    a one-line UserError naming `label` (the flag and the path). The weights themselves are
    validated when the checkpoint is loaded."""
    from disenttalk_fast.checkpoint import CheckpointError, read_config
    from disenttalk_fast.cli import UserError

    try:
        return read_config(path).timesteps
    except CheckpointError as exc:   # "PATH: problem" -> "LABEL: problem"
        raise UserError(f"{label}: {str(exc).removeprefix(f'{Path(path)}: ')}") from None


def _check_args(args):
    """Every argument checked before any work: (test_dir, model_path, expert_path, ablations,
    out). Counts, files and the output folder; each checkpoint's header (its T against
    --steps)."""
    from disenttalk_fast.cli import UserError

    if not args.corpus and not args.test:
        raise UserError("give --corpus DIR (a synthetic corpus) or --test DATASET")
    if args.steps < 1:
        raise UserError(f"--steps must be >= 1, got {args.steps}")
    for flag, value in (("--max-clips", args.max_clips), ("--seeds", args.seeds),
                        ("--diversity-clips", args.diversity_clips),
                        ("--ddpm-clips", args.ddpm_clips), ("--threads", args.threads)):
        if value < 0:
            raise UserError(f"{flag} must be >= 0, got {value}")
    test_dir = Path(args.test) if args.test else Path(args.corpus) / "test"
    model_path = Path(args.model) if args.model else DEMO_MODEL
    expert_path = Path(args.expert) if args.expert else SYNC_EXPERT
    if not test_dir.exists():
        raise UserError(f"{test_dir}: no such test dataset")
    if not expert_path.exists():
        raise UserError(f"{expert_path}: no such sync expert")
    if not expert_path.is_file():
        raise UserError(f"{expert_path}: the sync expert is not a file")
    ablations = []
    for spec in args.ablation:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise UserError(f"--ablation {spec!r}: expected NAME=CKPT")
        if name in dict(ablations) or name == BASELINE_ROW:
            raise UserError(f"--ablation {spec!r}: the name {name!r} is taken (one row each)")
        ablations.append((name, path))
    if args.ablation_baseline and not (ablations or args.cross_lingual):
        raise UserError("--ablation-baseline is the reference of --ablation / --cross-lingual; "
                        "give one of them, or leave it out")
    out = _check_output_folder(args.output)
    # Every checkpoint sampled with --steps: a DDIM run takes at most the model's T steps.
    checkpoints = [(f"--model {args.model}" if args.model else str(model_path), model_path)]
    if args.cross_lingual:
        checkpoints.append((f"--cross-lingual {args.cross_lingual}", args.cross_lingual))
    if args.ablation_baseline:
        checkpoints.append((f"--ablation-baseline {args.ablation_baseline}",
                            args.ablation_baseline))
    checkpoints += [(f"--ablation {name}={path}", path) for name, path in ablations]
    for label, path in checkpoints:
        timesteps = _checkpoint_timesteps(label, path)
        if args.steps > timesteps:
            raise UserError(f"--steps {args.steps} exceeds the T={timesteps} diffusion steps of "
                            f"{label}")
    return test_dir, model_path, expert_path, ablations, out


def run(args) -> int:
    from disenttalk_fast.cli import UserError

    test_dir, model_path, expert_path, ablations, out = _check_args(args)

    from disenttalk_fast._torch import torch
    from disenttalk_fast.evaluation import evaluate as E
    from disenttalk_fast.evaluation import report
    from disenttalk_fast.evaluation.metrics import audio_energy
    from disenttalk_fast.generate import load_model
    from disenttalk_fast.sync.expert import SyncExpert

    if args.threads:
        torch.set_num_threads(args.threads)
    t_start = time.time()
    by_lang = {}
    for lang in ("en", "zh", None):
        if lang is None and by_lang:
            break
        try:
            clips, ds = E.load_test_clips(test_dir, args.max_clips, lang, with_samples=True)
        except ValueError:
            continue
        if lang is None:   # a dataset without en_/zh_ ids: one group
            lang = "all"
        by_lang[lang] = clips
    if not by_lang:
        raise UserError(f"{test_dir}: no test clip long enough for the sync sweep")
    if args.cross_lingual and "zh" not in by_lang:
        raise UserError(f"--cross-lingual {args.cross_lingual}: {test_dir} has no Mandarin (zh) "
                        f"test clip to score it on")
    ckpt = load_model(model_path, device="cpu")
    expert = SyncExpert.load(expert_path)
    ev = E.Evaluator(expert, ds.exp_mean, ds.exp_std)
    result = {"model": str(model_path), "test": str(test_dir), "steps": args.steps,
              "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, torch threads "
                         f"{torch.get_num_threads()}",
              "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}

    # -- main rows, per language and overall -------------------------------------------------
    per_lang, merged, generated = {}, None, {}
    for lang, clips in by_lang.items():
        _log(f"main model on {len(clips)} {lang} clips")
        rows, gen = E.evaluate_model(ckpt, clips, ev, steps=args.steps, log=_log)
        generated.update(gen)
        per_lang[lang] = {k: v.summary() for k, v in rows.items()}
        merged = rows if merged is None else {k: E.merge(merged[k], rows[k]) for k in rows}
    main = {k: v.summary() for k, v in merged.items()}
    result["main"], result["per_language"] = main, per_lang

    all_clips = [c for cs in by_lang.values() for c in cs]
    ddpm = None
    if args.ddpm_clips:
        subset = [c for cs in by_lang.values() for c in cs[:max(1, args.ddpm_clips // len(by_lang))]]
        _log(f"DDPM-{ckpt.config.timesteps} vs DDIM-{args.steps} on {len(subset)} clips")
        ddpm = E.ddpm_vs_ddim(ckpt, subset, ev, args.steps)
        result["ddpm_vs_ddim"] = ddpm
    if args.seeds >= 2 and args.diversity_clips:
        subset = [c for cs in by_lang.values() for c in cs[:max(1, args.diversity_clips // len(by_lang))]]
        _log(f"diversity over {args.seeds} seeds on {len(subset)} clips")
        result["diversity"] = E.diversity(ckpt, subset, ckpt.partition, args.seeds, args.steps)
        result["diversity_clips"] = len(subset)

    # -- cross-lingual -------------------------------------------------------------------------
    if args.cross_lingual and "zh" in by_lang:
        _log("cross-lingual: English-only model on the Mandarin clips")
        en_ckpt = load_model(args.cross_lingual, device="cpu")
        # the bilingual reference: the main model, or the one trained for the same budget
        both = load_model(args.ablation_baseline, device="cpu") \
            if args.ablation_baseline else None
        cl = result["cross_lingual"] = {}
        for lang in ("zh", "en"):
            if lang not in by_lang:
                continue
            rows, _ = E.evaluate_model(en_ckpt, by_lang[lang], ev, steps=args.steps,
                                       controls=False)
            cl[f"en_only_on_{lang}"] = rows["generated"].summary()
            if both is None:
                cl[f"both_on_{lang}"] = per_lang[lang]["generated"]
            else:
                rows, _ = E.evaluate_model(both, by_lang[lang], ev, steps=args.steps,
                                           controls=False)
                cl[f"both_on_{lang}"] = rows["generated"].summary()
        result["cross_lingual_reference"] = str(args.ablation_baseline or model_path)

    # -- ablations -----------------------------------------------------------------------------
    if ablations:
        result["ablations"] = {}
        runs = ([(BASELINE_ROW, args.ablation_baseline)]
                if args.ablation_baseline else []) + ablations
        for name, path in runs:
            _log(f"ablation {name}")
            ab = load_model(path, device="cpu")
            rows, _ = E.evaluate_model(ab, all_clips, ev, steps=args.steps, controls=False)
            result["ablations"][name] = rows["generated"].summary()

    # -- outputs: the folder is made only now, and taken away again if writing fails --------
    clip = max(all_clips, key=lambda c: len(c.exp))
    gt_m = ev.gt_measures(clip)
    gen_m = ev.faces(generated[clip.id])
    energy = audio_energy(clip.samples, len(clip.exp))
    result["seconds"] = round(time.time() - t_start, 1)
    result["checks"] = [{"criterion": c, "passed": bool(p), "numbers": n}
                        for c, p, n in report.checks(main, ddpm)]
    texts = {"eval.json": json.dumps(result, indent=1, default=_json_default) + "\n",
             "eval.md": markdown(result)}
    made = out
    while not made.parent.exists():   # the topmost folder this run creates
        made = made.parent
    made = None if made.exists() else made
    out.mkdir(parents=True, exist_ok=True)
    try:
        report.plot_eye_openness(out / "eye_openness.png", gt_m.eye_openness,
                                 gen_m.eye_openness, f"eye openness over time, test clip {clip.id}")
        report.plot_mouth_vs_energy(out / "mouth_vs_energy.png", energy, gt_m.mouth_opening,
                                    gen_m.mouth_opening,
                                    f"mouth opening and audio energy, test clip {clip.id}")
        for name, text in texts.items():
            with atomic_output(out / name) as tmp:
                Path(tmp).write_text(text)
    except BaseException:
        if made is not None:
            shutil.rmtree(made, ignore_errors=True)
        raise
    print(f"wrote {out / 'eval.md'}, {out / 'eval.json'}, {out / 'eye_openness.png'}, "
          f"{out / 'mouth_vs_energy.png'} ({result['seconds'] / 60:.1f} min)")
    for c in result["checks"]:
        print(f"  [{'pass' if c['passed'] else 'FAIL'}] {c['criterion']}: {c['numbers']}")
    return 0


def _json_default(x):
    if isinstance(x, float) and math.isnan(x):
        return None
    return float(x)


def markdown(r: dict) -> str:
    from disenttalk_fast.evaluation import report

    lines = [f"Model `{Path(r['model']).name}`, test set `{r['test']}`, DDIM-{r['steps']} "
             f"seed 0, guidance = the model's default; {r['machine']}; {r['date']}; "
             f"{r['seconds'] / 60:.1f} min.", "",
             "### All test clips", "", report.table(r["main"]), ""]
    for lang, rows in r["per_language"].items():
        lines += [f"### {lang} test clips", "", report.table(rows), ""]
    lines += ["### Acceptance checks", ""]
    lines += [f"- {'PASS' if c['passed'] else 'FAIL'}: {c['criterion']} ({c['numbers']})"
              for c in r["checks"]]
    if "ddpm_vs_ddim" in r:
        d = r["ddpm_vs_ddim"]
        lines += ["", f"### DDPM-{d['timesteps']} vs DDIM-{r['steps']} "
                  f"({d['ddim']['clips']} clips)", "",
                  report.table({f"DDIM-{r['steps']}": d["ddim"],
                                f"DDPM-{d['timesteps']}": d["ddpm"]})]
    if "diversity" in r:
        dv = r["diversity"]
        lines += ["", f"### Diversity across seeds ({r['diversity_clips']} clips)", "",
                  "Mean per-frame distance between motions generated for the same audio with "
                  "different seeds (raw coefficient units): "
                  + ", ".join(f"{k} {v:.4f}" for k, v in dv.items()) + "."]
    if "cross_lingual" in r:
        cl = r["cross_lingual"]
        labels = {"both_on_zh": "trained EN+ZH, tested ZH", "en_only_on_zh": "trained EN only, tested ZH",
                  "both_on_en": "trained EN+ZH, tested EN", "en_only_on_en": "trained EN only, tested EN"}
        lines += ["", "### Cross-lingual", "",
                  f"Bilingual reference: `{Path(r['cross_lingual_reference']).name}`.", "",
                  report.table(cl, labels)]
    if "ablations" in r:
        lines += ["", "### Ablations (equal training steps)", "", report.table(r["ablations"])]
    lines += ["", "![eye openness](eye_openness.png)", "",
              "![mouth opening vs audio energy](mouth_vs_energy.png)", ""]
    return "\n".join(lines)
