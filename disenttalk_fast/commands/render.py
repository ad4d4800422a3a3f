"""`disenttalk render MOTION -o out.mp4 [--audio speech.wav] [--bfm FILE]`: render a motion file
(any format `disenttalk_fast.interop.read_motion` reads) with the built-in face or a user's BFM
and mux it with the speech into an .mp4."""

from __future__ import annotations

from pathlib import Path


def add_parser(sub, name: str) -> None:
    p = sub.add_parser(name, help="render a motion file to an .mp4 (H.264 + AAC)",
                       description="Render a motion file with the built-in face (or a BFM) "
                                   "and mux it with the speech into an .mp4 (H.264 + AAC).")
    p.add_argument("motion", help="motion file: our .npz, Deep3DFaceRecon .mat / .npy, or a "
                                  "73-d descriptor (.txt)")
    p.add_argument("-o", "--output", required=True, help="output .mp4")
    p.add_argument("--audio", help="speech to put in the video (the video is cut/padded to it)")
    p.add_argument("--bfm", help="Deep3DFaceRecon BFM_model_front.mat (default: built-in face)")
    p.add_argument("--size", type=int, default=256, help="frame width and height (default 256)")
    p.add_argument("--supersample", type=int, default=1, help="anti-aliasing factor (default 1)")
    p.add_argument("--shading", choices=("vertex", "pixel"), default="vertex")
    p.add_argument("--backend", default="auto", help="auto | reference | cpu | cuda")
    p.add_argument("--device", default=None, help="torch device to render on (default: CPU)")
    p.set_defaults(run=run)


def run(args) -> int:
    from disenttalk_fast.facemodel.morphable import MorphableModel
    from disenttalk_fast.interop import read_motion
    from disenttalk_fast.render import render
    from disenttalk_fast.video import write_video

    from disenttalk_fast.cli import check_device_arg, check_output_file

    out = Path(args.output)
    if out.suffix.lower() != ".mp4":
        raise ValueError(f"{out}: the output must be an .mp4 file")
    if args.size < 8 or args.size % 2:
        raise ValueError(f"--size must be an even number >= 8, got {args.size}")
    check_output_file(out)
    check_device_arg(args.device)
    motion = read_motion(args.motion)
    exp, pose, fps = motion.exp, motion.pose, motion.fps
    if motion.num_frames == 0:   # (checked here so the message names the file, not write_video)
        raise ValueError(f"{args.motion}: the motion has no frames")
    if not 1 <= fps <= 240:
        raise ValueError(f"{args.motion}: a video needs 1-240 fps, the motion says {fps:g}")
    model = MorphableModel.from_bfm(args.bfm) if args.bfm else MorphableModel.builtin()
    if exp.shape[1] != model.exp_dims:
        raise ValueError(f"{args.motion}: motion has {exp.shape[1]} expression dims but the face "
                        f"model {model.name} has {model.exp_dims}")
    frames = render(exp, model, args.size, pose=pose, supersample=args.supersample,
                    shading=args.shading, backend=args.backend, device=args.device)
    write_video(frames, args.audio, out, fps=fps)
    print(f"wrote {out} ({len(frames)} frames at {fps:g} fps, {args.size}x{args.size})")
    return 0

