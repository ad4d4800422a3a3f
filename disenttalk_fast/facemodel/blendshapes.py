"""The semantic blendshapes of the built-in face model, in their fixed order.

Motion can be expressed as per-frame weights over these (typically in [0, 1], jaw_open up to 1 =
fully open); the built-in face model maps them into its entangled 64-dim expression basis. The
synthetic corpus generator writes lip, eye and global tracks in this vocabulary.
"""

SEMANTIC_BLENDSHAPES = (
    # lips and jaw
    "jaw_open",
    "lip_pucker",          # rounded, protruded lips (u, o, ü)
    "lip_funnel",          # open rounded lips (o, er)
    "lip_stretch",         # lips pulled sideways (i, e)
    "lip_press",           # lips pressed together (p, b, m)
    "lip_corner_pull",     # smile-like corner pull
    "upper_lip_raise",     # upper lip raised (f, v with lower lip tuck, sh)
    "lower_lip_depress",   # lower lip pulled down (teeth show)
    "lower_lip_tuck",      # lower lip under upper teeth (f, v)
    "mouth_close",         # lips closed over an open jaw
    # eyes
    "eye_blink_left",
    "eye_blink_right",
    "squint",
    "eye_wide",
    # global
    "brow_raise",
    "brow_furrow",
    "cheek_puff",
    "smile",
    "nose_wrinkle",
)

LIP_BLENDSHAPES = SEMANTIC_BLENDSHAPES[:10]
EYE_BLENDSHAPES = SEMANTIC_BLENDSHAPES[10:14]
GLOBAL_BLENDSHAPES = SEMANTIC_BLENDSHAPES[14:]


def index(name: str) -> int:
    """Position of a blendshape in SEMANTIC_BLENDSHAPES (ValueError naming it if unknown)."""
    try:
        return SEMANTIC_BLENDSHAPES.index(name)
    except ValueError:
        raise ValueError(f"unknown blendshape '{name}'") from None
