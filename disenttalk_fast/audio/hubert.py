"""`hubert`: hidden states of a HuBERT model loaded with `transformers` from a local directory.

Nothing is fetched from a hub: the directory must hold the model's config.json and weights
(`local_files_only=True`). The convolutional front end of every HuBERT checkpoint has a 400-sample
receptive field and a 320-sample stride, i.e. 50 Hz — the same grid as `mel`: the signal gets 40
zeros of left context, so output row i looks at samples [320 i - 40, 320 i + 360), exactly like the
mel window. The transformer on top is bidirectional, so (unlike `mel`) a row depends on audio
seconds away: long audio is processed in chunks of `chunk_seconds` with `context_seconds` of real
audio on each side that is computed and thrown away, which keeps memory bounded and makes the
chunk borders invisible in practice. For the same reason `Streamer` supports `mel` only.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from disenttalk_fast.audio.frames import ROW_HOP
from disenttalk_fast.audio.mel import LEFT_CONTEXT, WIN


class HubertExtractor:
    """HuBERT hidden states at 50 Hz. `layer`: index into hidden_states (0 = the transformer's
    input, num_hidden_layers = the last layer; negative counts from the end; None = last)."""

    name = "hubert"

    def __init__(self, model_dir: str | os.PathLike, layer: int | None = None, device=None,
                 dtype: str = "auto", chunk_seconds: float = 20.0, context_seconds: float = 1.0):
        try:
            import torch
            from transformers import HubertModel
        except ImportError:
            raise ImportError("the hubert feature needs `transformers` "
                              "(pip install 'disenttalk_fast[hubert]')") from None
        self.model_dir = Path(model_dir)
        if not (self.model_dir / "config.json").is_file():
            raise FileNotFoundError(f"{self.model_dir}: not a HuBERT model directory "
                                    "(no config.json)")
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        if dtype == "auto":
            dtype = "float16" if self.device.type == "cuda" else "float32"
        if dtype not in ("float16", "float32", "bfloat16"):
            raise ValueError(f"hubert dtype must be float16, bfloat16, float32 or auto, not {dtype}")
        self.dtype = dtype
        from transformers.utils import logging as hf_logging

        bar = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()
        try:
            model = HubertModel.from_pretrained(str(self.model_dir), local_files_only=True)
        except Exception as exc:
            msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ValueError(f"{self.model_dir}: cannot load a HuBERT model ({msg})") from None
        finally:
            if bar:
                hf_logging.enable_progress_bar()
        cfg = model.config
        stride = int(np.prod(cfg.conv_stride))
        field = 1
        for k, s in zip(reversed(cfg.conv_kernel), reversed(cfg.conv_stride)):
            field = (field - 1) * s + k
        if stride != ROW_HOP or field != WIN:
            raise ValueError(f"{self.model_dir}: conv front end has stride {stride} and receptive "
                             f"field {field}; the 50 Hz grid needs {ROW_HOP} and {WIN}")
        n_layers = cfg.num_hidden_layers
        layer = n_layers if layer is None else int(layer)
        if layer < 0:
            layer += n_layers + 1
        if not 0 <= layer <= n_layers:
            raise ValueError(f"hubert layer {layer} out of range 0..{n_layers} for {self.model_dir}")
        self.layer = layer
        self.dim = int(cfg.hidden_size)
        self.normalize = self._reads_do_normalize()
        self.chunk_rows = max(1, int(round(chunk_seconds * 50)))
        self.context_rows = max(0, int(round(context_seconds * 50)))
        # Layers after `layer` are never needed. Keep one more than `layer` so hidden_states[layer]
        # is still that layer's input (the pre-norm variant applies its final norm after the
        # last kept layer, which must not be `layer`'s own output unless layer is the last).
        model.encoder.layers = model.encoder.layers[:min(layer + 1, n_layers)]
        self.model = model.to(self.device, getattr(torch, dtype)).eval()

    def _reads_do_normalize(self) -> bool:
        pre = self.model_dir / "preprocessor_config.json"
        if pre.is_file():
            try:
                return bool(json.loads(pre.read_text()).get("do_normalize", False))
            except (OSError, ValueError):
                pass
        return False

    def config(self) -> dict:
        files = sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns)
                       for p in self.model_dir.iterdir() if p.is_file())
        return {"name": "hubert", "version": 1, "model_dir": str(self.model_dir.resolve()),
                "files": files, "layer": self.layer, "dtype": self.dtype,
                "normalize": self.normalize, "chunk_rows": self.chunk_rows,
                "context_rows": self.context_rows}

    def __call__(self, audio: np.ndarray, num_rows: int) -> np.ndarray:
        import torch

        if num_rows == 0:
            return np.zeros((0, self.dim), np.float32)
        audio = np.asarray(audio, np.float32)
        if self.normalize and audio.size:
            audio = (audio - audio.mean()) / np.sqrt(audio.var() + 1e-7)
        # Row i sees padded[320 i : 320 i + 400]. Beyond the requested rows keep the real audio
        # (up to `context_rows` of it) as right-hand context, but never invent silence there:
        # the attention would see it, and offline results would depend on the padding.
        total_rows = max(num_rows, min(-(-audio.size // ROW_HOP), num_rows + self.context_rows))
        padded = np.zeros(ROW_HOP * total_rows + WIN, np.float32)
        take = audio[:padded.size - LEFT_CONTEXT]
        padded[LEFT_CONTEXT:LEFT_CONTEXT + take.size] = take
        out = np.zeros((num_rows, self.dim), np.float32)
        for r0 in range(0, num_rows, self.chunk_rows):
            r1 = min(num_rows, r0 + self.chunk_rows)
            c0 = max(0, r0 - self.context_rows)
            c1 = min(total_rows, r1 + self.context_rows)
            seg = padded[ROW_HOP * c0: ROW_HOP * c1 + WIN - ROW_HOP]
            x = torch.as_tensor(seg, device=self.device, dtype=self.model.dtype)[None]
            with torch.inference_mode():
                hs = self.model(x, output_hidden_states=True).hidden_states[self.layer]
            out[r0:r1] = hs[0, r0 - c0: r1 - c0].float().cpu().numpy()
        return out
