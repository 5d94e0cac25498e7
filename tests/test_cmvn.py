"""CMVN: statistics in Kaldi's layout, and the global / speaker / utterance normalizations."""

from __future__ import annotations

import numpy as np
import pytest

from speechmeta.data.cmvn import accumulate, apply_cmvn, load_cmvn, mean_std, save_cmvn


def test_stats_layout_and_moments():
    rng = np.random.default_rng(0)
    a, b = rng.normal(3, 2, (50, 4)), rng.normal(-1, 0.5, (30, 4))
    stats = accumulate(accumulate(None, a), b)
    both = np.concatenate([a, b])
    assert stats.shape == (2, 5) and stats[0, -1] == 80
    mean, std = mean_std(stats)
    np.testing.assert_allclose(mean, both.mean(0))
    np.testing.assert_allclose(std, both.std(0))


def test_modes():
    rng = np.random.default_rng(1)
    feats = rng.normal(5, 3, (200, 8)).astype(np.float32)
    out = apply_cmvn(feats, "utterance")
    np.testing.assert_allclose(out.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(out.std(0), 1, atol=1e-4)
    assert apply_cmvn(feats, "none") is feats
    stats = accumulate(None, np.zeros((4, 8)) + 5)
    np.testing.assert_allclose(apply_cmvn(feats, "global", stats, norm_vars=False), feats - 5, atol=1e-5)
    with pytest.raises(ValueError, match="needs statistics"):
        apply_cmvn(feats, "speaker")
    with pytest.raises(ValueError, match="unknown CMVN mode 'per-utt'"):
        apply_cmvn(feats, "per-utt")


def test_save_load_round_trip(tmp_path):
    g = accumulate(None, np.ones((3, 2)))
    spk = {"b": accumulate(None, np.zeros((2, 2))), "a": g.copy()}
    save_cmvn(tmp_path / "cmvn.npz", g, spk)
    g2, spk2 = load_cmvn(tmp_path / "cmvn.npz")
    np.testing.assert_array_equal(g2, g)
    assert sorted(spk2) == ["a", "b"]
    np.testing.assert_array_equal(spk2["b"], spk["b"])
