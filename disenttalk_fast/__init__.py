"""disenttalk_fast: audio-driven 3DMM talking faces by region-disentangled diffusion, with fused
C++ / CUDA / Triton kernels.

    import disenttalk_fast as dt
    ckpt = dt.load_model("model.safetensors")              # a checkpoint: model + stats
    motion = dt.generate(ckpt, "speech.wav", steps=25)      # Motion: exp (L, 64), pose, fps 25
    frames = dt.render(motion)                              # uint8 (L, 256, 256, 3)
    dt.write_video(frames, "speech.wav", "talk.mp4")

Importing the package needs PyTorch but never CUDA or Triton; the names below are imported on
first use, so `import disenttalk_fast` stays light.
"""

from importlib import import_module

from disenttalk_fast import _torch  # noqa: F401  (one-line error when torch is missing)
from disenttalk_fast.build_info import build_info

# These three functions share their name with the submodule that defines them. Importing a
# submodule binds it as an attribute of the package the first time it loads, which would shadow
# a lazily resolved function; importing them here, once, keeps `disenttalk_fast.generate` the
# function. (They are light: numpy and torch only.)
from disenttalk_fast.disentangle import disentangle
from disenttalk_fast.generate import generate
from disenttalk_fast.render import render

# public name -> module that defines it
_LAZY = {
    "DisentTalkConfig": "disenttalk_fast.config",
    "Partition": "disenttalk_fast.partition",
    "DisentTalkDenoiser": "disenttalk_fast.model",
    "AudioCache": "disenttalk_fast.model",
    "FastDenoiser": "disenttalk_fast.model.fast",
    "save_checkpoint": "disenttalk_fast.checkpoint",
    "load_checkpoint": "disenttalk_fast.checkpoint",
    "GaussianDiffusion": "disenttalk_fast.diffusion",
    "sample": "disenttalk_fast.sampling",
    "Sampler": "disenttalk_fast.sampling",
    "RegionControl": "disenttalk_fast.sampling",
    "load_model": "disenttalk_fast.generate",
    "Streamer": "disenttalk_fast.stream",
    "load_audio": "disenttalk_fast.audio",
    "Motion": "disenttalk_fast.motion",
    "read_motion": "disenttalk_fast.interop",
    "write_motion": "disenttalk_fast.interop",
    "MorphableModel": "disenttalk_fast.facemodel.morphable",
    "write_video": "disenttalk_fast.video",
}

__all__ = ["build_info", "disentangle", "generate", "render", *_LAZY]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'disenttalk_fast' has no attribute '{name}'")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
