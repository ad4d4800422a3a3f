"""Reading and writing motion in other tools' formats: Deep3DFaceRecon's 257-d coefficients
(.mat / per-key .mat / .npy), the 73-d PIRenderer / SadTalker / DreamTalk descriptor, and our .npz.
See `disenttalk_fast.interop.formats` for the table."""

from disenttalk_fast.interop.deep3d import Deep3DCoeffs, read_deep3d
from disenttalk_fast.interop.formats import (FORMATS, detect_format, read_motion, read_template,
                                             write_motion)

__all__ = ["Deep3DCoeffs", "FORMATS", "detect_format", "read_deep3d", "read_motion",
           "read_template", "write_motion"]
