"""Morphable face models: the built-in procedural face and Deep3DFaceRecon's BFM."""

from disenttalk_fast.facemodel.morphable import MorphableModel

__all__ = ["MorphableModel"]
