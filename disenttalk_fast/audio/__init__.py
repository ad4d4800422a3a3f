"""Audio front end: loading (any soundfile format -> 16 kHz mono float32), the 50 Hz feature
extractors (`mel`, `hubert`) behind one interface, and their on-disk cache."""

from disenttalk_fast.audio.cache import FeatureCache
from disenttalk_fast.audio.features import FEATURES, extract_features, get_extractor
from disenttalk_fast.audio.frames import (FPS, ROWS_PER_FRAME, SAMPLE_RATE, SAMPLES_PER_FRAME,
                                          num_frames)
from disenttalk_fast.audio.load import AudioError, load_audio

__all__ = ["AudioError", "FEATURES", "FPS", "FeatureCache", "ROWS_PER_FRAME", "SAMPLE_RATE",
           "SAMPLES_PER_FRAME", "extract_features", "get_extractor", "load_audio", "num_frames"]
