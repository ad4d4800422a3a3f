"""The timing contract between audio and motion.

Motion runs at 25 fps and audio at 16 kHz, so one frame is 640 samples and carries exactly two
feature rows of 320 samples (20 ms, 50 Hz). Frame j owns samples [640 j, 640 (j + 1)) and rows
2 j and 2 j + 1.

Padding / trimming rule: audio of n samples gives `num_frames(n) = ceil(n / 640)` frames — every
sample belongs to some frame, and the last, partial frame is completed with silence (zeros).
When the frame count is imposed (a dataset clip whose coefficients have L frames), the features
are computed for exactly 2 L rows: audio beyond frame L is ignored, missing audio is silence.
"""

from __future__ import annotations

import math

SAMPLE_RATE = 16000
FPS = 25
ROWS_PER_FRAME = 2
SAMPLES_PER_FRAME = SAMPLE_RATE // FPS          # 640
ROW_HOP = SAMPLES_PER_FRAME // ROWS_PER_FRAME   # 320


def num_frames(num_samples: int) -> int:
    """Frames covering `num_samples` 16 kHz samples: ceil(num_samples / 640)."""
    return math.ceil(int(num_samples) / SAMPLES_PER_FRAME)


def num_rows(frames: int) -> int:
    return ROWS_PER_FRAME * int(frames)
