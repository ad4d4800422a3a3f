"""One synthetic clip: speech from espeak-ng, its blendshape motion, and its expression arrays.

Every clip is a pure function of (seed, language, index), so a corpus can be regenerated or
extended clip by clip and two runs with the same seed write identical arrays.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

import numpy as np

from disenttalk_fast.corpus import motion_synth, sentences_en, sentences_zh
from disenttalk_fast.corpus.espeak import Espeak, Phoneme, Voice, random_voice

SAMPLE_RATE = 16000
SAMPLES_PER_FRAME = SAMPLE_RATE // motion_synth.FPS   # 640
SENTENCE_POOL = 400                                    # sentences written per language
MIN_SECONDS = 2.2                                      # shortest clip (before the end silence)
_SENTENCES = {"en": sentences_en.sentences, "zh": sentences_zh.sentences}
LANGUAGES = tuple(_SENTENCES)


@dataclass
class SyntheticClip:
    clip_id: str
    language: str
    text: str
    voice: Voice
    audio: np.ndarray        # float32 16 kHz mono, exactly num_frames * 640 samples
    phonemes: list[Phoneme]  # start times in seconds of `audio`
    weights: np.ndarray      # (L, len(SEMANTIC_BLENDSHAPES)) semantic blendshape weights
    pose: np.ndarray         # (L, 6)
    style: motion_synth.MotionStyle

    @property
    def num_frames(self) -> int:
        return self.weights.shape[0]


def clip_seed(seed: int, language: str, index: int) -> int:
    digest = hashlib.sha256(f"disenttalk-corpus:{seed}:{language}:{index}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def _resample(audio: np.ndarray, rate: int) -> np.ndarray:
    if rate == SAMPLE_RATE:
        return audio.astype(np.float32)
    import soxr
    return soxr.resample(audio, rate, SAMPLE_RATE).astype(np.float32)


def make_clip(seed: int, language: str, index: int) -> SyntheticClip:
    """Clip `index` of `language`: 1-3 sentences (more if short) with pauses between, one voice,
    and 0.15-0.5 s of silence before and after (the mouth rests closed there)."""
    if language not in _SENTENCES:
        raise ValueError(f"unknown language '{language}' (choose from {', '.join(LANGUAGES)})")
    s = clip_seed(seed, language, index)
    rng = random.Random(s)
    nrng = np.random.default_rng(s)
    pool = _SENTENCES[language](SENTENCE_POOL, seed)
    candidates = rng.sample(pool, 5)
    wanted = rng.choice((1, 1, 2, 2, 3))
    voice = random_voice(language, rng)
    engine = Espeak.get()

    pieces: list[np.ndarray] = []
    phonemes: list[Phoneme] = []
    t = 0.0

    def silence(seconds: float) -> None:
        nonlocal t
        n = int(round(seconds * SAMPLE_RATE))
        pieces.append(np.zeros(n, np.float32))
        t += n / SAMPLE_RATE

    silence(rng.uniform(0.15, 0.5))
    texts: list[str] = []
    # `wanted` sentences, and more while the clip is shorter than MIN_SECONDS (the sync metrics'
    # +-15 frame sweep needs 36 frames).
    for text in candidates:
        if len(texts) >= wanted and t >= MIN_SECONDS:
            break
        if texts:
            silence(rng.uniform(0.2, 0.6))
        texts.append(text)
        utt = engine.synthesize(text, voice)
        audio = _resample(utt.audio, utt.sample_rate)
        phonemes += [Phoneme(p.name, t + p.start) for p in utt.phonemes]
        phonemes.append(Phoneme("_", t + len(audio) / SAMPLE_RATE))  # close after the sentence
        pieces.append(audio)
        t += len(audio) / SAMPLE_RATE
    silence(rng.uniform(0.15, 0.5))
    audio = np.concatenate(pieces)
    # Whole frames only: the audio/motion contract is 640 samples per frame.
    num_frames = len(audio) // SAMPLES_PER_FRAME
    audio = audio[: num_frames * SAMPLES_PER_FRAME]
    peak = float(np.abs(audio).max()) or 1.0
    audio = audio * (rng.uniform(0.3, 0.9) / peak)            # varied loudness, no clipping
    audio = audio + nrng.normal(0, 1e-4, audio.shape).astype(np.float32)  # a little room noise

    style = motion_synth.random_style(nrng)
    duration = num_frames / motion_synth.FPS
    weights = motion_synth.synthesize_weights(phonemes, duration, language, num_frames, style,
                                              nrng)
    pose = motion_synth.head_pose(num_frames, nrng).astype(np.float32)
    return SyntheticClip(f"{language}_{index:05d}", language, " ".join(texts), voice,
                         audio.astype(np.float32), phonemes, weights, pose, style)
