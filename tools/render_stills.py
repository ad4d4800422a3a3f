#!/usr/bin/env python
"""Render stills of the built-in face (neutral, jaw open, eyes closed, and a few more) to
docs/images/*.png. Usage: python tools/render_stills.py [--out docs/images] [--size 256]"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from disenttalk_fast.facemodel.blendshapes import SEMANTIC_BLENDSHAPES
from disenttalk_fast.facemodel.morphable import MorphableModel
from disenttalk_fast.render import render

STILLS = {
    "neutral": {},
    "jaw_open": {"jaw_open": 0.8},
    "eyes_closed": {"eye_blink_left": 1.0, "eye_blink_right": 1.0},
    "smile": {"smile": 0.9, "lip_corner_pull": 0.5, "squint": 0.3, "jaw_open": 0.15},
    "pucker": {"lip_pucker": 1.0, "lip_funnel": 0.4},
    "brows_raised": {"brow_raise": 1.0, "eye_wide": 0.6, "jaw_open": 0.3},
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="docs/images")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--only", nargs="*", help="names of stills to render")
    args = ap.parse_args()
    model = MorphableModel.builtin()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    names = args.only or list(STILLS)
    weights = np.zeros((len(names), len(SEMANTIC_BLENDSHAPES)), np.float32)
    for row, name in enumerate(names):
        for shape, w in STILLS[name].items():
            weights[row, SEMANTIC_BLENDSHAPES.index(shape)] = w
    frames = render(model.weights_to_exp(weights), model, args.size, supersample=2)
    for name, frame in zip(names, frames):
        path = out / f"builtin_{name}.png"
        Image.fromarray(frame).save(path)
        print(path)
    sheet = np.concatenate(list(frames), axis=1)
    Image.fromarray(sheet).save(out / "builtin_sheet.png")
    print(out / "builtin_sheet.png")


if __name__ == "__main__":
    main()
