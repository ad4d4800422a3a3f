"""Phoneme -> viseme tables for English and Mandarin (espeak-ng mnemonics), visemes expressed as
weights of the built-in face's lip blendshapes.

A viseme is a mouth shape: a dict from lip blendshape name to weight in [0, 1]; the empty
viseme ("sil") is the closed, neutral mouth. A phoneme maps to a short sequence of visemes that
share its duration (diphthongs and Mandarin compound finals glide: "ai" = aa -> I).

Phoneme names are espeak-ng's (see `espeak-ng -x`), with stress marks (' and ,) ignored.
Mandarin: the retroflex initials zh ch sh r are `ts.`, `ts.h`, `s.`, `z.` (slightly protruded,
funnelled lips); the palatals j q x are `tS;`, `tS;h`, `S;` (spread lips); rounded finals u, o and
ü are `u`, `o`, `y` (ü keeps the tongue front but rounds the lips: tight pucker, little jaw).
"""

from __future__ import annotations

from disenttalk_fast.facemodel.blendshapes import LIP_BLENDSHAPES

VISEMES: dict[str, dict[str, float]] = {
    "sil": {},
    # consonants
    "PP": {"lip_press": 1.0, "mouth_close": 0.5, "jaw_open": 0.02},          # p b m
    "FF": {"lower_lip_tuck": 0.9, "upper_lip_raise": 0.3, "jaw_open": 0.1},  # f v
    "TH": {"jaw_open": 0.2, "lip_stretch": 0.2, "lower_lip_depress": 0.2},  # th (dental)
    "DD": {"jaw_open": 0.22, "lip_stretch": 0.15},                           # t d n l
    "KK": {"jaw_open": 0.3, "lip_stretch": 0.1},                             # k g ng h
    "SS": {"jaw_open": 0.08, "lip_stretch": 0.45, "lower_lip_depress": 0.15},  # s z ts
    "CH": {"jaw_open": 0.18, "lip_funnel": 0.55, "lip_pucker": 0.3,          # English sh ch j
           "upper_lip_raise": 0.2},
    "RR": {"jaw_open": 0.15, "lip_pucker": 0.45, "lip_funnel": 0.25},        # English r
    "RETRO": {"jaw_open": 0.15, "lip_funnel": 0.45, "lip_pucker": 0.2,       # zh ch sh r
              "upper_lip_raise": 0.3},
    "PAL": {"jaw_open": 0.1, "lip_stretch": 0.55, "lip_corner_pull": 0.1},   # j q x
    "WW": {"jaw_open": 0.08, "lip_pucker": 0.95},                            # w
    "JJ": {"jaw_open": 0.12, "lip_stretch": 0.45},                           # y glide
    # vowels
    "AA": {"jaw_open": 0.85, "lower_lip_depress": 0.3},                      # a
    "EE": {"jaw_open": 0.5, "lip_stretch": 0.4},                             # e, E
    "II": {"jaw_open": 0.18, "lip_stretch": 0.7, "lip_corner_pull": 0.2},    # i
    "OO": {"jaw_open": 0.55, "lip_funnel": 0.75, "lip_pucker": 0.2},         # o
    "UU": {"jaw_open": 0.15, "lip_pucker": 0.9, "lip_funnel": 0.15},         # u
    "YY": {"jaw_open": 0.12, "lip_pucker": 0.8, "lip_stretch": 0.1},         # ü (rounded front)
    "@@": {"jaw_open": 0.4, "lower_lip_depress": 0.1},                        # schwa, V
    "ER": {"jaw_open": 0.3, "lip_funnel": 0.45, "lip_pucker": 0.1},          # er, 3:
    "I_RETRO": {"jaw_open": 0.18, "lip_funnel": 0.3, "upper_lip_raise": 0.2},  # zhi chi shi ri
    "I_DENT": {"jaw_open": 0.12, "lip_stretch": 0.4},                        # zi ci si
}

_CONSONANTS_SHARED = {
    "p": ("PP",), "b": ("PP",), "m": ("PP",), "f": ("FF",), "v": ("FF",),
    "t": ("DD",), "d": ("DD",), "n": ("DD",), "l": ("DD",), "t#": ("DD",),
    "k": ("KK",), "g": ("KK",), "N": ("KK",), "h": ("KK",), "x": ("KK",), "X": ("KK",),
    "s": ("SS",), "z": ("SS",), "w": ("WW",), "j": ("JJ",),
}

ENGLISH: dict[str, tuple[str, ...]] = {
    **_CONSONANTS_SHARED,
    "T": ("TH",), "D": ("TH",), "S": ("CH",), "Z": ("CH",), "tS": ("CH",), "dZ": ("CH",),
    "r": ("RR",), "r-": ("RR",), "@L": ("@@", "DD"), "l/": ("DD",), "n-": ("DD",), "?": ("KK",),
    "a": ("AA",), "a#": ("AA",), "A:": ("AA",), "aa": ("AA",), "A@": ("AA", "ER"),
    "E": ("EE",), "e": ("EE",), "e@": ("EE", "@@"), "eI": ("EE", "II"),
    "I": ("II",), "I#": ("II",), "I2": ("II",), "i": ("II",), "i:": ("II",), "i@": ("II", "@@"),
    "i@3": ("II", "ER"),
    "0": ("OO",), "O:": ("OO",), "O2": ("OO",), "O@": ("OO", "ER"), "o@": ("OO", "ER"),
    "oU": ("OO", "UU"), "OI": ("OO", "II"),
    "U": ("UU",), "u:": ("UU",), "U@": ("UU", "@@"),
    "@": ("@@",), "@2": ("@@",), "@5": ("@@",), "@-": ("@@",), "V": ("@@",), "3": ("ER",),
    "3:": ("ER",),
    "aI": ("AA", "II"), "aI@": ("AA", "II", "@@"), "aI3": ("AA", "II", "ER"), "aU": ("AA", "UU"),
}

MANDARIN: dict[str, tuple[str, ...]] = {
    **_CONSONANTS_SHARED,
    "ph": ("PP",), "th": ("DD",), "kh": ("KK",), "ts": ("SS",), "tsh": ("SS",),
    "ts.": ("RETRO",), "ts.h": ("RETRO",), "s.": ("RETRO",), "z.": ("RETRO",),
    "tS;": ("PAL",), "tS;h": ("PAL",), "S;": ("PAL",),
    "a": ("AA",), "A": ("AA",), "@": ("@@",), "@r": ("ER",), "e": ("EE",),
    "i": ("II",), "i.": ("I_RETRO",), "i[": ("I_DENT",),
    "o": ("OO",), "o-": ("OO",), "u": ("UU",), "y": ("YY",),
    "ai": ("AA", "II"), "ei": ("EE", "II"), "Au": ("AA", "UU"), "ou": ("OO", "UU"),
    "ong": ("OO", "UU"),
    "iA": ("II", "AA"), "iE": ("II", "EE"), "iou": ("II", "OO", "UU"), "iAu": ("II", "AA", "UU"),
    "ua": ("UU", "AA"), "uo": ("UU", "OO"), "uai": ("UU", "AA", "II"), "uei": ("UU", "EE", "II"),
    "u@": ("UU", "@@"), "yE": ("YY", "EE"), "y&": ("YY", "@@"),
}

TABLES = {"en": ENGLISH, "zh": MANDARIN}
_VOWEL_LETTERS = set("aeiouyAEIOUVY@03")


def normalize(name: str) -> str:
    """Strip espeak stress marks (' primary, , secondary)."""
    return name.lstrip("',")


def is_pause(name: str) -> bool:
    return normalize(name).startswith("_")


def is_marker(name: str) -> bool:
    """espeak events that are not sounds (';' palatalisation mark, empty names)."""
    return normalize(name) in ("", ";")


def phoneme_visemes(name: str, language: str) -> tuple[str, ...]:
    """The viseme sequence a phoneme glides through; unknown phonemes fall back to a neutral
    vowel or an alveolar consonant by their first letter (and stay lip-plausible)."""
    if language not in TABLES:
        raise ValueError(f"unknown language '{language}' (choose from {', '.join(TABLES)})")
    key = normalize(name)
    if key.startswith("_"):
        return ("sil",)
    table = TABLES[language]
    if key in table:
        return table[key]
    # espeak sometimes appends length / variant marks: try the longest known prefix.
    for end in range(len(key) - 1, 0, -1):
        if key[:end] in table:
            return table[key[:end]]
    return ("@@",) if key[:1] in _VOWEL_LETTERS else ("DD",)


def viseme_vector(viseme: str) -> list[float]:
    """A viseme as a vector over LIP_BLENDSHAPES."""
    shape = VISEMES[viseme]
    return [float(shape.get(name, 0.0)) for name in LIP_BLENDSHAPES]


def _check_tables() -> None:
    for vis in VISEMES.values():
        unknown = set(vis) - set(LIP_BLENDSHAPES)
        if unknown:
            raise AssertionError(f"viseme uses non-lip blendshapes {sorted(unknown)}")
    for table in TABLES.values():
        for seq in table.values():
            for v in seq:
                if v not in VISEMES:
                    raise AssertionError(f"unknown viseme {v}")


_check_tables()
