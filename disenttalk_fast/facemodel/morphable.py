"""`MorphableModel`: a linear 3D face model — mean shape plus identity and expression bases,
triangles, albedo — with the measurements evaluation needs (mouth opening, eye openness).

Layout follows Deep3DFaceRecon's BFM so either model plugs into the same code:

    vertices = mean_shape + id_basis @ id + exp_basis @ exp          (flattened x, y, z per vertex)
    albedo   = mean_albedo + albedo_basis @ tex                      (RGB in [0, 1])

Units are the model's (BFM as Deep3DFaceRecon scales it: the face spans about 2 units; the camera
sits at z = 10 looking down -z; +x is the subject's left, +y up, +z towards the camera).

Two constructors: `MorphableModel.builtin()` (our procedural face, see builtin.py) and
`MorphableModel.from_bfm(path)` (a user's BFM_model_front.mat, see bfm.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from disenttalk_fast._torch import torch

# Named measurement points: each is a tuple of vertex indices whose mean is the point.
LANDMARK_NAMES = ("lip_upper_inner", "lip_lower_inner", "eye_left_upper", "eye_left_lower",
                  "eye_right_upper", "eye_right_lower")


@dataclass
class MorphableModel:
    mean_shape: torch.Tensor            # (V, 3) float32
    id_basis: torch.Tensor              # (3V, K_id) float32
    exp_basis: torch.Tensor             # (3V, K_exp) float32
    triangles: torch.Tensor             # (T, 3) int64, 0-based
    mean_albedo: torch.Tensor           # (V, 3) float32 in [0, 1]
    albedo_basis: torch.Tensor | None = None   # (3V, K_tex) float32
    landmarks: dict[str, tuple[int, ...]] = field(default_factory=dict)
    mouth_vertex_indices: torch.Tensor | None = None  # (M,) int64: lips and the skin around them
    eye_vertex_indices: torch.Tensor | None = None    # (E,) int64: eyelids and the skin around them
    keypoints: torch.Tensor | None = None  # (68,) int64, 0-based (BFM's 68 landmark vertices)
    blendshapes: "object | None" = None    # builtin.SemanticRig for the built-in face
    name: str = "model"

    # -- constructors ------------------------------------------------------------------------
    @classmethod
    def builtin(cls) -> "MorphableModel":
        """The project's own procedural face (no licensed file needed); cached, deterministic."""
        from disenttalk_fast.facemodel.builtin import builtin_model

        return builtin_model()

    @classmethod
    def from_bfm(cls, path) -> "MorphableModel":
        """Deep3DFaceRecon's BFM_model_front.mat; one-line ValueError naming a bad key/shape."""
        from disenttalk_fast.facemodel.bfm import load_bfm

        return load_bfm(path)

    # -- sizes -------------------------------------------------------------------------------
    @property
    def num_vertices(self) -> int:
        return self.mean_shape.shape[0]

    @property
    def num_triangles(self) -> int:
        return self.triangles.shape[0]

    @property
    def id_dims(self) -> int:
        return self.id_basis.shape[1]

    @property
    def exp_dims(self) -> int:
        return self.exp_basis.shape[1]

    @property
    def tex_dims(self) -> int:
        return 0 if self.albedo_basis is None else self.albedo_basis.shape[1]

    @property
    def device(self):
        return self.mean_shape.device

    def to(self, device) -> "MorphableModel":
        move = lambda t: None if t is None else t.to(device)  # noqa: E731
        return replace(self, mean_shape=move(self.mean_shape), id_basis=move(self.id_basis),
                       exp_basis=move(self.exp_basis), triangles=move(self.triangles),
                       mean_albedo=move(self.mean_albedo), albedo_basis=move(self.albedo_basis),
                       mouth_vertex_indices=move(self.mouth_vertex_indices),
                       eye_vertex_indices=move(self.eye_vertex_indices),
                       keypoints=move(self.keypoints))

    # -- geometry and colour -----------------------------------------------------------------
    def vertices(self, exp=None, id=None) -> torch.Tensor:
        """Vertex positions (F, V, 3) for expression coefficients `exp` (F, K_exp) (or (K_exp,)
        -> (V, 3)) and optional identity `id` (K_id,) or (F, K_id). exp=None gives the neutral
        face (V, 3)."""
        base = self.mean_shape.reshape(-1)
        if id is not None:
            id_t = self._coeffs(id, self.id_dims, "id")
            base = base + id_t @ self.id_basis.T if id_t.dim() == 2 else base + self.id_basis @ id_t
        if exp is None:
            return base.reshape(*base.shape[:-1], -1, 3)
        exp_t = self._coeffs(exp, self.exp_dims, "exp")
        flat = base + exp_t @ self.exp_basis.T
        return flat.reshape(*flat.shape[:-1], -1, 3)

    def albedo(self, tex=None) -> torch.Tensor:
        """Per-vertex albedo (V, 3) in [0, 1] (or (F, V, 3) for tex of shape (F, K_tex))."""
        if tex is None or self.albedo_basis is None:
            return self.mean_albedo
        tex_t = self._coeffs(tex, self.tex_dims, "tex")
        flat = self.mean_albedo.reshape(-1) + tex_t @ self.albedo_basis.T
        return flat.reshape(*flat.shape[:-1], -1, 3).clamp(0.0, 1.0)

    def _coeffs(self, x, dims: int, name: str) -> torch.Tensor:
        t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
        t = t.to(device=self.device, dtype=torch.float32)
        if t.dim() not in (1, 2) or t.shape[-1] != dims:
            raise ValueError(f"{self.name}: {name} coefficients must have {dims} dims in the last "
                             f"axis, got shape {tuple(t.shape)}")
        return t

    # -- measurements ------------------------------------------------------------------------
    def landmark(self, vertices: torch.Tensor, name: str) -> torch.Tensor:
        """Position (..., 3) of a named landmark (the mean of its vertices)."""
        if name not in self.landmarks:
            raise ValueError(f"{self.name}: no landmark '{name}' (has: {', '.join(self.landmarks)})")
        idx = torch.as_tensor(self.landmarks[name], device=vertices.device)
        return vertices[..., idx, :].mean(dim=-2)

    def mouth_opening(self, vertices: torch.Tensor) -> torch.Tensor:
        """Distance (...,) between the inner upper and inner lower lip, in model units."""
        return (self.landmark(vertices, "lip_upper_inner")
                - self.landmark(vertices, "lip_lower_inner")).norm(dim=-1)

    def eye_openness(self, vertices: torch.Tensor) -> torch.Tensor:
        """Lid-to-lid distance (..., 2) of the (subject's) left and right eye, in model units."""
        left = (self.landmark(vertices, "eye_left_upper")
                - self.landmark(vertices, "eye_left_lower")).norm(dim=-1)
        right = (self.landmark(vertices, "eye_right_upper")
                 - self.landmark(vertices, "eye_right_lower")).norm(dim=-1)
        return torch.stack([left, right], dim=-1)

    # -- semantic blendshapes (built-in model) -----------------------------------------------
    def _rig(self):
        if self.blendshapes is None:
            raise ValueError(f"{self.name}: this face model has no semantic blendshapes "
                             "(only the built-in model does)")
        return self.blendshapes

    def weights_to_exp(self, weights):
        """Semantic blendshape weights (L, S) -> expression coefficients (L, K_exp)."""
        return self._rig().weights_to_exp(weights)

    def exp_to_weights(self, exp):
        """Expression coefficients (L, K_exp) -> least-squares blendshape weights (L, S)."""
        return self._rig().exp_to_weights(exp)

    def region_sensitivity(self) -> dict[str, np.ndarray]:
        """Per expression dim, how strongly the lip / eye / global blendshapes drive it."""
        return self._rig().region_sensitivity()
