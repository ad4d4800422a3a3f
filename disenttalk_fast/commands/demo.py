"""`disenttalk demo [-o demo.mp4]`: talk with the bundled demo model on the bundled speech.

Generates motion for a short English (or, with --language zh, Mandarin) sample with the demo
checkpoint that ships inside the package, renders it with the built-in face and writes an .mp4
with the speech muxed in. The demo weights were trained on synthetic espeak-ng speech only
(tools/train_demo.py); see docs/corpus_demo_eval.md for what they can and cannot do."""

from __future__ import annotations

from pathlib import Path

ASSETS = Path(__file__).resolve().parents[1] / "assets"
DEMO_MODEL = ASSETS / "demo_model.safetensors"
SAMPLES = {"en": ASSETS / "sample_en.wav", "zh": ASSETS / "sample_zh.wav"}


def add_parser(sub, name: str) -> None:
    p = sub.add_parser(name, help="render the bundled sample speech with the bundled demo model",
                       description=__doc__.split("\n")[0].strip("`"))
    p.add_argument("-o", "--output", default="demo.mp4", help="output .mp4 (default demo.mp4)")
    p.add_argument("--language", choices=tuple(SAMPLES), default="en",
                   help="which bundled sample to speak (default en)")
    p.add_argument("--audio", help="speak this file instead of the bundled sample")
    p.add_argument("--model", default=None, help="checkpoint (default: the bundled demo model)")
    p.add_argument("--steps", type=int, default=25, help="DDIM steps (default 25)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    p.add_argument("--size", type=int, default=256, help="frame width and height (default 256)")
    p.add_argument("--backend", default="auto", choices=("auto", "reference", "cpu"),
                   help="kernels of the model's ops on the CPU (default auto: the C++ kernels); "
                        "the face is always drawn by the fastest rasteriser")
    p.set_defaults(run=run)


def run(args) -> int:
    import time

    from disenttalk_fast.cli import UserError, check_output_file

    out = Path(args.output)
    if out.suffix.lower() != ".mp4":
        raise UserError(f"{out}: the output must be an .mp4 file")
    check_output_file(out)
    if args.size < 8 or args.size % 2:
        raise UserError(f"--size must be an even number >= 8, got {args.size}")
    if args.steps < 1:
        raise UserError(f"--steps must be >= 1, got {args.steps}")
    model_path = Path(args.model) if args.model else DEMO_MODEL
    audio_path = Path(args.audio) if args.audio else SAMPLES[args.language]
    for what, path in (("demo model", model_path), ("sample speech", audio_path)):
        if not path.is_file():
            hint = "" if (args.model or args.audio) else \
                " (this install ships no demo assets; train them with tools/train_demo.py)"
            raise UserError(f"{path}: no such {what}{hint}")

    from disenttalk_fast.generate import generate, load_model
    from disenttalk_fast.render import render
    from disenttalk_fast.video import write_video

    t0 = time.perf_counter()
    ckpt = load_model(model_path, device="cpu", backend=args.backend)
    motion = generate(ckpt, audio_path, steps=args.steps, seed=args.seed, backend=args.backend,
                      progress=False)
    t1 = time.perf_counter()
    # Not args.backend: the reference rasteriser is a test oracle (seconds per small frame).
    frames = render(motion, size=args.size)
    t2 = time.perf_counter()
    write_video(frames, str(audio_path), out, fps=motion.fps)
    print(f"wrote {out}: {motion.num_frames} frames ({motion.duration:.1f} s) of "
          f"{audio_path.name}; generate {t1 - t0:.1f} s, render {t2 - t1:.1f} s, "
          f"encode {time.perf_counter() - t2:.1f} s")
    return 0
