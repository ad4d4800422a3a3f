"""Training: random windows of clips, the Trainer (Adam, clipping, EMA, atomic checkpoints,
exact resume) and DistributedDataParallel through torchrun."""

from disenttalk_fast.training.trainer import PRECISIONS, Trainer
from disenttalk_fast.training.windows import RandomWindows, load_clips

__all__ = ["Trainer", "PRECISIONS", "RandomWindows", "load_clips"]
