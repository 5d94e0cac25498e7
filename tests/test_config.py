"""Config: dataclass defaults, YAML, dotted overrides; unknown keys and wrong types are errors naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from speechmeta.config import Config, ConfigError, load_config, save_config
from speechmeta.model.conformer import ConformerCTC


def test_defaults_yaml_then_overrides(tmp_path):
    assert load_config() == Config()
    conf = tmp_path / "c.yaml"
    conf.write_text("fbank:\n  num_mel_bins: 40\n  sample_rate: 8000\ntext_norm:\n  case: lower\n")
    cfg = load_config(Config, conf, ["fbank.num_mel_bins=64", "fbank.frame_shift_ms=12"])
    assert (cfg.fbank.num_mel_bins, cfg.fbank.sample_rate, cfg.fbank.frame_shift_ms) == (64, 8000, 12.0)
    assert cfg.text_norm.case == "lower" and cfg.fbank.low_freq == 20.0
    save_config(cfg, tmp_path / "resolved.yaml")
    assert load_config(Config, tmp_path / "resolved.yaml") == cfg


def test_unknown_key_is_an_error(tmp_path):
    conf = tmp_path / "c.yaml"
    conf.write_text("fbank:\n  num_mel_bin: 40\n")
    with pytest.raises(ConfigError, match=r"c.yaml: unknown config key\(s\) fbank.num_mel_bin; valid keys under fbank"):
        load_config(Config, conf)
    with pytest.raises(ConfigError, match="unknown config key.*modle"):
        load_config(Config, None, ["modle.size=tiny"])


def test_wrong_type_is_an_error():
    with pytest.raises(ConfigError, match=r"fbank.num_mel_bins: expected int, got 'many' \(str\)"):
        load_config(Config, None, ["fbank.num_mel_bins=many"])
    with pytest.raises(ConfigError, match="fbank.num_mel_bins: expected int, got 2.5"):
        load_config(Config, None, ["fbank.num_mel_bins=2.5"])
    with pytest.raises(ConfigError, match="text_norm.case must be upper, lower or keep"):
        load_config(Config, None, ["text_norm.case=title"])
    with pytest.raises(ConfigError, match="not of the form"):
        load_config(Config, None, ["fbank.num_mel_bins"])


@pytest.mark.parametrize("conf", sorted(Path(__file__).parents[1].glob("recipes/*/conf/*.yaml")),
                         ids=lambda p: f"{p.parents[1].name}/{p.name}")
def test_every_recipe_conf_loads(conf):
    """A recipe's YAML with an unknown or misplaced key fails here, not an hour into its run."""
    cfg = load_config(Config, conf)
    ConformerCTC(cfg.model, vocab_size=10)  # the model section builds (sizes, widths)
