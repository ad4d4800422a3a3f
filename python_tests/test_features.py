"""Feature extractors: exactly 2 rows per 25 fps frame, the mel definition, HuBERT, the cache."""

import math

import numpy as np
import pytest
import soundfile as sf

from disenttalk_fast.audio import FeatureCache, extract_features, num_frames
from disenttalk_fast.audio.mel import LOG_FLOOR, MelExtractor, mel_filterbank

# Lengths that do not divide evenly into frames (640 samples) or rows (320 samples).
LENGTHS = [1, 319, 320, 639, 640, 641, 1279, 1280, 16000 + 17]


def noise(n, seed=0):
    return (np.random.default_rng(seed).standard_normal(n) * 0.1).astype(np.float32)


@pytest.mark.parametrize("n", LENGTHS)
def test_two_rows_per_frame_ceil_rule(n):
    rows = extract_features(noise(n))
    assert num_frames(n) == math.ceil(n / 640)
    assert rows.shape == (2 * math.ceil(n / 640), 80) and rows.dtype == np.float32


@pytest.mark.parametrize("frames", [1, 3, 40])
def test_imposed_frame_count_trims_or_pads(frames):
    x = noise(25 * 640 + 100)
    rows = extract_features(x, num_frames=frames)
    assert rows.shape == (2 * frames, 80)
    full = extract_features(x)
    if frames <= 25:   # trimmed: identical to the first rows of the full-length features
        np.testing.assert_allclose(rows, full[:2 * frames], atol=1e-5)
    else:              # padded with silence: rows past the audio are at the log floor
        np.testing.assert_allclose(rows[:2 * 25], full[:2 * 25], atol=1e-5)
        assert np.allclose(rows[2 * 27:], math.log(LOG_FLOOR))


def numpy_mel(x, n_rows):
    """Independent restatement of the documented definition: row i = log mel power of the Hann
    window over samples [320 i - 40, 320 i + 360), zeros outside the signal."""
    padded = np.concatenate([np.zeros(40), x, np.zeros(320 * n_rows + 400)])
    win = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(400) / 400)
    out = []
    for i in range(n_rows):
        seg = padded[320 * i: 320 * i + 400] * win
        power = np.abs(np.fft.rfft(seg)) ** 2
        out.append(np.log(np.maximum(mel_filterbank() @ power, LOG_FLOOR)))
    return np.array(out, np.float32)


def test_mel_matches_its_definition():
    x = noise(5000, seed=3)
    rows = MelExtractor()(x, 2 * num_frames(x.size))   # the extractor alone (no DC filter)
    np.testing.assert_allclose(rows, numpy_mel(x, rows.shape[0]), rtol=1e-4, atol=2e-3)


def test_mel_row_depends_only_on_its_window():
    # Row i must not change when samples at or after 320 i + 360 change (Streamer relies on it).
    x = noise(6400)
    ex = MelExtractor()
    a = ex(x, 20)
    y = x.copy()
    y[320 * 9 + 360:] = 0.7
    b = ex(y, 20)
    np.testing.assert_array_equal(a[:10], b[:10])
    assert not np.allclose(a[10], b[10])


def test_filterbank_has_no_empty_band():
    fb = mel_filterbank()
    assert fb.shape == (80, 201) and (fb.max(1) > 0).all()


def test_cache_hit_and_miss(tmp_path):
    x = noise(8000)
    cache = FeatureCache(tmp_path / "cache")
    a = extract_features(x, cache=cache)
    assert (cache.hits, cache.misses) == (0, 1)
    b = extract_features(x, cache=cache)
    assert (cache.hits, cache.misses) == (1, 1)
    np.testing.assert_array_equal(a, b)
    # Same content through a file (16-bit-exact float WAV) hits; different content misses.
    sf.write(tmp_path / "x.wav", x, 16000, subtype="FLOAT")
    extract_features(tmp_path / "x.wav", cache=cache)
    assert cache.hits == 2
    extract_features(noise(8000, seed=1), cache=cache)
    assert cache.misses == 2
    # A different frame count is a different entry.
    extract_features(x, num_frames=3, cache=cache)
    assert cache.misses == 3
    # A corrupted entry is a miss and gets rewritten; no temp files are left behind.
    for p in (tmp_path / "cache" / "mel").iterdir():
        p.write_bytes(b"junk")
    np.testing.assert_array_equal(extract_features(x, cache=cache), a)
    assert cache.misses == 4
    assert not [p for p in (tmp_path / "cache" / "mel").iterdir() if p.suffix != ".npy"]


def test_unknown_feature():
    with pytest.raises(ValueError, match="unknown audio feature"):
        extract_features(noise(100), "wavlm")
    with pytest.raises(ValueError, match="hubert_dir"):
        extract_features(noise(100), "hubert")


# -- HuBERT ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_hubert(tmp_path_factory):
    transformers = pytest.importorskip("transformers")
    import torch

    torch.manual_seed(0)
    cfg = transformers.HubertConfig(hidden_size=32, num_hidden_layers=3, num_attention_heads=2,
                                    intermediate_size=48, conv_dim=(16,) * 7,
                                    num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2)
    folder = tmp_path_factory.mktemp("hubert")
    transformers.HubertModel(cfg).eval().save_pretrained(folder)
    return folder


@pytest.mark.parametrize("n", [641, 1279, 16000 + 17])
def test_hubert_two_rows_per_frame(tiny_hubert, n):
    rows = extract_features(noise(n), "hubert", hubert_dir=tiny_hubert, device="cpu")
    assert rows.shape == (2 * math.ceil(n / 640), 32) and np.isfinite(rows).all()


def test_hubert_layers_differ_and_match_transformers(tiny_hubert):
    import torch
    from transformers import HubertModel

    from disenttalk_fast.audio.hubert import HubertExtractor

    x = noise(3200)
    l1 = HubertExtractor(tiny_hubert, layer=1, device="cpu")(x, 10)
    l3 = HubertExtractor(tiny_hubert, layer=-1, device="cpu")(x, 10)
    assert not np.allclose(l1, l3)
    # Against the untouched model on the same signal: 40 zeros either side (3280 samples; the
    # conv front end group-normalises over the whole input, so the length must match too).
    model = HubertModel.from_pretrained(tiny_hubert, local_files_only=True).eval()
    padded = np.concatenate([np.zeros(40, np.float32), x, np.zeros(40, np.float32)])
    with torch.no_grad():
        hs = model(torch.from_numpy(padded)[None], output_hidden_states=True).hidden_states
    np.testing.assert_allclose(l1, hs[1][0, :10].numpy(), atol=1e-4)


def test_hubert_chunking(tiny_hubert):
    from disenttalk_fast.audio.hubert import HubertExtractor

    x = noise(16000 * 2)
    whole = HubertExtractor(tiny_hubert, device="cpu", chunk_seconds=100)(x, 100)
    # Context covering the whole clip: chunking is exact.
    exact = HubertExtractor(tiny_hubert, device="cpu", chunk_seconds=0.3, context_seconds=3)(x, 100)
    np.testing.assert_allclose(exact, whole, atol=1e-4)
    chunked = HubertExtractor(tiny_hubert, device="cpu", chunk_seconds=0.5,
                              context_seconds=0.2)(x, 100)
    assert chunked.shape == whole.shape and np.isfinite(chunked).all()


def test_hubert_cache_key_includes_layer(tiny_hubert, tmp_path):
    cache = FeatureCache(tmp_path)
    x = noise(2000)
    for layer in (1, 2, 1):
        extract_features(x, "hubert", hubert_dir=tiny_hubert, layer=layer, device="cpu",
                         cache=cache)
    assert (cache.hits, cache.misses) == (1, 2)


def test_hubert_bad_inputs(tmp_path, tiny_hubert):
    with pytest.raises(FileNotFoundError, match="config.json"):
        extract_features(noise(2000), "hubert", hubert_dir=tmp_path, device="cpu")
    with pytest.raises(ValueError, match="layer 9"):
        extract_features(noise(2000), "hubert", hubert_dir=tiny_hubert, layer=9, device="cpu")
