"""Face-space measurements of expression sequences on a morphable model (default: built-in face):
mouth opening, eyelid closure and mouth vertices, the inputs of the evaluation metrics."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from disenttalk_fast._torch import torch


@dataclass
class Measures:
    mouth_opening: np.ndarray    # (L,) inner-lip distance, model units
    eye_closure: np.ndarray      # (L,) mean of both eyes: 0 = as open as neutral, 1 = shut
    eye_openness: np.ndarray     # (L, 2) lid-to-lid distance of the left / right eye
    mouth_vertices: np.ndarray   # (L, M, 3) the model's mouth-region vertices


class FaceMeasurer:
    def __init__(self, face_model=None):
        from disenttalk_fast.facemodel.morphable import MorphableModel

        self.model = face_model if face_model is not None else MorphableModel.builtin()
        if self.model.mouth_vertex_indices is None:
            raise ValueError(f"{self.model.name}: has no mouth vertex indices to measure")
        neutral = self.model.vertices(torch.zeros(1, self.model.exp_dims))
        self.neutral_eye = self.model.eye_openness(neutral)[0].numpy()   # (2,)

    @torch.no_grad()
    def __call__(self, exp, chunk: int = 256) -> Measures:
        exp = torch.as_tensor(np.asarray(exp, np.float32))
        mouth, eyes, verts = [], [], []
        idx = self.model.mouth_vertex_indices
        for s in range(0, exp.shape[0], chunk):
            v = self.model.vertices(exp[s:s + chunk])
            mouth.append(self.model.mouth_opening(v))
            eyes.append(self.model.eye_openness(v))
            verts.append(v[:, idx])
        eye = torch.cat(eyes).numpy()
        closure = np.clip(1.0 - eye / self.neutral_eye, 0.0, 1.0).mean(axis=1)
        return Measures(torch.cat(mouth).numpy(), closure, eye, torch.cat(verts).numpy())
