"""`mel`: 80-band log-mel spectrogram at 50 Hz, computed with torch (no weights, no torchaudio).

Row i is the power spectrum of a 400-sample (25 ms) Hann window starting at sample 320 i - 40, so
its centre sits in the middle of row i's own 20 ms span [320 i, 320 i + 320). Samples outside the
signal are zeros. The window reaches 40 samples into the next row's span, which is the only
lookahead this feature has (see `MelExtractor.lookahead_samples`; `Streamer` relies on it).

Mel scale and filters follow Slaney's Auditory Toolbox (librosa's default: linear below 1 kHz,
log above, filters normalised to equal area), 0 - 8000 Hz. Values are natural log of the mel power
floored at 1e-5 (about -11.5 for digital silence).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from disenttalk_fast.audio.frames import ROW_HOP, SAMPLE_RATE

N_MELS = 80
WIN = 400
LEFT_CONTEXT = (WIN - ROW_HOP) // 2    # 40 samples before the row's span ...
RIGHT_CONTEXT = WIN - ROW_HOP - LEFT_CONTEXT   # ... and 40 after it
LOG_FLOOR = 1e-5


def _hz_to_mel(f):
    f = np.asarray(f, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, math.log(6.4) / 27.0
    return np.where(f < min_log_hz, f / f_sp,
                    min_log_mel + np.log(np.maximum(f, 1e-10) / min_log_hz) / logstep)


def _mel_to_hz(m):
    m = np.asarray(m, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, math.log(6.4) / 27.0
    return np.where(m < min_log_mel, m * f_sp, min_log_hz * np.exp(logstep * (m - min_log_mel)))


@lru_cache(maxsize=4)
def mel_filterbank(n_mels: int = N_MELS, n_fft: int = WIN, sr: int = SAMPLE_RATE,
                   fmin: float = 0.0, fmax: float = SAMPLE_RATE / 2) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) triangular filters, Slaney mel scale, area-normalised."""
    fft_freqs = np.linspace(0, sr / 2, n_fft // 2 + 1)
    mel_pts = _mel_to_hz(np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), n_mels + 2))
    fdiff = np.diff(mel_pts)
    ramps = mel_pts[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_pts[2:n_mels + 2] - mel_pts[:n_mels]))[:, None]
    return weights.astype(np.float32)


class MelExtractor:
    """Log-mel rows at 50 Hz; see the module docstring for the exact window placement."""

    name = "mel"
    dim = N_MELS
    lookahead_samples = RIGHT_CONTEXT

    def __init__(self, device: str = "cpu"):
        self.device = device

    def config(self) -> dict:
        return {"name": "mel", "version": 1, "n_mels": N_MELS, "win": WIN, "hop": ROW_HOP,
                "window": "hann", "scale": "slaney", "log_floor": LOG_FLOOR}

    def rows_from_padded(self, padded: np.ndarray, num_rows: int) -> np.ndarray:
        """Rows from samples that already hold the 40 samples of left context: row i uses
        padded[320 i : 320 i + 400]; `padded` must have at least 320 num_rows + 80 samples."""
        import torch

        if num_rows == 0:
            return np.zeros((0, N_MELS), np.float32)
        need = ROW_HOP * num_rows + WIN - ROW_HOP
        x = torch.as_tensor(np.ascontiguousarray(padded[:need], dtype=np.float32),
                            device=self.device)
        window = torch.hann_window(WIN, periodic=True, device=self.device)
        spec = torch.stft(x, n_fft=WIN, hop_length=ROW_HOP, win_length=WIN, window=window,
                          center=False, return_complex=True)          # (201, num_rows)
        power = spec.real ** 2 + spec.imag ** 2
        fb = torch.as_tensor(mel_filterbank(), device=self.device)
        mel = fb @ power
        return torch.log(torch.clamp(mel, min=LOG_FLOOR)).T.contiguous().cpu().numpy()

    def __call__(self, audio: np.ndarray, num_rows: int) -> np.ndarray:
        """(num_rows, 80) rows for 16 kHz `audio`: zero outside the signal, trimmed beyond."""
        need = ROW_HOP * num_rows + WIN - ROW_HOP
        padded = np.zeros(need, np.float32)
        take = audio[:need - LEFT_CONTEXT]
        padded[LEFT_CONTEXT:LEFT_CONTEXT + take.size] = take
        # Bounded memory for long audio: rows in blocks of 15000 (5 minutes).
        out, block = [], 15000
        for r0 in range(0, num_rows, block):
            r1 = min(num_rows, r0 + block)
            out.append(self.rows_from_padded(padded[ROW_HOP * r0:], r1 - r0))
        return np.concatenate(out) if out else np.zeros((0, N_MELS), np.float32)
