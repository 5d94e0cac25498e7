"""Our filterbank equals torchaudio's Kaldi-compatible fbank (the reference for Kaldi's compute-fbank-feats)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchaudio.compliance.kaldi as kaldi
from conftest import tone

from speechmeta.data.fbank import FbankConfig, fbank

# Both compute in float32 with different operation orders; log-mel values are O(10), so 2e-3 absolute is ~1e-4
# relative. A real difference (window, pre-emphasis, mel edges, scale) moves values by 0.1 or more.
ATOL = 2e-3


def reference(x: np.ndarray, cfg: FbankConfig) -> np.ndarray:
    return kaldi.fbank(torch.from_numpy(x)[None] * 32768, num_mel_bins=cfg.num_mel_bins, dither=0.0,
                       sample_frequency=cfg.sample_rate, frame_length=cfg.frame_length_ms,
                       frame_shift=cfg.frame_shift_ms, low_freq=cfg.low_freq, high_freq=cfg.high_freq,
                       preemphasis_coefficient=cfg.preemphasis).numpy()


@pytest.mark.parametrize("seconds", [0.025, 0.0351, 0.5, 3.17])
@pytest.mark.parametrize("cfg", [FbankConfig(), FbankConfig(sample_rate=8000, num_mel_bins=40),
                                 FbankConfig(num_mel_bins=23, frame_length_ms=20, low_freq=64, high_freq=-400)])
def test_equals_torchaudio_kaldi_fbank(seconds, cfg):
    rng = np.random.default_rng(0)
    x = (0.5 * tone(seconds, cfg.sample_rate, freq=300) + 0.05 * rng.standard_normal(int(seconds * cfg.sample_rate)))
    x = x.astype(np.float32)
    ours, ref = fbank(x, cfg), reference(x, cfg)
    assert ours.shape == ref.shape == (cfg.num_frames(len(x)), cfg.num_mel_bins)
    np.testing.assert_allclose(ours, ref, atol=ATOL, rtol=0)


def test_digital_silence_is_floored_not_minus_infinity():
    out = fbank(np.zeros(4000, dtype=np.float32))
    ref = reference(np.zeros(4000, dtype=np.float32), FbankConfig())
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out, ref, atol=ATOL)


def test_frame_count_follows_kaldi_snip_edges():
    cfg = FbankConfig()
    assert [cfg.num_frames(n) for n in (0, 399, 400, 559, 560, 16000)] == [0, 0, 1, 1, 2, 98]
    assert fbank(np.zeros(399, dtype=np.float32)).shape == (0, 80)


def test_a_tone_peaks_in_the_right_mel_bin():
    out = fbank(tone(1.0, freq=1000.0))
    # Bin k of 80 is centred at mel(20 Hz) + (k + 1) * (mel(8 kHz) - mel(20 Hz)) / 81; mel(1 kHz) = 1000 gives k = 26.9.
    assert int(out.mean(axis=0).argmax()) == 27
