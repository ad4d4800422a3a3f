"""The synthetic corpus: espeak-ng phoneme timings, viseme tables, motion synthesis, and the
corpus folder (datasets + edits) that `disenttalk disentangle` must recover the lip / eye dims
from."""

import random

import numpy as np
import pytest

from disenttalk_fast.corpus import espeak, motion_synth, sentences_en, sentences_zh, visemes
from disenttalk_fast.facemodel.blendshapes import LIP_BLENDSHAPES, index

needs_espeak = pytest.mark.skipif(not espeak.available(), reason=espeak.UNAVAILABLE)


def test_sentences_are_deterministic_distinct_and_numerous():
    for mod in (sentences_en, sentences_zh):
        a, b = mod.sentences(300, seed=3), mod.sentences(300, seed=3)
        assert a == b and len(set(a)) == 300
        assert mod.sentences(300, seed=4) != a
    assert all(any("\u4e00" <= ch <= "\u9fff" for ch in s) for s in sentences_zh.sentences(50))
    assert sentences_en.number_words(42) == "forty-two"
    assert sentences_zh.number_chars(25) == "二十五" and sentences_zh.number_chars(10) == "十"


def test_viseme_tables_cover_mandarin_retroflex_and_rounded_finals():
    zh = visemes.MANDARIN
    for retroflex in ("ts.", "ts.h", "s.", "z."):
        assert zh[retroflex] == ("RETRO",)
    assert zh["tS;"] == ("PAL",)            # j q x spread, unlike zh ch sh
    for rounded in ("u", "o", "y"):
        shape = visemes.VISEMES[zh[rounded][0]]
        assert shape.get("lip_pucker", 0) + shape.get("lip_funnel", 0) > 0.5
    assert visemes.phoneme_visemes("'ai", "zh") == ("AA", "II")       # stress mark ignored
    assert visemes.phoneme_visemes("_:", "en") == ("sil",)
    assert visemes.phoneme_visemes("p", "en") == ("PP",)
    with pytest.raises(ValueError, match="unknown language"):
        visemes.phoneme_visemes("a", "fr")


def _phonemes(spec):
    return [espeak.Phoneme(n, t) for n, t in spec]


def test_lip_track_closes_on_silence_and_bilabials_and_anticipates():
    # "_ (0-0.4) m (0.4-0.5) a (0.5-0.9) _ (0.9-1.6)"
    ph = _phonemes([("_", 0.0), ("m", 0.4), ("a", 0.5), ("_", 0.9)])
    style = motion_synth.MotionStyle(anticipation=0.08, smoothing=0.02)
    lips = motion_synth.lip_track(ph, 1.6, "en", 40, style, np.random.default_rng(0))
    jaw, press = lips[:, LIP_BLENDSHAPES.index("jaw_open")], lips[:, LIP_BLENDSHAPES.index("lip_press")]
    assert lips[:5].max() == 0 and lips[-8:].max() < 1e-3      # silence = closed neutral mouth
    assert press[9:12].max() > 0.8                                # /m/ closes the lips
    assert jaw[14:20].mean() > 0.6                                # /a/ opens the jaw
    # anticipation: the jaw is already opening in the frame before the /a/ starts (frame 12)
    assert jaw[11] > 0.1


def test_blinks_are_physiological_and_independent_of_audio():
    rng = np.random.default_rng(0)
    count, seconds = 0, 0.0
    for _ in range(200):
        style = motion_synth.random_style(rng)
        eyes = motion_synth.eye_track(250, style, rng)
        count += motion_synth.detect_blinks(eyes[:, 0])
        seconds += 10.0
        assert eyes.min() >= 0 and eyes.max() <= 1
    assert 0.28 <= count / seconds <= 0.45


def test_closed_edits_touch_only_their_region():
    rng = np.random.default_rng(1)
    ph = _phonemes([("_", 0.0), ("b", 0.2), ("'oU", 0.3), ("_", 0.8)])
    w = motion_synth.synthesize_weights(ph, 1.2, "en", 30, motion_synth.MotionStyle(), rng)
    lips, eyes = motion_synth.closed_lips(w), motion_synth.closed_eyes(w)
    lip_cols = np.arange(len(LIP_BLENDSHAPES))
    other = np.setdiff1d(np.arange(w.shape[1]), lip_cols)
    assert np.array_equal(lips[:, other], w[:, other]) and lips[:, index("jaw_open")].max() == 0
    assert (eyes[:, index("eye_blink_left")] == 1).all()
    assert np.array_equal(np.delete(eyes, [index("eye_blink_left"), index("eye_blink_right")], 1),
                          np.delete(w, [index("eye_blink_left"), index("eye_blink_right")], 1))


@needs_espeak
def test_espeak_gives_audio_and_ordered_phoneme_times_in_both_languages():
    engine = espeak.Espeak.get()
    for lang, text in (("en", "Bob bought a blue umbrella."), ("zh", "我们今天去学校吃饭。")):
        voice = espeak.random_voice(lang, random.Random(0))
        utt = engine.synthesize(text, voice)
        assert utt.duration > 0.8 and np.abs(utt.audio).max() > 0.05
        starts = [p.start for p in utt.phonemes]
        assert starts == sorted(starts) and starts[-1] <= utt.duration + 1e-3
        names = {visemes.normalize(p.name) for p in utt.phonemes}
        if lang == "zh":
            assert {"ts.h", "S;"} <= names   # chi (retroflex), xue / xiao (palatal)
        else:
            assert "b" in names
        # same voice + text -> identical output
        again = engine.synthesize(text, voice)
        assert np.array_equal(again.audio, utt.audio)


@needs_espeak
def test_corpus_phonemes_are_all_in_the_tables():
    """No phoneme of the corpus falls back to the 'unknown phoneme' guess."""
    engine = espeak.Espeak.get()
    rng = random.Random(0)
    for lang, mod in (("en", sentences_en), ("zh", sentences_zh)):
        table = visemes.TABLES[lang]
        for text in mod.sentences(25, seed=1):
            for p in engine.synthesize(text, espeak.random_voice(lang, rng)).phonemes:
                key = visemes.normalize(p.name)
                assert key in table or visemes.is_pause(p.name) or visemes.is_marker(p.name), \
                    (lang, text, p.name)


# -- the corpus folder -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory):
    if not espeak.available():
        pytest.skip(espeak.UNAVAILABLE)
    from disenttalk_fast.corpus.build import build_corpus

    out = tmp_path_factory.mktemp("corpus") / "c"
    build_corpus(out, per_language=8, seed=0)
    return out


def test_corpus_folder_is_a_clip_dataset_with_splits_and_edits(small_corpus):
    from disenttalk_fast.data.dataset import ClipDataset
    from disenttalk_fast.corpus.build import load_records

    records = load_records(small_corpus)
    assert len(records) == 16
    for lang in ("en", "zh"):
        splits = [r["split"] for r in records if r["language"] == lang]
        assert splits.count("test") == 1 and splits.count("val") == 1
    train = ClipDataset(small_corpus / "train", feature="mel", split="train")
    test = ClipDataset(small_corpus / "test", feature="mel", split="all")
    assert len(train) == 12 and len(test) == 2
    item = test[0]
    assert item["exp"].shape == (records[7]["frames"], 64)
    assert item["audio"].shape[0] == 2 * item["exp"].shape[0]
    assert len(ClipDataset(small_corpus / "train_en", split="all")) == 7
    for edit in ("original", "closed_lips", "closed_eyes"):
        assert len(list((small_corpus / "edits" / edit).glob("*.npy"))) == 16
    assert not (small_corpus.parent / "c.partial").exists()


def test_disentangle_on_the_corpus_recovers_the_known_lip_and_eye_dims(small_corpus):
    """`disenttalk disentangle` on the corpus edits vs the built-in model's known mixing: the
    reference partition is the same top-k + conflict rule applied to the mixing's per-dim
    region sensitivities (how far each dim moves when that region's blendshapes move)."""
    from disenttalk_fast.cli import main
    from disenttalk_fast.corpus.projection import builtin_model
    from disenttalk_fast.disentangle import select_regions
    from disenttalk_fast.partition import Partition

    out = small_corpus.parent / "partition.json"
    edits = small_corpus / "edits"
    assert main(["disentangle", "--original", str(edits / "original"),
                 "--closed-lips", str(edits / "closed_lips"),
                 "--closed-eyes", str(edits / "closed_eyes"), "-o", str(out)]) == 0
    found = Partition.load(out)
    sens = builtin_model().region_sensitivity()
    ref_lip, ref_eye = select_regions(sens["lip"], sens["eye"], 13, 8)
    lip_overlap = len(set(found.lip) & set(ref_lip))
    eye_overlap = len(set(found.eye) & set(ref_eye))
    # chance overlaps would be 13*13/64 = 2.6 and 8*8/64 = 1
    assert lip_overlap >= 8, (found.lip, sorted(ref_lip))
    assert eye_overlap >= 5, (found.eye, sorted(ref_eye))
    # the strongest dims are never missed
    assert int(np.argmax(sens["lip"])) in found.lip
    strongest_eye = [i for i in np.argsort(-sens["eye"]) if i in ref_eye][:3]
    assert set(strongest_eye) <= set(found.eye), (found.eye, strongest_eye)


def test_corpus_is_deterministic_per_seed(small_corpus, tmp_path):
    from disenttalk_fast.corpus.build import build_corpus

    build_corpus(tmp_path / "again", per_language=2, seed=0, languages=("zh",))
    for name in ("zh_00000", "zh_00001"):
        a = np.load(tmp_path / "again" / "edits" / "original" / f"{name}.npy")
        # same seed, same language and index -> identical clip, whatever else was built
        assert a.shape[1] == 64
        b = np.load(small_corpus / "edits" / "original" / f"{name}.npy")
        assert a.shape == b.shape and np.allclose(a, b)


def test_synth_corpus_refuses_an_existing_folder(small_corpus, capsys):
    from disenttalk_fast.cli import main

    assert main(["synth-corpus", "-o", str(small_corpus), "--per-language", "1"]) == 2
    assert "already exists" in capsys.readouterr().err
