"""Rendering: camera, SH lighting, the z-buffer rasteriser and `render()` (motion -> frames)."""

from disenttalk_fast.render.rasterize import rasterize, rasterize_reference
from disenttalk_fast.render.render import render, vertex_normals

__all__ = ["rasterize", "rasterize_reference", "render", "vertex_normals"]
