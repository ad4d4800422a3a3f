"""In-process speech synthesis with espeak-ng through ctypes, with phoneme start times.

espeak-ng is initialised in synchronous mode with phoneme events on; a synth callback collects
the 16-bit samples and the `espeakEVENT_PHONEME` events (phoneme mnemonic + sample position),
so every phoneme's start time comes from the synthesiser itself, not from a forced aligner.

Every utterance is a pure function of (text, voice, seed): see `Espeak` for how.
The library is found through the `espeakng-loader` pip package (library + voice data in the
wheel) or, failing that, a system `libespeak-ng` (Debian: `apt-get install espeak-ng`).
"""

from __future__ import annotations

import _ctypes
import atexit
import ctypes
import ctypes.util
import os
import random
import shutil
import tempfile
import threading
from dataclasses import dataclass

import numpy as np

UNAVAILABLE = ("espeak-ng is not available: `pip install espeakng-loader` "
               "(or `apt-get install espeak-ng`)")

# speak_lib.h constants
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_PHONEME_EVENTS = 0x0001
_INITIALIZE_DONT_EXIT = 0x8000
_EVENT_LIST_TERMINATED = 0
_EVENT_PHONEME = 7
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_PARAM_RATE, _PARAM_VOLUME, _PARAM_PITCH, _PARAM_RANGE, _PARAM_WORDGAP = 1, 2, 3, 4, 7

# The voice variants shipped with every espeak-ng data folder (espeak-ng-data/voices/!v).
VARIANTS = ("", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5")
LANGUAGE_VOICES = {"en": ("en-us", "en"), "zh": ("cmn",)}


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p),
                ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint),
                ("text_position", ctypes.c_int), ("length", ctypes.c_int),
                ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", _EventId)]


_Callback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                             ctypes.POINTER(_Event))


@dataclass(frozen=True)
class Phoneme:
    name: str        # espeak-ng mnemonic, stress marks kept (e.g. "'oU", "ts.h", "_")
    start: float     # seconds from the start of the audio


@dataclass(frozen=True)
class Voice:
    name: str        # e.g. "en-us+f3"
    rate: int        # words per minute
    pitch: int       # 0..100
    pitch_range: int  # 0..100


@dataclass
class Utterance:
    text: str
    voice: Voice
    audio: np.ndarray          # float32 mono in [-1, 1]
    sample_rate: int
    phonemes: list[Phoneme]

    @property
    def duration(self) -> float:
        return len(self.audio) / self.sample_rate


def _find_library() -> tuple[str, str | None]:
    try:
        import espeakng_loader
        return espeakng_loader.get_library_path(), espeakng_loader.get_data_path()
    except (ImportError, RuntimeError):
        pass
    path = ctypes.util.find_library("espeak-ng")
    if path is None:
        raise RuntimeError(UNAVAILABLE)
    return path, None  # a system library knows its own data folder


class Espeak:
    """espeak-ng behind a lock, loaded afresh for every utterance.

    The C library keeps static state between utterances (wave generator phase, noise
    generators) that survives even espeak_Terminate / espeak_Initialize, so the same text and
    voice give different samples depending on what was spoken before. To make every utterance a
    pure function of (text, voice, seed), `synthesize` dlopens a private copy of the library,
    initialises it, speaks, and dlcloses it again (about 15 ms of overhead per utterance).
    """

    _instance: "Espeak | None" = None
    _lock = threading.Lock()

    @classmethod
    def get(cls) -> "Espeak":
        with cls._lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    def __init__(self):
        lib_path, data_path = _find_library()
        # A private copy: nobody else in the process holds it, so dlclose really unloads it.
        self._dir = tempfile.mkdtemp(prefix="disenttalk-espeak-")
        atexit.register(shutil.rmtree, self._dir, True)
        self._lib_path = os.path.join(self._dir, "libespeak-ng-private.so")
        try:
            shutil.copy(lib_path, self._lib_path)
        except OSError as exc:
            raise RuntimeError(f"{UNAVAILABLE} ({lib_path}: {exc})") from None
        self._data_path = data_path.encode() if data_path else None
        self._chunks: list[np.ndarray] = []
        self._phonemes: list[Phoneme] = []
        self._callback = _Callback(self._on_synth)  # keep a reference: C holds the pointer
        self._synth_lock = threading.Lock()
        self._srand = getattr(ctypes.CDLL(None), "srand", None)
        lib = self._open()          # fail here, at construction, when the library is unusable
        self._close(lib)

    def _open(self):
        try:
            lib = ctypes.CDLL(self._lib_path, mode=ctypes.RTLD_LOCAL)
        except OSError as exc:
            raise RuntimeError(f"{UNAVAILABLE} ({exc})") from None
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p,
                                          ctypes.c_int]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                     ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p,
                                     ctypes.c_void_p]
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, self._data_path,
                                     _INITIALIZE_PHONEME_EVENTS | _INITIALIZE_DONT_EXIT)
        if rate <= 0:
            self._close(lib, terminate=False)
            raise RuntimeError(f"{UNAVAILABLE} (espeak_Initialize failed with {rate})")
        self.sample_rate = int(rate)
        lib.espeak_SetSynthCallback(self._callback)
        set_seed = getattr(lib, "espeak_ng_SetRandSeed", None)
        if set_seed is not None:
            set_seed.argtypes = [ctypes.c_long]
        lib.set_seed = set_seed
        return lib

    @staticmethod
    def _close(lib, terminate: bool = True) -> None:
        if terminate:
            lib.espeak_Terminate()
        _ctypes.dlclose(lib._handle)

    def _on_synth(self, wav, num_samples, events) -> int:
        if wav and num_samples > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, (num_samples,)).copy())
        i = 0
        while events[i].type != _EVENT_LIST_TERMINATED:
            event = events[i]
            if event.type == _EVENT_PHONEME:
                name = event.id.string.decode("utf-8", "replace")
                self._phonemes.append(Phoneme(name, event.sample / self.sample_rate))
            i += 1
        return 0  # 0 = continue synthesis

    def synthesize(self, text: str, voice: Voice, seed: int = 0) -> Utterance:
        """Speak `text` with `voice`; returns the audio and the phoneme start times. The same
        text, voice and seed give the same samples."""
        data = text.encode("utf-8")
        with self._synth_lock:
            lib = self._open()
            try:
                if lib.espeak_SetVoiceByName(voice.name.encode()) != 0:
                    raise ValueError(f"espeak-ng has no voice '{voice.name}'")
                for param, value in ((_PARAM_RATE, voice.rate), (_PARAM_PITCH, voice.pitch),
                                     (_PARAM_RANGE, voice.pitch_range), (_PARAM_VOLUME, 100),
                                     (_PARAM_WORDGAP, 0)):
                    lib.espeak_SetParameter(param, int(value), 0)
                self._chunks, self._phonemes = [], []
                # breath / voicing noise comes from espeak's generator and from libc's rand()
                if lib.set_seed is not None:
                    lib.set_seed(seed)
                if self._srand is not None:
                    self._srand(ctypes.c_uint(seed & 0xFFFFFFFF))
                err = lib.espeak_Synth(data, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8,
                                       None, None)
                lib.espeak_Synchronize()
            finally:
                self._close(lib)
            if err != 0:
                raise RuntimeError(f"espeak-ng failed to synthesise {text!r} (error {err})")
            pcm = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
            phonemes = sorted(self._phonemes, key=lambda p: p.start)
        audio = pcm.astype(np.float32) / 32768.0
        return Utterance(text, voice, audio, self.sample_rate, phonemes)


def available() -> bool:
    """True when espeak-ng can be loaded here."""
    try:
        Espeak.get()
        return True
    except RuntimeError:
        return False


def random_voice(language: str, rng: random.Random) -> Voice:
    """A voice for `language` ('en' or 'zh') with a random variant, rate and pitch."""
    if language not in LANGUAGE_VOICES:
        raise ValueError(f"unknown language '{language}' (choose from en, zh)")
    base = rng.choice(LANGUAGE_VOICES[language])
    variant = rng.choice(VARIANTS)
    return Voice(name=f"{base}+{variant}" if variant else base,
                 rate=rng.randint(135, 195) if language == "en" else rng.randint(120, 175),
                 pitch=rng.randint(25, 75), pitch_range=rng.randint(30, 80))
