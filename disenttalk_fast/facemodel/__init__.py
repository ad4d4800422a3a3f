"""Morphable face models: the built-in procedural face and Deep3DFaceRecon's BFM."""
