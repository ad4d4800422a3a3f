"""`disenttalk generate AUDIO --model CKPT -o OUT`: speech -> motion file or talking-face video.

OUT's extension picks the output: .npz (ours), .mat (Deep3DFaceRecon `coeff`), .npy (257-d
coefficients), .txt (73-d renderer descriptor), or .mp4 (rendered with the built-in face, the
input audio muxed in). `--format` overrides the motion format (e.g. `--format descriptor73` with
.npy or .mat, `--format deep3d-keys` with .mat); `--template REF` supplies identity / texture /
lighting / crop for the Deep3DFaceRecon and descriptor formats.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from disenttalk_fast._torch import DTYPES
from disenttalk_fast.partition import REGIONS

MOTION_EXTENSIONS = (".npz", ".mat", ".npy", ".txt")


def add_parser(sub, name: str) -> None:
    from disenttalk_fast.backends import BACKENDS
    from disenttalk_fast.interop.formats import FORMATS

    p = sub.add_parser(name, help="generate motion (or a video) from speech audio",
                       description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("audio", help="speech audio file (wav/flac/ogg/...)")
    p.add_argument("--model", required=True, metavar="CKPT", help="model checkpoint (.safetensors)")
    p.add_argument("-o", "--output", required=True, metavar="OUT",
                   help="output: .npz / .mat / .npy / .txt motion, or .mp4 video")
    p.add_argument("--format", choices=FORMATS, help="motion file format (default: by extension)")
    p.add_argument("--template", metavar="REF",
                   help="Deep3DFaceRecon .mat/.npy or 73-d file giving identity, texture, "
                        "lighting and crop for the output file")
    p.add_argument("--sampler", choices=("ddim", "ddpm"), default="ddim")
    p.add_argument("--steps", type=int, default=25, help="DDIM steps (DDPM runs all T)")
    p.add_argument("--guidance", type=float, default=None,
                   help="classifier-free guidance scale (default: the model's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--backend", choices=BACKENDS, default="auto",
                   help="kernels of the model's ops (an .mp4 is always drawn by the C++ / CUDA "
                        "rasteriser)")
    p.add_argument("--device", default=None, help="cpu / cuda (default: cuda when available)")
    p.add_argument("--dtype", choices=tuple(DTYPES), default=None,
                   help="weights' precision (default: as stored); bf16 / fp16 sample several "
                        "times faster on a GPU, on the CPU they run the slower reference ops")
    p.add_argument("--window", type=int, default=None,
                   help="frames per sampling window (default: the model's training window)")
    p.add_argument("--overlap", type=int, default=None,
                   help="frames held from the previous window (default: window / 5)")
    p.add_argument("--pose-from", metavar="REF",
                   help="motion file whose pose is used (resampled from its fps to 25, looped)")
    p.add_argument("--eyes-from", metavar="REF",
                   help="motion file whose eye-region expression replaces the generated one "
                        "(resampled from its fps to 25, looped)")
    p.add_argument("--lip-scale", type=float, default=None,
                   help="scale the lip region about the mean expression (e.g. 1.3)")
    p.add_argument("--freeze", action="append", choices=REGIONS, default=[],
                   help="hold a region at the mean expression (repeatable)")
    p.add_argument("--hubert", metavar="DIR", help="local HuBERT folder (hubert models)")
    p.add_argument("--layer", type=int, default=None, help="HuBERT layer (default last)")
    p.add_argument("--cache", metavar="DIR", help="feature cache folder")
    p.add_argument("--size", type=int, default=256, help="video size in pixels (.mp4)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


def _check_output(args):
    from disenttalk_fast.cli import UserError, check_device_arg, check_output_file

    out = Path(args.output)
    ext = out.suffix.lower()
    if ext not in MOTION_EXTENSIONS + (".mp4",):
        raise UserError(f"{out}: unknown output type '{ext}' (use .npz, .mat, .npy, .txt or .mp4)")
    if ext == ".mp4" and args.format:
        raise UserError("--format applies to motion files, not .mp4")
    if ext == ".mp4" and (args.size < 8 or args.size % 2):   # checked now, not after sampling
        raise UserError(f"--size must be an even number >= 8 for .mp4, got {args.size}")
    check_output_file(out)
    check_device_arg(args.device)
    if args.steps < 1:
        raise UserError(f"--steps must be >= 1, got {args.steps}")
    if args.format:
        from disenttalk_fast.interop.formats import EXTENSIONS

        if ext not in EXTENSIONS[args.format]:
            raise UserError(f"{out}: --format {args.format} is written as "
                            f"{' / '.join(EXTENSIONS[args.format])}, not '{ext}'")
    return out, ext


def run(args) -> int:
    from disenttalk_fast.checkpoint import CheckpointError
    from disenttalk_fast.cli import UserError
    from disenttalk_fast.generate import build_control, generate, load_model
    from disenttalk_fast.interop import read_template, write_motion
    from disenttalk_fast.interop.formats import check_template, output_format

    out, ext = _check_output(args)
    if Path(args.audio).is_dir():
        raise UserError(f"{args.audio}: is a directory, not an audio file")
    if not Path(args.audio).is_file():
        raise UserError(f"{args.audio}: no such audio file")
    template = read_template(args.template) if args.template else None
    if template is not None:   # refused now, not after generating
        if ext == ".mp4":
            raise UserError("--template applies to motion files, not .mp4")
        check_template(template, output_format(out, args.format), out)
    t0 = time.perf_counter()
    try:
        ckpt = load_model(args.model, args.device, args.backend, dtype=args.dtype)
    except CheckpointError as exc:
        raise UserError(str(exc)) from None
    if ckpt.feature_type != "hubert" and (args.hubert or args.layer is not None):
        raise UserError(f"{args.model}: --hubert / --layer apply to HuBERT models; this one uses "
                        f"'{ckpt.feature_type}' features")
    if ckpt.feature_type == "hubert" and not args.hubert:
        raise UserError(f"{args.model}: the model uses HuBERT features; pass --hubert DIR "
                        "(the local HuBERT folder it was trained with)")

    # Region control needs the frame count, known from the audio length.
    from disenttalk_fast.audio import load_audio, num_frames

    frames = num_frames(load_audio(args.audio).size)
    control = build_control(
        ckpt, frames, replace_from={"eye": args.eyes_from} if args.eyes_from else None,
        scale={"lip": args.lip_scale} if args.lip_scale is not None else None,
        freeze=tuple(args.freeze))
    motion = generate(ckpt, args.audio, sampler=args.sampler,
                      steps=None if args.sampler == "ddpm" else args.steps,
                      guidance=args.guidance, seed=args.seed, backend=args.backend,
                      pose=args.pose_from, control=control, window=args.window,
                      overlap=args.overlap, progress=not args.no_progress and sys.stderr.isatty(),
                      cache_dir=args.cache, hubert_dir=args.hubert, layer=args.layer)
    gen_seconds = motion.meta["seconds"]
    if ext == ".mp4":
        from disenttalk_fast.render import render
        from disenttalk_fast.video import write_video

        # --backend names the model's kernels. The face is drawn by the C++ / CUDA rasteriser
        # ("cpu" / "cuda" pass through): there is no Triton one, and the reference rasteriser is
        # a test oracle that takes seconds per small frame.
        raster = args.backend if args.backend in ("cpu", "cuda") else "auto"
        frames_rgb = render(motion, size=args.size, backend=raster)
        write_video(frames_rgb, args.audio, out, fps=motion.fps)
        what = "video"
    else:
        fmt = write_motion(motion, out, format=args.format, template=template)
        what = fmt
    total = time.perf_counter() - t0
    print(f"wrote {out} ({what}): {motion.num_frames} frames = {motion.duration:.2f} s of motion "
          f"in {total:.2f} s (sampling {gen_seconds:.2f} s, "
          f"{motion.num_frames / max(gen_seconds, 1e-9):.1f} motion FPS)")
    return 0
