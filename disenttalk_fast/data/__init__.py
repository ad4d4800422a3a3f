"""Clip datasets: a manifest (JSON lines) + per-clip motion arrays + cached audio features
(layout in `disenttalk_fast.data.manifest`), built by `prepare_dataset` / `disenttalk prepare`
and read by `ClipDataset`."""

from disenttalk_fast.data.dataset import ClipDataset
from disenttalk_fast.data.prepare import PrepareReport, prepare_dataset

__all__ = ["ClipDataset", "PrepareReport", "prepare_dataset"]
