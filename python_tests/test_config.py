"""DisentTalkConfig: paper defaults, JSON round trip, one-line validation errors."""

import json

import pytest

from disenttalk_fast.config import DisentTalkConfig


def test_paper_defaults():
    c = DisentTalkConfig()
    assert (c.num_dims, c.k_lip, c.k_eye, c.k_global) == (64, 13, 8, 43)
    assert (c.d_model, c.head_dim, c.region_heads) == (256, 32, (3, 2, 3))
    assert (c.n_heads, c.n_layers) == (8, 6)
    assert (c.dilations, c.local_kernel, c.lookahead) == ((1, 2, 4), 5, 0)
    assert (c.timesteps, c.cfg_drop_prob, c.lambda_sync) == (400, 0.1, 0.01)
    assert (c.lr, c.batch_size) == (1e-4, 32)
    assert (c.audio_dim, c.feature_type, c.schedule) == (80, "mel", "linear")
    assert c.disentangle and c.temporal_conv


def test_json_round_trip():
    c = DisentTalkConfig(audio_dim=768, feature_type="hubert", schedule="cosine", lookahead=2,
                         disentangle=False, dilations=(1, 3))
    text = c.to_json()
    assert json.loads(text)["region_heads"] == [3, 2, 3]
    back = DisentTalkConfig.from_json(text)
    assert back == c and isinstance(back.dilations, tuple) and hash(back) == hash(c)
    assert DisentTalkConfig.from_dict({}) == DisentTalkConfig()      # missing keys: defaults
    assert c.replace(lookahead=0).lookahead == 0


@pytest.mark.parametrize("changes,match", [
    ({"d_model": 250}, "d_model = 250 must equal"),
    ({"head_dim": 31, "d_model": 248}, "head_dim must be even"),
    ({"region_heads": (3, 2)}, "region_heads must be three"),
    ({"region_heads": (3, 0, 5)}, "region_heads must be three"),
    ({"k_lip": 40, "k_eye": 30}, "leaves no global dims"),
    ({"k_eye": 0}, "k_eye must be >= 1"),
    ({"n_layers": 2.5}, "n_layers must be an integer"),
    ({"local_kernel": 4}, "local_kernel must be odd"),
    ({"dilations": ()}, "dilations must be"),
    ({"lookahead": -1}, "lookahead must be >= 0"),
    ({"feature_type": "wav2vec"}, "feature_type must be one of"),
    ({"schedule": "sigmoid"}, "schedule must be one of"),
    ({"cfg_drop_prob": 1.0}, "cfg_drop_prob must be in"),
    ({"guidance_scale": 1e30}, r"guidance_scale must be in \[0, 100\]"),
    ({"guidance_scale": -1.0}, r"guidance_scale must be in \[0, 100\]"),
    ({"lr": 0}, "lr must be > 0"),
    ({"ema_decay": 1.0}, "ema_decay must be in"),
    ({"grad_clip": float("nan")}, "grad_clip must be a finite number"),
    ({"disentangle": "yes"}, "disentangle must be true or false"),
    ({"batch_size": True}, "batch_size must be an integer"),
])
def test_invalid_values_give_one_line_errors(changes, match):
    with pytest.raises(ValueError, match=match) as info:
        DisentTalkConfig(**changes)
    assert "\n" not in str(info.value)


def test_from_dict_errors_name_the_source():
    with pytest.raises(ValueError, match="run.json: unknown config key\\(s\\) 'n_layer'"):
        DisentTalkConfig.from_dict({"n_layer": 3}, "run.json")
    with pytest.raises(ValueError, match="run.json: .*lr must be > 0"):
        DisentTalkConfig.from_dict({"lr": -1}, "run.json")
    with pytest.raises(ValueError, match="run.json: not valid JSON"):
        DisentTalkConfig.from_json("{", "run.json")
    with pytest.raises(ValueError, match="expected a JSON object"):
        DisentTalkConfig.from_dict([1], "run.json")
